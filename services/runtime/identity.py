"""Who is calling: the one place every service reads the caller's identity from a call's metadata."""

from __future__ import annotations

import contextvars
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ROLES = ("viewer", "operator", "admin")  # ordered: each role may do what the ones before it may
PRINCIPAL_HEADER = "x-mcpmesh-principal"
ROLE_HEADER = "x-mcpmesh-role"
SCOPE_HEADER = "x-mcpmesh-scope"


@dataclass(frozen=True)
class Identity:
    """A caller: `key:<id>` for an API key, `service:<name>` for another service; empty when anonymous. `actor` is
    the service that makes the call for the principal (a workflow's steps call as the key that created it), empty
    when the principal calls itself."""

    principal: str = ""
    role: str = ""
    scopes: tuple[str, ...] = ()  # tool name patterns the key is limited to; empty means no limit
    actor: str = ""

    @property
    def anonymous(self) -> bool:
        return not self.principal

    def has_role(self, needed: str) -> bool:
        return self.role in ROLES and ROLES.index(self.role) >= ROLES.index(needed)


ANONYMOUS = Identity()


def identity_text(who: Identity) -> str:
    """The identity as stored with a record (JSON; "" when anonymous); read back with identity_of_text."""
    if who.anonymous:
        return ""
    return json.dumps({"principal": who.principal, "role": who.role, "scopes": list(who.scopes)})


def identity_of_text(text: str | None) -> Identity:
    if not text:
        return ANONYMOUS
    stored = json.loads(text)
    return Identity(stored["principal"], stored["role"], tuple(stored.get("scopes", ())))


def identity_from_metadata(metadata: Iterable[tuple[str, Any]] | None) -> Identity:
    """Identity headers, for code that runs outside a server (unit tests of a servicer). A served call never gets
    here: every server's guard verifies a signed token and binds the identity before a handler runs."""
    values = {key: value for key, value in metadata or () if isinstance(value, str)}
    principal = values.get(PRINCIPAL_HEADER, "")
    role = values.get(ROLE_HEADER, "")
    if not principal or role not in ROLES:
        return ANONYMOUS
    scopes = tuple(s for s in values.get(SCOPE_HEADER, "").split(",") if s)
    return Identity(principal, role, scopes)


# Set by a server's guard once it has verified the caller (the gateway checks an API key); read by caller().
_verified: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("verified_caller", default=None)


def bind(identity: Identity | None) -> None:
    """Records the identity the guard verified for the call being served (each call runs in its own task)."""
    _verified.set(identity)


def caller(context: Any) -> Identity:
    """The identity of the call being served (`context` is a grpc.aio.ServicerContext)."""
    verified = _verified.get()
    if verified is not None:
        return verified
    return identity_from_metadata(context.invocation_metadata())

