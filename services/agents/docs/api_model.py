"""The public API of a project, read with griffe's static visitor (allow_inspection=False: nothing is imported)."""

from __future__ import annotations

import ast
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import griffe

from services.agents.knowledge.python_source import is_test_file
from services.agents.knowledge.resolver import module_name, root_package
from services.runtime.file_walk import walk_files

logging.getLogger("griffe").setLevel(logging.ERROR)  # docstring style warnings are not the caller's problem


@dataclass(frozen=True)
class Param:
    name: str
    annotation: str
    default: str
    description: str
    kind: str  # griffe's ParameterKind value, such as "keyword-only"


@dataclass(frozen=True)
class Returned:
    annotation: str
    description: str


@dataclass
class ApiObject:
    """A module, class, function, method or attribute as the docs show it."""

    kind: str  # "module", "class", "function", "method", "attribute"
    name: str
    path: str  # dotted, such as shop.models.Order.total
    file: str  # relative to the project root
    line: int
    docstring: str = ""  # the summary and text sections
    signature: str = ""
    bases: list[str] = field(default_factory=list)
    parameters: list[Param] = field(default_factory=list)
    returns: list[Returned] = field(default_factory=list)
    raises: list[Returned] = field(default_factory=list)
    value: str = ""  # attributes
    members: list[ApiObject] = field(default_factory=list)

    @property
    def documented(self) -> bool:
        return bool(self.docstring)


@dataclass
class LoadProblem:
    module: str
    message: str


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _signature(function: griffe.Function) -> str:
    parts: list[str] = []
    seen_keyword_only = False
    positional_only = False
    for parameter in function.parameters:
        kind = parameter.kind
        if kind is griffe.ParameterKind.positional_only:
            positional_only = True
        elif positional_only:
            parts.append("/")
            positional_only = False
        if kind is griffe.ParameterKind.keyword_only and not seen_keyword_only:
            parts.append("*")
        if kind in (griffe.ParameterKind.keyword_only, griffe.ParameterKind.var_positional):
            seen_keyword_only = True
        prefix = "*" if kind is griffe.ParameterKind.var_positional else "**" if kind is griffe.ParameterKind.var_keyword else ""
        text = prefix + parameter.name
        if parameter.annotation is not None:
            text += f": {parameter.annotation}"
        if parameter.default is not None:
            text += f" = {parameter.default}" if parameter.annotation is not None else f"={parameter.default}"
        parts.append(text)
    if positional_only:
        parts.append("/")
    returns = f" -> {function.returns}" if function.returns is not None else ""
    prefix = "async def" if "async" in function.labels else "def"
    return f"{prefix} {function.name}({', '.join(parts)}){returns}"


def _sections(obj: griffe.Object) -> tuple[str, dict[str, list[object]]]:
    """The docstring's prose, and its parameters/returns/raises items by section kind."""
    if obj.docstring is None:
        return "", {}
    prose: list[str] = []
    items: dict[str, list[object]] = {}
    for section in obj.docstring.parse("auto"):
        kind = section.kind.value
        if kind == "text":
            prose.append(str(section.value))
        elif kind == "admonition":
            prose.append(f"**{section.title or 'Note'}:** {section.value.description}")
        elif isinstance(section.value, list):
            items.setdefault(kind, []).extend(section.value)
    return "\n\n".join(p.strip() for p in prose if p.strip()), items


def _function(function: griffe.Function, kind: str, root: Path) -> ApiObject:
    prose, items = _sections(function)
    described = {getattr(p, "name", ""): p for p in items.get("parameters", [])}
    parameters = []
    for parameter in function.parameters:
        if parameter.name in ("self", "cls") and kind == "method":
            continue
        doc = described.get(parameter.name)
        annotation = _text(parameter.annotation) or _text(getattr(doc, "annotation", None))
        parameters.append(Param(parameter.name, annotation, _text(parameter.default), getattr(doc, "description", "") or "",
                                parameter.kind.value))
    returns = [Returned(_text(r.annotation) or _text(function.returns), r.description) for r in items.get("returns", [])]  # type: ignore[attr-defined]
    if not returns and function.returns is not None and _text(function.returns) != "None":
        returns = [Returned(_text(function.returns), "")]
    raises = [Returned(_text(r.annotation), r.description) for r in items.get("raises", [])]  # type: ignore[attr-defined]
    return ApiObject(kind, function.name, function.path, _relative(function, root), function.lineno or 0, prose,
                     _signature(function), parameters=parameters, returns=returns, raises=raises)


def _relative(obj: griffe.Object, root: Path) -> str:
    path = obj.filepath
    if isinstance(path, list):
        path = path[0]
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return Path(path).name


def _public(name: str) -> bool:
    return not name.startswith("_")


def _members(obj: griffe.Object) -> list[griffe.Object]:
    """Own public members (re-exports are documented where they are defined), in source order."""
    found = [m for name, m in obj.members.items() if _public(name) and not m.is_alias and isinstance(m, griffe.Object)]
    return sorted(found, key=lambda m: (m.lineno or 0, m.name))


