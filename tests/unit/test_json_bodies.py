"""Tests for strict parsing of REST JSON bodies against the descriptors of the services behind the edge."""

from __future__ import annotations

import base64
import json

import pytest

from services.runtime import topology
from services.runtime.errors import InvalidArgument
from services.runtime.json_bodies import JsonBodyChecker
from services.runtime.roles import service

CREATE = "/mcpmesh.workflows.v1.WorkflowService/CreateWorkflow"
CANCEL = "/mcpmesh.workflows.v1.WorkflowService/CancelWorkflow"
GET = "/mcpmesh.workflows.v1.WorkflowService/GetWorkflow"


@pytest.fixture(scope="module")
def checker() -> JsonBodyChecker:
    return JsonBodyChecker([service(topology.service(name).grpc_service) for name in topology.service("gateway").calls])


def header(body: object) -> str:
    """The value Envoy's Lua filter puts in the x-mcpmesh-json-body header."""
    return base64.b64encode(json.dumps(body).encode()).decode()


def test_unknown_field_in_the_body_is_named(checker: JsonBodyChecker) -> None:
    with pytest.raises(InvalidArgument) as error:
        checker.check(CREATE, header({"type": "code_analysis", "colour": "red"}))
    [violation] = error.value.violations
    assert violation.field == "workflow.colour"
    assert error.value.reason == "UNKNOWN_FIELD"
    assert error.value.message.startswith("workflow.colour: ")


def test_valid_body_passes(checker: JsonBodyChecker) -> None:
    checker.check(CREATE, header({"type": "code_analysis", "parameters": {"path": "/p", "free": [1, 2]}}))


def test_no_header_passes(checker: JsonBodyChecker) -> None:
    checker.check(CREATE, None)


def test_methods_without_a_body_are_not_checked(checker: JsonBodyChecker) -> None:
    checker.check(GET, header({"anything": 1}))
    checker.check("/unknown.Service/Method", header({"anything": 1}))


def test_star_body_names_the_field_without_prefix(checker: JsonBodyChecker) -> None:
    checker.check(CANCEL, header({"id": "w1"}))
    with pytest.raises(InvalidArgument) as error:
        checker.check(CANCEL, header({"id": "w1", "force": True}))
    assert [v.field for v in error.value.violations] == ["force"]
    assert error.value.reason == "UNKNOWN_FIELD"


def test_wrong_type_is_refused_without_unknown_field_reason(checker: JsonBodyChecker) -> None:
    with pytest.raises(InvalidArgument) as error:
        checker.check(CREATE, header({"type": 5}))
    assert [v.field for v in error.value.violations] == ["workflow"]
    assert error.value.reason == "INVALID_ARGUMENT"


@pytest.mark.parametrize("raw", ["%%%not base64", base64.b64encode(b"\xff\xfe").decode()])
def test_undecodable_header_is_refused(checker: JsonBodyChecker, raw: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        checker.check(CREATE, raw)
    assert [v.field for v in error.value.violations] == ["workflow"]
