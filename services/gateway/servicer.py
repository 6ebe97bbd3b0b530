"""GatewayService: API keys, who-am-I, system health and metrics, and the event feed."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable

import grpc
from google.protobuf import timestamp_pb2
from mcpmesh.gateway.v1 import gateway_pb2, gateway_service_pb2, gateway_service_pb2_grpc
from mcpmesh.health.v1 import health_pb2

from services.gateway.api_keys import ApiKey, ApiKeys
from services.gateway.events import EventFeed, SlowSubscriber
from services.gateway.system_health import SystemHealth
from services.gateway.token_issuer import TokenIssuer
from services.runtime.clock import utcnow
from services.runtime.errors import InvalidArgument, ResourceExhausted, Unauthenticated
from services.runtime.identity import ROLES, caller
from services.runtime.pages import Page
from services.runtime.protos import timestamp, to_struct

ROLE_NAMES = {gateway_pb2.Role.Value(f"ROLE_{role.upper()}"): role for role in ROLES}
ROLE_NUMBERS = {name: number for number, name in ROLE_NAMES.items()}
EVENT_NAMES = {
    gateway_pb2.EVENT_TYPE_WORKFLOW_UPDATE: "workflow_update",
    gateway_pb2.EVENT_TYPE_SERVICE_HEALTH: "service_health",
    gateway_pb2.EVENT_TYPE_SYSTEM_METRICS: "system_metrics",
}
EVENT_NUMBERS = {name: number for number, name in EVENT_NAMES.items()}


def _api_key(key: ApiKey) -> gateway_pb2.ApiKey:
    return gateway_pb2.ApiKey(
        id=key.id, display_name=key.display_name, role=ROLE_NUMBERS[key.role],
        create_time=timestamp(key.created), revoke_time=timestamp(key.revoked),
        expire_time=timestamp(key.expires), tool_scopes=list(key.scopes),
    )


def _now() -> timestamp_pb2.Timestamp:
    now = timestamp_pb2.Timestamp()
    now.GetCurrentTime()
    return now


class GatewayServicer(gateway_service_pb2_grpc.GatewayServiceServicer):
    def __init__(
        self, keys: ApiKeys, health: SystemHealth, feed: EventFeed, on_revoke: Callable[[], None], tokens: TokenIssuer
    ) -> None:
        self._keys = keys
        self._tokens = tokens
        self._on_revoke = on_revoke
        self._health = health
        self._feed = feed

    async def CreateApiKey(
        self, request: gateway_service_pb2.CreateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> gateway_service_pb2.CreateApiKeyResponse:
        wanted = request.api_key
        role = ROLE_NAMES.get(wanted.role, "")
        expires = wanted.expire_time.ToDatetime(dt.UTC) if wanted.HasField("expire_time") else None
        key, secret = await self._keys.create(wanted.display_name, role, expires=expires, scopes=tuple(wanted.tool_scopes))
        return gateway_service_pb2.CreateApiKeyResponse(api_key=_api_key(key), secret=secret)

    async def ListApiKeys(
        self, request: gateway_service_pb2.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> gateway_service_pb2.ListApiKeysResponse:
        page = Page.of(request.page_size, request.page_token)
        keys, more = await self._keys.list(page.offset, page.size)
        return gateway_service_pb2.ListApiKeysResponse(api_keys=[_api_key(k) for k in keys], next_page_token=page.next_token(more))

    async def RevokeApiKey(
        self, request: gateway_service_pb2.RevokeApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> gateway_service_pb2.RevokeApiKeyResponse:
        revoked = await self._keys.revoke(request.id)
        self._on_revoke()
        return gateway_service_pb2.RevokeApiKeyResponse(api_key=_api_key(revoked))

    async def GetWhoAmI(
        self, request: gateway_service_pb2.GetWhoAmIRequest, context: grpc.aio.ServicerContext
    ) -> gateway_service_pb2.GetWhoAmIResponse:
        who = caller(context)
        if who.anonymous:
            raise Unauthenticated("no API key on this call", reason="API_KEY_MISSING")
        key = await self._keys.store.get(who.principal.removeprefix("key:"))
        name = key.key.display_name if key is not None else ""
        return gateway_service_pb2.GetWhoAmIResponse(principal=who.principal, role=ROLE_NUMBERS[who.role], display_name=name)

    async def CreateToken(
        self, request: gateway_service_pb2.CreateTokenRequest, context: grpc.aio.ServicerContext
    ) -> gateway_service_pb2.CreateTokenResponse:
        who = caller(context)
        key_id = who.principal.removeprefix("key:")
        stored = await self._keys.store.get(key_id) if who.principal.startswith("key:") else None
        # A token is only ever made from a key that is usable now: a token cannot renew itself past a revocation.
        if stored is None or not stored.key.usable(utcnow()):
            raise Unauthenticated("tokens are made from a valid API key", reason="API_KEY_INVALID")
        not_after = stored.key.expires.timestamp() if stored.key.expires is not None else None
        token, expires = await self._tokens.issue(stored.key.identity(), not_after)
        stamp = timestamp_pb2.Timestamp()
        stamp.FromSeconds(int(expires))
        return gateway_service_pb2.CreateTokenResponse(token=token, expire_time=stamp)

    async def GetJwks(
        self, request: gateway_service_pb2.GetJwksRequest, context: grpc.aio.ServicerContext
    ) -> gateway_service_pb2.GetJwksResponse:
        return gateway_service_pb2.GetJwksResponse(keys=[gateway_service_pb2.JsonWebKey(**jwk) for jwk in await self._tokens.jwks()])

    async def RotateSigningKey(
        self, request: gateway_service_pb2.RotateSigningKeyRequest, context: grpc.aio.ServicerContext
    ) -> gateway_service_pb2.RotateSigningKeyResponse:
        return gateway_service_pb2.RotateSigningKeyResponse(kid=await self._tokens.rotate())

    async def GetSystemHealth(
        self, request: gateway_service_pb2.GetSystemHealthRequest, context: grpc.aio.ServicerContext
    ) -> gateway_service_pb2.GetSystemHealthResponse:
        states = await self._health.check()
        services = [
            gateway_pb2.ServiceHealth(
                service=s.service,
                status=s.status,
                instances=[gateway_pb2.InstanceHealth(address=i.address, mesh_status=i.mesh_status, report=i.report) for i in s.instances],
            )
            for s in states
        ]
        overall = max((s.status for s in states), default=health_pb2.HEALTH_STATUS_NOT_SERVING)
        return gateway_service_pb2.GetSystemHealthResponse(status=overall, services=services, report_time=_now())

    async def GetSystemMetrics(
        self, request: gateway_service_pb2.GetSystemMetricsRequest, context: grpc.aio.ServicerContext
    ) -> gateway_service_pb2.GetSystemMetricsResponse:
        metrics = await self._health.metrics()
        return gateway_service_pb2.GetSystemMetricsResponse(
            metrics=[gateway_service_pb2.Metric(service=s, name=n, value=v) for s, n, v in metrics], report_time=_now()
        )

    async def StreamEvents(
        self, request: gateway_service_pb2.StreamEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[gateway_service_pb2.StreamEventsResponse]:
        types = set()
        for number in request.types:
            if number not in EVENT_NAMES:
                raise InvalidArgument.field("types", f"unknown event type {number}")
            types.add(EVENT_NAMES[number])
        try:
            async for event in self._feed.subscribe(types):
                message = gateway_pb2.Event(
                    type=EVENT_NUMBERS[event.type], create_time=timestamp(event.created), data=to_struct(event.data)
                )
                yield gateway_service_pb2.StreamEventsResponse(event=message)
        except SlowSubscriber:
            raise ResourceExhausted("this stream fell too far behind the events and was dropped; reconnect",
                                    reason="SUBSCRIBER_TOO_SLOW") from None
