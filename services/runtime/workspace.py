"""Resolve user-supplied paths and confine them to configured workspace roots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

# The one JSON Schema of a folder parameter, shared by workflow types, agents and tools.
PATH_SCHEMA: dict[str, object] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 4096,
    "description": "Folder to analyse, inside a workspace root.",
}


def path_input_schema(description: str = "Folder to analyse, inside a workspace root.") -> dict[str, object]:
    """An object schema whose only (required) property is `path`: the input of most agents, tools and workflows."""
    return {
        "type": "object",
        "properties": {"path": {**PATH_SCHEMA, "description": description}},
        "required": ["path"],
        "additionalProperties": False,
    }


class OutsideWorkspaceError(ValueError):
    """Raised when a path resolves outside every workspace root."""


class BadPathError(ValueError):
    """Raised when a path string cannot name a file at all (NUL byte, over-long, not text)."""


MAX_PATH_CHARS = 4096
MAX_NAME_BYTES = 255  # one component, as most file systems allow


def check_path_text(path: str) -> None:
    """Refuse strings no file system path can be, before any system call sees them."""
    if "\0" in path:
        raise BadPathError("must not contain a NUL byte")
    if len(path) > MAX_PATH_CHARS:
        raise BadPathError(f"must be at most {MAX_PATH_CHARS} characters")
    try:
        encoded = [part.encode("utf-8") for part in path.split("/")]
    except UnicodeEncodeError:
        raise BadPathError("must be valid UTF-8 text") from None
    if any(len(part) > MAX_NAME_BYTES for part in encoded):
        raise BadPathError(f"has a component longer than {MAX_NAME_BYTES} bytes")


def real_roots(roots: Sequence[Path]) -> list[Path]:
    """The roots that exist, as real paths (a missing or looping root cannot contain anything)."""
    found = []
    for root in roots:
        try:
            found.append(Path(root).resolve(strict=True))
        except (OSError, RuntimeError):
            continue
    return found


def contained(resolved: Path, roots: Sequence[Path]) -> bool:
    """Whether a real path is one of the real roots or below one; `<root>-evil` is not below `<root>`."""
    return any(resolved.is_relative_to(root) for root in real_roots(roots))


def resolve_existing(path: str) -> Path:
    """The real path of an existing file or folder; errors never say where a symlink points."""
    if not path:
        raise ValueError("path is empty")
    check_path_text(path)
    try:
        # strict=True resolves every symlink, so a link inside a root cannot smuggle in an outside target.
        return Path(path).resolve(strict=True)
    except FileNotFoundError:
        raise FileNotFoundError("path does not exist") from None
    except NotADirectoryError:
        raise FileNotFoundError("path does not exist (a parent component is a file)") from None
    except RuntimeError:
        # Python 3.11 reports symlink loops as RuntimeError; treat them as unresolvable.
        raise FileNotFoundError("path cannot be resolved (symlink loop)") from None
    except OSError as error:
        # ELOOP, ENAMETOOLONG, EACCES (/proc/1/root as a non-root user), ...: the reason, never a target.
        raise FileNotFoundError(f"path cannot be resolved ({error.strerror or 'error'})") from None


def resolve_in_workspace(path: str, roots: Sequence[Path]) -> Path:
    """Return the real path of an existing directory that lies within one of roots."""
    resolved = resolve_existing(path)
    if not contained(resolved, roots):
        raise OutsideWorkspaceError("path is outside the workspace roots")
    if not resolved.is_dir():
        raise NotADirectoryError("path is not a directory")
    return resolved


def resolve_folder_argument(value: object, roots: Sequence[Path], field: str) -> Path:
    """resolve_in_workspace for a request field: every failure becomes InvalidArgument naming `field`."""
    from services.runtime.errors import InvalidArgument

    if not isinstance(value, str) or not value:
        raise InvalidArgument.field(field, "is required and must be a non-empty string")
    try:
        return resolve_in_workspace(value, roots)
    except OutsideWorkspaceError as exc:
        raise InvalidArgument.field(field, str(exc), reason="PATH_OUTSIDE_WORKSPACE") from None
    except BadPathError as exc:
        raise InvalidArgument.field(field, str(exc), reason="PATH_INVALID") from None
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise InvalidArgument.field(field, str(exc), reason="PATH_NOT_FOUND") from None


def resolve_in_roots(value: object, roots: Sequence[Path], field: str, *, kind: str = "any") -> Path:
    """A request field naming a file or folder (`kind`: "file", "folder" or "any") inside a workspace root.

    A relative path is taken from the first root. Every refusal is InvalidArgument naming `field`, and none says
    where a symlink points."""
    from services.runtime.errors import InvalidArgument

    if not isinstance(value, str) or not value:
        raise InvalidArgument.field(field, "is required and must be a non-empty string")
    first = real_roots(roots)[:1]
    text = value if value.startswith("/") or not first else str(first[0] / value)
    try:
        resolved = resolve_existing(text)
    except BadPathError as exc:
        raise InvalidArgument.field(field, str(exc), reason="PATH_INVALID") from None
    except FileNotFoundError as exc:
        raise InvalidArgument.field(field, str(exc), reason="PATH_NOT_FOUND") from None
    if not contained(resolved, roots):
        raise InvalidArgument.field(field, "path is outside the workspace roots", reason="PATH_OUTSIDE_WORKSPACE")
    if kind == "folder" and not resolved.is_dir():
        raise InvalidArgument.field(field, "path is not a directory", reason="PATH_NOT_A_DIRECTORY")
    if kind == "file" and not resolved.is_file():
        raise InvalidArgument.field(field, "path is not a regular file", reason="PATH_NOT_A_FILE")
    return resolved
