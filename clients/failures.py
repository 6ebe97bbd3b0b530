"""Every way a CLI call can fail, as one line: what failed and what to do next."""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from clients.rest import ApiError

HINTS = {
    400: "check the arguments",
    401: "the key was refused or is missing: set MCP_API_KEY, pass --api-key, or run `mcpmesh login`",
    403: "this key's role may not do that: use a key with a higher role (`mcpmesh keys create NAME --role ...`)",
    404: "check the name or id (`list` shows what exists)",
    409: "it changed meanwhile: get it again and retry",
    413: "the request is too large: send less",
    429: "too many requests",
}


def _violations(body: Any) -> str:
    found = []
    for detail in body.get("details", []) if isinstance(body, dict) else []:
        for violation in detail.get("fieldViolations", []) if isinstance(detail, dict) else []:
            found.append(f"{violation.get('field', '?')}: {violation.get('description', '')}")
    return "; ".join(found)


def _api(error: ApiError) -> str:
    status = error.status
    message = error.message.strip().rstrip(".") or "no message"
    violations = _violations(error.body)
    if violations and violations not in message:
        message = f"{message} ({violations})"
    if status == 429:
        wait = f"retry after {error.retry_after} s" if error.retry_after else "wait a moment and retry"
        return f"rate limited (HTTP 429): {message}; {wait}"
    if status >= 500:
        return (f"the server failed (HTTP {status}): {message}; "
                "check `mcpmesh health` and the logs (.mcpmesh/logs), then retry")
    what = {400: "invalid request", 401: "not authenticated", 403: "permission denied", 404: "not found"}.get(status, "request refused")
    return f"{what} (HTTP {status}): {message}; {HINTS.get(status, 'see the message')}"


def _certificate_problem(error: BaseException) -> str:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or "certificate verify failed"
        if isinstance(seen, ssl.SSLError):
            return seen.reason or str(seen)
        text = str(seen)
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return "certificate verify failed"
        if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
            return "the server does not speak TLS on that port"
        seen = seen.__cause__ or seen.__context__
    return ""


def describe(error: BaseException, url: str) -> str:
    """One line for the user; never a traceback."""
    if isinstance(error, ApiError):
        return _api(error)
    if isinstance(error, httpx.TransportError):
        problem = _certificate_problem(error)
        if problem:
            return (f"TLS to {url} failed: {problem}; pass the edge's CA with --ca-cert (the local one is "
                    ".mcpmesh/tls/ca.crt) or use the http:// URL")
        if isinstance(error, httpx.ConnectError):
            return f"cannot connect to {url}: {error or 'connection refused'}; start the mesh (`make up`) or pass --url"
        if isinstance(error, httpx.TimeoutException):
            return f"{url} did not answer in time ({type(error).__name__}); check `mcpmesh health` and retry"
        return f"the connection to {url} failed: {error}; retry, or check the URL and scheme (http/https)"
    if isinstance(error, OSError):
        return f"{error.strerror or error}: {getattr(error, 'filename', '') or ''}".rstrip(": ")
    return f"{type(error).__name__}: {error}"
