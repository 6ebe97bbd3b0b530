"""The gateway's answer to Envoy's ext_authz Check: a raw API key becomes a token, or the call is refused."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from mcpmesh.ext_authz.v3 import external_auth_pb2

from services.gateway.api_keys import ApiKeys
from services.gateway.api_keys_sqlite import SCHEMA, SqliteApiKeyStore
from services.gateway.auth import Authenticator
from services.gateway.ext_authz import EdgeAuthorization
from services.gateway.token_issuer import TokenIssuer
from services.runtime.rate_limits import RateLimiter
from services.runtime.roles import all_services, method_roles
from services.runtime.signing_keys import FileKeySource
from services.runtime.state import SqliteDatabase

CREATE = "/mcpmesh.workflows.v1.WorkflowService/CreateWorkflow"
LIST_TOOLS = "/mcpmesh.tools.v1.ToolService/ListTools"


@pytest.fixture()
async def parts(tmp_path: Path) -> AsyncIterator[tuple[ApiKeys, TokenIssuer, EdgeAuthorization]]:
    database = SqliteDatabase(tmp_path / "gateway.db", SCHEMA)
    keys = ApiKeys(await SqliteApiKeyStore.open(database))
    tokens = await TokenIssuer.open(FileKeySource(tmp_path / "keys.json"), ttl=60)
    yield keys, tokens, EdgeAuthorization(Authenticator(keys, RateLimiter(0.0, 1), tokens=tokens), tokens, method_roles(all_services()))
    database.close()


def request(path: str, authorization: str | None) -> external_auth_pb2.CheckRequest:
    headers = {"authorization": authorization} if authorization is not None else {}
    http = external_auth_pb2.AttributeContext.HttpRequest(method="POST", path=path, headers=headers)
    return external_auth_pb2.CheckRequest(attributes=external_auth_pb2.AttributeContext(
        request=external_auth_pb2.AttributeContext.Request(http=http)))


def headers_of(options: object) -> dict[str, str]:
    return {option.header.key: option.header.value for option in options}  # type: ignore[attr-defined]


async def test_a_valid_key_becomes_a_token_for_its_identity(parts) -> None:  # type: ignore[no-untyped-def]
    keys, tokens, authz = parts
    key, secret = await keys.create("ops", "operator", scopes=("file_*",))
    # Several calls (a burst): each answered OK, the rate limit (burst 1 here) is left to the service.
    answers = [await authz.Check(request(CREATE, f"Bearer {secret}"), None) for _ in range(3)]
    assert all(a.status.code == code_pb2.OK and a.HasField("ok_response") for a in answers)
    [option] = answers[0].ok_response.headers
    assert option.header.key == "authorization" and option.append_action == external_auth_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
    token = option.header.value.removeprefix("Bearer ")
    who = await tokens.verify(token)
    assert (who.principal, who.role, who.scopes) == (f"key:{key.id}", "operator", ("file_*",))
    assert {a.ok_response.headers[0].header.value for a in answers} == {option.header.value}  # one token reused


@pytest.mark.parametrize(("authorization", "reason"), [(None, "API_KEY_MISSING"), ("Bearer mk_nope_nope", "API_KEY_INVALID"),
                                                       ("Basic abc", "API_KEY_MISSING")])
async def test_a_missing_or_bad_key_is_a_401_with_a_challenge_and_the_error_status(parts, authorization, reason) -> None:  # type: ignore[no-untyped-def]
    _, _, authz = parts
    answer = await authz.Check(request(LIST_TOOLS, authorization), None)
    assert answer.status.code == code_pb2.UNAUTHENTICATED and answer.denied_response.status.code == 401
    headers = headers_of(answer.denied_response.headers)
    assert headers["www-authenticate"].startswith("Bearer ") and reason in headers["www-authenticate"]
    # The same google.rpc.Status for gRPC (details header) and REST (JSON body).
    details = status_pb2.Status.FromString(base64.b64decode(headers["grpc-status-details-bin"]))
    info = error_details_pb2.ErrorInfo()
    details.details[0].Unpack(info)
    assert info.reason == reason and details.code == code_pb2.UNAUTHENTICATED
    body = json.loads(answer.denied_response.body)
    assert body["code"] == 16 and body["details"][0]["reason"] == reason and body["message"] == details.message


async def test_a_key_without_the_methods_role_is_a_403(parts) -> None:  # type: ignore[no-untyped-def]
    keys, _, authz = parts
    _, viewer = await keys.create("v", "viewer")
    assert (await authz.Check(request(LIST_TOOLS, f"Bearer {viewer}"), None)).status.code == code_pb2.OK
    answer = await authz.Check(request(CREATE, f"Bearer {viewer}"), None)
    assert answer.status.code == code_pb2.PERMISSION_DENIED and answer.denied_response.status.code == 403
    body = json.loads(answer.denied_response.body)
    assert body["details"][0]["reason"] == "ROLE_TOO_LOW" and body["details"][0]["metadata"] == {"required_role": "operator"}
    assert "www-authenticate" not in headers_of(answer.denied_response.headers)


async def test_an_unknown_method_still_needs_a_caller(parts) -> None:  # type: ignore[no-untyped-def]
    keys, _, authz = parts
    assert (await authz.Check(request("/mcpmesh.tools.v1.ToolService/Nope", None), None)).denied_response.status.code == 401
    _, viewer = await keys.create("v", "viewer")
    assert (await authz.Check(request("/mcpmesh.tools.v1.ToolService/Nope?x=1", f"Bearer {viewer}"), None)).status.code == code_pb2.OK
