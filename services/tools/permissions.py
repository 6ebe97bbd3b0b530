"""Tool permissions: grants to roles and API keys by tool name or pattern, the store port, and the policy.

The rule (also in the README's security part):
- A grant gives `role:<r>` or `key:<id>` the right to execute the tools whose names match its pattern
  (`*` and `?` as in shell globs: `fs_*`, `time.*`, or `*` for every tool).
- admin may execute every tool, granted or not (an admin could grant it anyway).
- For anyone else, grants narrow only once they exist: when no grant names the caller's key or its role,
  the role's default applies: an operator may execute every tool, a viewer none. As soon as one grant names
  `role:operator` (or the caller's key), that caller may execute only what its grants match.
- A key limited to scopes (`x-mcpmesh-scope`) may in addition only execute tools its scopes match.
- A workflow's steps call as the key that created the workflow (a token the workflows service makes for it), so
  the same rule applies to them. A call without an identity only comes from code inside a service's process (the
  servers refuse calls without a token); it is treated like an operator.
- The same rule holds for ExecuteTool (any role may ask) and for tools/call over /mcp.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.runtime.errors import InvalidArgument
from services.runtime.identity import Identity

PRINCIPAL = re.compile(r"^(role:(admin|operator|viewer)|key:[A-Za-z0-9_-]{1,64})$")
TOOL_PATTERN = re.compile(r"^[A-Za-z0-9_.:/*?-]{1,128}$")
DEFAULT_ALLOWED_ROLES = ("operator", "admin")  # what a role may do when no grant names it


@dataclass(frozen=True)
class Permission:
    """One grant: `principal` may execute the tools whose names match `tool` (a name or a glob pattern)."""

    tool: str
    principal: str
    created: dt.datetime


class PermissionStore(Protocol):
    """Port: where grants live. Adapters: permissions_sqlite.SqlitePermissionStore,
    permissions_dynamodb.DynamoDBPermissionStore."""

    async def grant(self, tool: str, principal: str) -> Permission:
        """Stores the grant (granting twice keeps the first); returns it."""

    async def revoke(self, tool: str, principal: str) -> None:
        """Removes the grant; NotFound when there is none."""

    async def page(self, tool: str, offset: int, limit: int) -> tuple[list[Permission], bool]:
        """One page ordered by (tool, principal), only `tool`'s when set, and whether more follow."""

    async def held_by(self, principals: Sequence[str]) -> list[Permission]:
        """Every grant held by any of `principals`."""

    async def ping(self) -> None:
        """Raises when the store cannot be reached."""


def check_grant(tool: str, principal: str, prefix: str) -> None:
    """Shape of a grant, checked before any store sees it."""
    if not tool:
        raise InvalidArgument.field(f"{prefix}tool", "is required")
    if not TOOL_PATTERN.match(tool):
        raise InvalidArgument.field(f"{prefix}tool", "must be a tool name or pattern of 1-128 letters, digits, _.:/- * ?")
    if not PRINCIPAL.match(principal):
        raise InvalidArgument.field(f"{prefix}principal", "must be role:<admin|operator|viewer> or key:<id>")


def is_pattern(tool: str) -> bool:
    return any(c in tool for c in "*?")


def matches(pattern: str, tool: str) -> bool:
    """fnmatchcase: the same answer on every platform, `[` has no special meaning in our patterns."""
    return fnmatch.fnmatchcase(tool, pattern.replace("[", "[[]"))


@dataclass(frozen=True)
class Allowance:
    """What one caller may execute: everything, or the tools matching some patterns."""

    everything: bool
    patterns: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        """The caller's permission scope, as part of a result cache key."""
        return "|".join(["*" if self.everything else "", ",".join(self.patterns), ",".join(self.scopes)])

    def allows(self, tool: str) -> bool:
        if self.scopes and not any(matches(scope, tool) for scope in self.scopes):
            return False
        return self.everything or any(matches(pattern, tool) for pattern in self.patterns)


class ToolPolicy:
    """Decides, per caller, which tools it may execute (see the module docstring for the rule)."""

    def __init__(self, store: PermissionStore) -> None:
        self._store = store

    async def allowance(self, caller: Identity) -> Allowance:
        if caller.anonymous:
            return Allowance(everything=True)
        if caller.role == "admin":
            return Allowance(everything=True, scopes=caller.scopes)
        principals = [f"role:{caller.role}", caller.principal]
        grants = await self._store.held_by(principals)
        if not grants:
            return Allowance(everything=caller.role in DEFAULT_ALLOWED_ROLES, scopes=caller.scopes)
        return Allowance(everything=False, patterns=_patterns(grants), scopes=caller.scopes)


def _patterns(grants: Iterable[Permission]) -> tuple[str, ...]:
    return tuple(sorted({grant.tool for grant in grants}))
