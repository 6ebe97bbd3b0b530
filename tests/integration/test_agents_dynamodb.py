"""Two agents instances on one dynamodb:// state URL (DynamoDB Local), as deployed on ECS: each creates what tables
are missing at start-up; a Knowledge Builder run on one is read back, run and graph, from the other. Graph stores
sharing the tables see each other's saves (each one's in-memory nodes are only used at the version they were read)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import boto3
import grpc
from google.protobuf import struct_pb2
from mcpmesh.agents.v1 import agent_service_pb2, agent_service_pb2_grpc

from services.agents import runs_dynamodb
from services.agents.app import build
from services.agents.knowledge import store_dynamodb
from services.agents.knowledge.graph import Edge, GraphInfo, Node
from services.runtime.config import Config
from services.runtime.identity import Identity
from services.runtime.service_tokens import Keys
from services.runtime.tokens import issue

SHOP = Path(__file__).resolve().parent.parent / "fixtures" / "knowledge" / "shop"


async def test_agents_share_runs_and_graphs_through_dynamodb(dynamodb_endpoint: str, tmp_path: Path) -> None:
    prefix = "a" + uuid.uuid4().hex[:12]
    url = f"dynamodb://{prefix}?endpoint={dynamodb_endpoint}&region=us-east-1"
    workspace = tmp_path / "workspace"
    shutil.copytree(SHOP, workspace / "shop")
    instances = []
    try:
        for name in ("one", "two"):  # own data folders: nothing but DynamoDB is shared
            config = Config(service="agents", port=0, data_dir=tmp_path / name,
                            workspace_roots=(workspace,), state_url=url, tracing="off")
            running = await build(config)
            ring = (await Keys.open(config)).ring
            token, _ = issue(ring, Identity("key:op1", "operator"), 60)
            instances.append((running, [("authorization", f"Bearer {token}")]))
        tables = boto3.client("dynamodb").get_paginator("list_tables").paginate()
        expected = [*runs_dynamodb.table_definitions(prefix), *store_dynamodb.table_definitions(prefix)]
        assert {t for page in tables for t in page["TableNames"] if t.startswith(f"{prefix}-")} >= {
            d["TableName"] for d in expected}  # the adapters' tables (the runtime may make its own beside them)
        (one, as_one), (two, as_two) = instances
        arguments = struct_pb2.Struct()
        arguments.update({"path": str(workspace / "shop")})
        async with grpc.aio.insecure_channel(f"127.0.0.1:{one.port}") as first, \
                grpc.aio.insecure_channel(f"127.0.0.1:{two.port}") as second:
            built = await agent_service_pb2_grpc.AgentServiceStub(first).RunAgent(
                agent_service_pb2.RunAgentRequest(name="knowledge-builder", input=arguments), metadata=as_one, timeout=60)
            metrics = dict(built.run.metrics)
            graph = str(metrics["graph"])
            assert float(str(metrics["nodes_added"])) > 10
            other = agent_service_pb2_grpc.AgentServiceStub(second)
            got = await other.GetAgentRun(agent_service_pb2.GetAgentRunRequest(id=built.run.id), metadata=as_two, timeout=10)
            assert (got.run.id, got.run.summary) == (built.run.id, built.run.summary)
            listed = await other.ListGraphs(agent_service_pb2.ListGraphsRequest(), metadata=as_two, timeout=10)
            assert graph in [g.name for g in listed.graphs]
            found = await other.SearchGraphNodes(agent_service_pb2.SearchGraphNodesRequest(graph=graph, query="service"),
                                                 metadata=as_two, timeout=10)
            assert "module/shop.service" in [n.id for n in found.nodes]
            neighbors = await other.ListGraphNeighbors(agent_service_pb2.ListGraphNeighborsRequest(
                graph=graph, node="module/shop.service", direction="out", edge_kinds=["imports"]), metadata=as_two, timeout=10)
            assert "module/shop.repo" in [n.node.id for n in neighbors.neighbors]
            # A rebuild on the other instance reads the first one's file records and writes nothing new.
            again = await other.RunAgent(agent_service_pb2.RunAgentRequest(name="knowledge-builder", input=arguments),
                                         metadata=as_two, timeout=60)
            assert (dict(again.run.metrics)["files_parsed"], dict(again.run.metrics)["nodes_added"]) == (0, 0)
    finally:
        for running, _ in instances:
            await running.stop(grace=1)


async def test_graph_stores_on_one_prefix_read_each_others_saves(dynamodb_endpoint: str) -> None:
    prefix = "g" + uuid.uuid4().hex[:12]
    client = boto3.client("dynamodb")
    store_dynamodb.create_tables(client, prefix)
    one, two = store_dynamodb.DynamoDBGraphStore(client, prefix), store_dynamodb.DynamoDBGraphStore(client, prefix)

    def stored() -> int:
        return int(client.query(TableName=f"{prefix}-graph-items", KeyConditionExpression="graph = :g", Select="COUNT",
                                ExpressionAttributeValues={":g": {"S": "g-00000000"}})["Count"])
    try:
        info = GraphInfo("g-00000000", "/g")
        first = [Node("module/a", "module", "alpha", "alpha"), Node("module/b", "module", "beta", "beta")]
        await one.save(info, first, [Edge("module/a", "imports", "module/b")], [])
        assert [n.id for n in (await two.search(info.name, "alpha", [], 0, 10))[0]] == ["module/a"]  # two now holds it
        renamed = [Node("module/a", "module", "gamma", "gamma"), first[1]]
        await one.save(info, renamed, [], [])
        assert (await two.search(info.name, "alpha", [], 0, 10))[1] == 0
        assert [n.id for n in (await two.search(info.name, "gamma", [], 0, 10))[0]] == ["module/a"]
        assert (await two.node(info.name, "module/a")).name == "gamma"
        assert await two.neighbors(info.name, "module/a", "both", [], 0, 10) == ([], 0)
        assert stored() == 2  # replaced rows and tombstones are gone: one item per live node, none for the edge
        await one.delete(info.name)
        assert await two.nodes(info.name) == []
        assert stored() == 0
    finally:
        one.close()
        two.close()
