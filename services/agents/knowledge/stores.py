"""The stores the Knowledge Builder and the Documentation Generator write to, opened once by the agents service."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.agents.knowledge import store_dynamodb
from services.agents.knowledge.queries import GraphQueries
from services.agents.knowledge.store import GraphStore
from services.agents.knowledge.store_sqlite import SCHEMA, SqliteGraphStore
from services.runtime.artifacts import ArtifactStore, ArtifactsUrl, open_artifact_store
from services.runtime.dynamodb import dynamodb_client
from services.runtime.health_report import Check, database_check
from services.runtime.state import SqliteDatabase, StateUrl

GRAPH_FILE = "knowledge.db"  # the graph store's SQLite file in the data folder, unless the state URL is dynamodb://


@dataclass
class KnowledgeStores:
    graphs: GraphStore
    artifacts: ArtifactStore
    artifacts_url: ArtifactsUrl
    graphs_where: str  # for the health report: the SQLite file or the DynamoDB tables
    _close: Callable[[], None]

    @property
    def queries(self) -> GraphQueries:
        return GraphQueries(self.graphs)

    def checks(self) -> dict[str, Check]:
        """Health checks: the graph store and the artifact store each answer."""
        where = f"s3://{self.artifacts_url.bucket}" if self.artifacts_url.scheme == "s3" else str(self.artifacts_url.folder)
        return {
            "graph_store": database_check(self.graphs.ping, self.graphs_where),
            "artifact_store": database_check(self.artifacts.ping, f"artifact store {where}"),
        }

    def close(self) -> None:
        self._close()


async def open_knowledge_stores(data_dir: Path, artifacts_url: str = "", state: StateUrl | None = None) -> KnowledgeStores:
    """The graph store (DynamoDB tables when the state URL is dynamodb://, so every agents instance shares the
    graphs; otherwise SQLite in the data folder), set up and ready, and the artifact store `artifacts_url` names
    (empty: a local folder)."""
    try:
        url = ArtifactsUrl.parse(artifacts_url, data_dir)
    except ValueError as exc:
        raise SystemExit(f"MCPMESH_ARTIFACTS_URL={artifacts_url!r} is not valid: {exc}") from exc
    artifacts = open_artifact_store(artifacts_url, data_dir)
    if state is not None and state.scheme == "dynamodb":
        client = dynamodb_client(state)
        await asyncio.to_thread(store_dynamodb.create_tables, client, state.table_prefix)  # only the missing ones
        graphs = store_dynamodb.DynamoDBGraphStore(client, state.table_prefix)
        where = f"DynamoDB table {store_dynamodb.table_names(state.table_prefix)['graphs']}"
        return KnowledgeStores(graphs, artifacts, url, where, graphs.close)
    database = SqliteDatabase(data_dir / GRAPH_FILE, SCHEMA)
    return KnowledgeStores(SqliteGraphStore(database), artifacts, url, GRAPH_FILE, database.close)
