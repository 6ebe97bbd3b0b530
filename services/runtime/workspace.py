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


def resolve_in_workspace(path: str, roots: Sequence[Path]) -> Path:
    """Return the real path of an existing directory that lies within one of roots."""
    if not path:
        raise ValueError("path is empty")
    try:
        # strict=True resolves every symlink, so a link inside a root cannot smuggle in an outside target.
        resolved = Path(path).resolve(strict=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"path does not exist: {path}") from None
    except NotADirectoryError:
        raise NotADirectoryError(f"path is not a directory (a parent component is a file): {path}") from None
    except RuntimeError:
        # Python 3.11 reports symlink loops as RuntimeError; treat them as unresolvable.
        raise FileNotFoundError(f"path cannot be resolved (symlink loop): {path}") from None
    if not resolved.is_dir():
        raise NotADirectoryError(f"path is not a directory: {path}")
    for root in roots:
        try:
            real_root = Path(root).resolve(strict=True)
        except (OSError, RuntimeError):
            # A missing or looping root cannot contain anything.
            continue
        if resolved.is_relative_to(real_root):
            return resolved
    allowed = ", ".join(str(root) for root in roots) or "<none configured>"
    raise OutsideWorkspaceError(f"path {path} resolves to {resolved}, outside workspace roots: {allowed}")


def resolve_folder_argument(value: object, roots: Sequence[Path], field: str) -> Path:
    """resolve_in_workspace for a request field: every failure becomes InvalidArgument naming `field`."""
    from services.runtime.errors import InvalidArgument

    if not isinstance(value, str) or not value:
        raise InvalidArgument.field(field, "is required and must be a non-empty string")
    try:
        return resolve_in_workspace(value, roots)
    except OutsideWorkspaceError as exc:
        raise InvalidArgument.field(field, str(exc), reason="PATH_OUTSIDE_WORKSPACE") from None
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise InvalidArgument.field(field, str(exc), reason="PATH_NOT_FOUND") from None
