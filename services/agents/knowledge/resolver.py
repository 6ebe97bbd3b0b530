"""Names across modules: what `repo.save` or `from .models import Order` refers to, given every module's definitions."""

from __future__ import annotations

from services.agents.knowledge.python_source import Extraction, Import

_MAX_HOPS = 8  # re-exports followed through at most this many modules (and no cycle can loop forever)


def module_name(path: str, package_dirs: set[str], root_package: str = "") -> str:
    """`src/shop/models.py` is `shop.models` when src/ has no __init__.py; a package's __init__.py is the package.
    When the analysed folder is itself a package (it has an __init__.py), its name, `root_package`, leads."""
    parts = path[: -len(".py")].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    # The source root is the deepest folder above the module that is not itself a package.
    first = max(len(parts) - 1, 0)
    while first > 0 and "/".join(parts[:first]) in package_dirs:
        first -= 1
    name = ".".join(parts[first:])
    if first == 0 and root_package and "" in package_dirs:
        return f"{root_package}.{name}" if name else root_package
    return name or "__init__"


def root_package(root_name: str, package_dirs: set[str]) -> str:
    """The analysed folder's own package name, when it is a package with a valid name; "" otherwise."""
    return root_name if "" in package_dirs and root_name.isidentifier() else ""


def absolute_import(item: Import, module: str, is_package: bool) -> str:
    """The absolute module an import statement names (`from ..x import y` inside a.b.c is `a.x`); "" if unresolvable."""
    if item.level == 0:
        return item.module
    package = module.split(".") if is_package else module.split(".")[:-1]
    if item.level - 1 > len(package):
        return ""
    base = package[: len(package) - (item.level - 1)]
    if not base:
        return ""
    return ".".join([*base, item.module] if item.module else base)


class Resolver:
    """Resolves dotted names to qualified names of project definitions (modules, classes, functions, methods)."""

    def __init__(self, modules: dict[str, tuple[Extraction, bool]], symbols: set[str]) -> None:
        self.modules = modules  # module name -> (extraction, is_package)
        self.symbols = symbols  # qualified names of every module and definition
        self.bindings: dict[str, dict[str, str]] = {name: self._bindings(name, ex, pkg) for name, (ex, pkg) in modules.items()}
        self.bases: dict[str, list[str]] = {}  # class qualified name -> resolved project base classes

    def _bindings(self, module: str, extraction: Extraction, is_package: bool) -> dict[str, str]:
        """Names a module binds at any level: imports, then its own top-level definitions (which win, as in Python)."""
        names: dict[str, str] = {}
        for item in extraction.imports:
            target = absolute_import(item, module, is_package)
            if not target:
                continue
            if item.name == "*":
                continue
            if item.name:
                names[item.alias or item.name] = f"{target}.{item.name}"
            elif item.alias:
                names[item.alias] = target
            else:
                head = target.split(".")[0]
                names.setdefault(head, head)
        for definition in extraction.definitions:
            if "." not in definition.qualname:
                names[definition.qualname] = f"{module}.{definition.qualname}"
        return names

    def qualified(self, name: str, hops: int = 0) -> str:
        """The project definition `name` (absolute and dotted) ends at, following re-exports; "" when outside."""
        if name in self.symbols:
            return name
        if hops >= _MAX_HOPS:
            return ""
        parts = name.split(".")
        # The longest module prefix owns the rest: `shop.Order` is whatever the module `shop` binds as `Order`.
        for cut in range(len(parts) - 1, 0, -1):
            prefix = ".".join(parts[:cut])
            if prefix in self.modules:
                bound = self.bindings[prefix].get(parts[cut])
                if bound and bound != name:
                    return self.qualified(".".join([bound, *parts[cut + 1 :]]), hops + 1)
                return ""
        return ""

    def in_scope(self, name: str, module: str, scope: str, enclosing_class: str) -> str:
        """Resolves `name` as written inside `scope` (a definition's qualname in `module`, "" for module level)."""
        head, _, rest = name.partition(".")
        if head in ("self", "cls") and enclosing_class and rest:
            return self.attribute(f"{module}.{enclosing_class}", rest)
        # Enclosing function scopes, innermost first (class bodies do not enclose their methods in Python).
        parts = scope.split(".") if scope else []
        for cut in range(len(parts), 0, -1):
            candidate = f"{module}.{'.'.join(parts[:cut])}.{name}"
            if candidate in self.symbols:
                return candidate
        bound = self.bindings.get(module, {}).get(head)
        if bound is None:
            return ""
        return self.qualified(f"{bound}.{rest}" if rest else bound)

    def attribute(self, cls: str, attribute: str, seen: frozenset[str] = frozenset()) -> str:
        """`attribute` looked up on project class `cls` and then its project bases, depth first in declaration order."""
        if f"{cls}.{attribute}" in self.symbols:
            return f"{cls}.{attribute}"
        for base in self.bases.get(cls, []):
            if base not in seen:
                found = self.attribute(base, attribute, seen | {cls})
                if found:
                    return found
        return ""
