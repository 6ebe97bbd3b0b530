"""Envoy's external authorization (ext_authz) at the gateway: a raw API key on an edge call becomes a token.

The edge asks here only for calls to the workflows, tools and agents services that carry no token and whose
key its key cache could not turn into one (envoy/edge.yaml, mcpmesh.key_cache): a key the gateway refused, a
failed exchange, or no credentials. A valid key with the method's role is answered OK with the key's identity
as a short token in place of the key, so the call goes on from the edge straight to the service, which verifies
the token as it does for every caller. The key lookup is cached (Authenticator, a few seconds) and the token is
reused per identity (TokenIssuer.token_for), so a burst of calls with one key costs one lookup and one
signature. A bad or missing key is a 401 with WWW-Authenticate, a missing role a 403, each carrying the
same google.rpc.Status (ErrorInfo) as every other error, for gRPC callers and, through the transcoder, as
the JSON body of a REST call.
"""

from __future__ import annotations

import base64

import grpc
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from mcpmesh.ext_authz.v3 import external_auth_pb2, external_auth_pb2_grpc

from services.gateway.auth import Authenticator, bearer
from services.gateway.token_issuer import TokenIssuer
from services.runtime.errors import DomainError
from services.runtime.status import to_rpc_status

SERVICE_NAME = external_auth_pb2.DESCRIPTOR.services_by_name["Authorization"].full_name
DOMAIN = "gateway.mcpmesh"
HTTP_STATUS = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403}
OVERWRITE = external_auth_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def _header(key: str, value: str) -> external_auth_pb2.HeaderValueOption:
    return external_auth_pb2.HeaderValueOption(header=external_auth_pb2.HeaderValue(key=key, value=value), append_action=OVERWRITE)


def allowed(token: str) -> external_auth_pb2.CheckResponse:
    """Let the call through, carrying `token` (when there is one) instead of the key."""
    headers = [_header("authorization", f"Bearer {token}")] if token else []
    return external_auth_pb2.CheckResponse(status=status_pb2.Status(code=code_pb2.OK),
                                           ok_response=external_auth_pb2.OkHttpResponse(headers=headers))


def denied(error: DomainError) -> external_auth_pb2.CheckResponse:
    """Refuse the call with the status every server sends for `error` (ErrorInfo, WWW-Authenticate on a 401):
    gRPC callers read it from grpc-status-details-bin, REST callers get its JSON as the body."""
    status = to_rpc_status(error, DOMAIN)
    metadata = dict(status.trailing_metadata)
    details = status_pb2.Status.FromString(metadata["grpc-status-details-bin"])
    # Binary metadata travels base64-encoded in HTTP/2 headers.
    headers = [_header(key, base64.b64encode(value).decode() if isinstance(value, bytes) else str(value))
               for key, value in metadata.items()]
    return external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=details.code, message=details.message),
        denied_response=external_auth_pb2.DeniedHttpResponse(
            status=external_auth_pb2.HttpStatus(code=HTTP_STATUS.get(error.code, 403)), headers=headers,
            body=json_format.MessageToJson(details, indent=None),
        ),
    )


class EdgeAuthorization(external_auth_pb2_grpc.AuthorizationServicer):
    """Answers Envoy's Check for the calls the edge sends on to the services with a key."""

    def __init__(self, auth: Authenticator, tokens: TokenIssuer, roles: dict[str, str | None]) -> None:
        self._auth = auth
        self._tokens = tokens
        self._roles = roles

    async def Check(
        self, request: external_auth_pb2.CheckRequest, context: grpc.aio.ServicerContext
    ) -> external_auth_pb2.CheckResponse:
        http = request.attributes.request.http
        method = http.path.partition("?")[0]
        # A method no contract declares still needs a caller (the service then answers UNIMPLEMENTED).
        role = self._roles.get(method, "viewer")
        try:
            # The receiving service takes the caller's rate-limit token: one count per call, as for tokens.
            who = await self._auth.check(method, role, bearer(http.headers.get("authorization")), limit=False)
        except DomainError as error:
            return denied(error)
        return allowed("" if who is None else self._tokens.token_for(who))
