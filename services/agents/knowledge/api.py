"""Graph queries on AgentService: proto in, GraphQueries call, proto out. Mixed into the agents servicer."""

from __future__ import annotations

import datetime as dt
from typing import Any

import grpc
from mcpmesh.agents.v1 import agent_service_pb2, graph_pb2

from services.agents.knowledge.graph import Edge, GraphInfo, Node, Span
from services.agents.knowledge.queries import GraphQueries
from services.runtime.pages import Page
from services.runtime.protos import timestamp, to_struct


def _span(span: Span | None) -> graph_pb2.SourceSpan | None:
    if span is None:
        return None
    return graph_pb2.SourceSpan(file=span.file, start_line=span.start_line, start_column=span.start_column,
                                end_line=span.end_line, end_column=span.end_column)


def node_message(node: Node) -> graph_pb2.GraphNode:
    return graph_pb2.GraphNode(id=node.id, kind=node.kind, name=node.name, qualified_name=node.qualified_name,
                               span=_span(node.span), attributes=to_struct(node.attributes))


def edge_message(edge: Edge) -> graph_pb2.GraphEdge:
    return graph_pb2.GraphEdge(source=edge.source, kind=edge.kind, target=edge.target, span=_span(edge.span),
                               attributes=to_struct(edge.attributes))


def graph_message(info: GraphInfo) -> graph_pb2.Graph:
    updated = dt.datetime.fromisoformat(info.updated) if info.updated else None
    return graph_pb2.Graph(name=info.name, root=info.root, node_count=info.node_count, edge_count=info.edge_count,
                           metrics=to_struct(info.metrics), update_time=timestamp(updated))


class GraphApi:
    """The graph RPCs; a servicer class lists this before AgentServicer and passes `graphs=` to its constructor."""

    def __init__(self, *args: Any, graphs: GraphQueries, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._graphs = graphs

    async def ListGraphs(
        self, request: agent_service_pb2.ListGraphsRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.ListGraphsResponse:
        page = Page.of(request.page_size, request.page_token)
        graphs, total = await self._graphs.list_graphs(page.offset, page.size)
        return agent_service_pb2.ListGraphsResponse(
            graphs=[graph_message(g) for g in graphs], next_page_token=page.next_token(page.offset + page.size < total)
        )

    async def GetGraphNode(
        self, request: agent_service_pb2.GetGraphNodeRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.GetGraphNodeResponse:
        return agent_service_pb2.GetGraphNodeResponse(node=node_message(await self._graphs.node(request.graph, request.node)))

    async def SearchGraphNodes(
        self, request: agent_service_pb2.SearchGraphNodesRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.SearchGraphNodesResponse:
        page = Page.of(request.page_size, request.page_token)
        nodes, total = await self._graphs.search(request.graph, request.query, list(request.kinds), page.offset, page.size)
        return agent_service_pb2.SearchGraphNodesResponse(
            nodes=[node_message(n) for n in nodes], next_page_token=page.next_token(page.offset + page.size < total),
            total_size=total,
        )

    async def ListGraphNeighbors(
        self, request: agent_service_pb2.ListGraphNeighborsRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.ListGraphNeighborsResponse:
        page = Page.of(request.page_size, request.page_token)
        found, total = await self._graphs.neighbors(
            request.graph, request.node, request.direction, list(request.edge_kinds), page.offset, page.size
        )
        return agent_service_pb2.ListGraphNeighborsResponse(
            neighbors=[graph_pb2.GraphNeighbor(edge=edge_message(n.edge), node=node_message(n.node)) for n in found],
            next_page_token=page.next_token(page.offset + page.size < total),
            total_size=total,
        )

    async def FindGraphPath(
        self, request: agent_service_pb2.FindGraphPathRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.FindGraphPathResponse:
        path = await self._graphs.path(request.graph, request.source, request.target)
        return agent_service_pb2.FindGraphPathResponse(
            nodes=[node_message(n) for n in path.nodes], edges=[edge_message(e) for e in path.edges]
        )

    async def ExportGraph(
        self, request: agent_service_pb2.ExportGraphRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.ExportGraphResponse:
        content, media_type = await self._graphs.export(request.graph, request.format)
        return agent_service_pb2.ExportGraphResponse(media_type=media_type, content=content)