def _class(cls: griffe.Class, root: Path) -> ApiObject:
    prose, items = _sections(cls)
    out = ApiObject("class", cls.name, cls.path, _relative(cls, root), cls.lineno or 0, prose, bases=[str(b) for b in cls.bases])
    out.parameters = [Param(p.name, _text(p.annotation), "", p.description, "") for p in items.get("parameters", [])]  # type: ignore[attr-defined]
    init = cls.members.get("__init__")
    if isinstance(init, griffe.Function):
        constructor = _signature(init).split("(", 1)[1].removeprefix("self, ").removeprefix("self")
        out.signature = f"class {cls.name}({constructor}".removesuffix(" -> None")
    for member in _members(cls):
        if isinstance(member, griffe.Function):
            out.members.append(_function(member, "method", root))
        elif isinstance(member, griffe.Class):
            out.members.append(_class(member, root))
        elif isinstance(member, griffe.Attribute):
            out.members.append(_attribute(member, root))
    return out


def _attribute(attribute: griffe.Attribute, root: Path) -> ApiObject:
    prose, _ = _sections(attribute)
    return ApiObject("attribute", attribute.name, attribute.path, _relative(attribute, root), attribute.lineno or 0, prose,
                     signature=_text(attribute.annotation), value=_text(attribute.value))


def _module(module: griffe.Module, root: Path) -> ApiObject:
    prose, _ = _sections(module)
    out = ApiObject("module", module.name, module.path, _relative(module, root), 1, prose)
    for member in _members(module):
        if isinstance(member, griffe.Module):
            continue  # submodules get their own page
        if isinstance(member, griffe.Function):
            out.members.append(_function(member, "function", root))
        elif isinstance(member, griffe.Class):
            out.members.append(_class(member, root))
        elif isinstance(member, griffe.Attribute):
            out.members.append(_attribute(member, root))
    return out


def _walk(module: griffe.Module) -> list[griffe.Module]:
    found = [module]
    for name, member in sorted(module.members.items()):
        if isinstance(member, griffe.Module) and not member.is_alias:
            found += _walk(member)
    return found


def _is_test(path: str) -> bool:
    parts = path.split("/")
    return is_test_file(path) or any(p in ("tests", "test") for p in parts[:-1])


def load_api(root: Path, *, max_files: int = 20000, check: Callable[[], None] = lambda: None) -> tuple[list[ApiObject], list[LoadProblem], bool]:
    """Every non-test module of `root` by dotted name, the modules griffe could not read, and whether the file limit
    cut the walk short."""
    files, truncated = walk_files(root, max_files=max_files)
    paths = [f.relative_to(root).as_posix() for f in files if f.suffix == ".py"]
    package_dirs = {p.rsplit("/", 1)[0] if "/" in p else "" for p in paths if p.endswith("__init__.py")}
    tops: dict[str, Path] = {}  # top-level name -> the folder griffe finds it in
    expected: dict[str, str] = {}  # module name -> path
    own = root_package(root.name, package_dirs)
    for path in paths:
        if _is_test(path):
            continue
        name = module_name(path, package_dirs, own)
        expected.setdefault(name, path)
        top = name.split(".")[0]
        if own and top == own:
            tops.setdefault(top, root.parent)
            continue
        depth = len(path.split("/")) - len(name.split(".")) - (1 if path.endswith("/__init__.py") else 0)
        tops.setdefault(top, root.joinpath(*path.split("/")[:depth]))
    modules: list[ApiObject] = []
    problems: list[LoadProblem] = []
    loader = griffe.GriffeLoader(search_paths=[], allow_inspection=False, docstring_parser="auto")
    for top, folder in sorted(tops.items()):
        check()
        loader.finder.search_paths = [folder]
        try:
            loaded = loader.load(top)
        except (griffe.LoadingError, ModuleNotFoundError, SyntaxError, OSError, UnicodeDecodeError) as exc:
            problems.append(LoadProblem(top, f"{type(exc).__name__}: {exc}"))
            continue
        if not isinstance(loaded, griffe.Module):
            continue
        for module in _walk(loaded):
            relative = _relative(module, root)
            if not _is_test(relative):
                modules.append(_module(module, root))
    # griffe skips a module it cannot parse (and logs it): say which, and why.
    loaded_names = {m.path for m in modules} | {p.module for p in problems}
    for name, path in sorted(expected.items()):
        if name not in loaded_names and name.split(".")[0] not in {p.module for p in problems}:
            problems.append(LoadProblem(name, _why_unread(root / path)))
    return sorted(modules, key=lambda m: m.path), problems, truncated


def _why_unread(path: Path) -> str:
    try:
        ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    except OSError as exc:
        return f"not readable: {exc}"
    return "not reachable from its package (a folder without __init__.py?)"
