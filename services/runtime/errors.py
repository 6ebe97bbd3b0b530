"""Domain errors shared by every service; mapped to gRPC statuses in one place (status.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, named by its path such as `workflow.parameters.path`."""

    field: str
    description: str


class DomainError(Exception):
    """Base of every error a caller is meant to see; `reason` is an UPPER_SNAKE code to switch on."""

    default_reason = "INTERNAL"
    code = "INTERNAL"  # name of the google.rpc.Code the error maps to

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        violations: Sequence[FieldViolation] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.violations = tuple(violations)
        self.metadata = dict(metadata or {})


class InvalidArgument(DomainError):
    """The request is malformed; `violations` names the fields."""

    default_reason = "INVALID_ARGUMENT"
    code = "INVALID_ARGUMENT"

    @classmethod
    def field(cls, field: str, description: str, *, reason: str | None = None) -> InvalidArgument:
        """One bad field, with the message naming it."""
        return cls(f"{field}: {description}", reason=reason, violations=[FieldViolation(field, description)])


class NotFound(DomainError):
    default_reason = "NOT_FOUND"
    code = "NOT_FOUND"


class AlreadyExists(DomainError):
    default_reason = "ALREADY_EXISTS"
    code = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    default_reason = "FAILED_PRECONDITION"
    code = "FAILED_PRECONDITION"


class PermissionDenied(DomainError):
    default_reason = "PERMISSION_DENIED"
    code = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    default_reason = "UNAUTHENTICATED"
    code = "UNAUTHENTICATED"


class ResourceExhausted(DomainError):
    default_reason = "RESOURCE_EXHAUSTED"
    code = "RESOURCE_EXHAUSTED"


class Unavailable(DomainError):
    default_reason = "UNAVAILABLE"
    code = "UNAVAILABLE"


class Unimplemented(DomainError):
    default_reason = "UNIMPLEMENTED"
    code = "UNIMPLEMENTED"
