"""What DynamoDB Local does not show: two instances' registry changes colliding on the version item. DynamoDB
cancels one transaction (TransactionConflict); the adapter tries it again, and tells it from a failed condition."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from services.runtime.errors import Unavailable
from services.tools import registry_store_dynamodb
from services.tools.registry_store_dynamodb import DynamoDBRegistryStore


@pytest.fixture()
def stubbed() -> Iterator[tuple[DynamoDBRegistryStore, Stubber]]:
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        store = DynamoDBRegistryStore(client, "p")
        yield store, stubber
        store.close()


def _cancelled(stubber: Stubber, *codes: str) -> None:
    stubber.add_client_error("transact_write_items", service_error_code="TransactionCanceledException",
                             service_message="Transaction cancelled", http_status_code=400,
                             modeled_fields={"CancellationReasons": [{"Code": code} for code in codes]})


async def test_a_conflicting_put_is_tried_again(stubbed: tuple[DynamoDBRegistryStore, Stubber]) -> None:
    store, stubber = stubbed
    _cancelled(stubber, "None", "TransactionConflict")
    _cancelled(stubber, "TransactionConflict", "None")
    stubber.add_response("transact_write_items", {})
    registration = await store.put("mcp_server", "time", {"url": "http://x"})
    assert registration.body == {"url": "http://x"}
    stubber.assert_no_pending_responses()


async def test_delete_of_nothing_is_false_but_a_conflict_is_retried(stubbed: tuple[DynamoDBRegistryStore, Stubber]) -> None:
    store, stubber = stubbed
    _cancelled(stubber, "ConditionalCheckFailed", "None")
    assert await store.delete("mcp_server", "missing") is False
    _cancelled(stubber, "None", "TransactionConflict")
    stubber.add_response("transact_write_items", {})
    assert await store.delete("mcp_server", "time") is True
    stubber.assert_no_pending_responses()


async def test_lasting_contention_is_unavailable(stubbed: tuple[DynamoDBRegistryStore, Stubber],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store, stubber = stubbed
    monkeypatch.setattr(registry_store_dynamodb, "MAX_RETRIES", 3)
    for _ in range(3):
        _cancelled(stubber, "None", "TransactionConflict")
    with pytest.raises(Unavailable) as contended:
        await store.put("mcp_server", "time", {})
    assert contended.value.reason == "REGISTRY_CONTENDED"


async def test_other_cancellations_are_raised(stubbed: tuple[DynamoDBRegistryStore, Stubber]) -> None:
    store, stubber = stubbed
    _cancelled(stubber, "ValidationError", "None")
    with pytest.raises(ClientError, match="Transaction cancelled"):
        await store.put("mcp_server", "time", {})
