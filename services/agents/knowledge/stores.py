"""The stores the Knowledge Builder and the Documentation Generator write to, opened once by the agents service."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.agents.knowledge.queries import GraphQueries
from services.agents.knowledge.store import GraphStore
from services.agents.knowledge.store_sqlite import SCHEMA, SqliteGraphStore
from services.runtime.artifacts import ArtifactStore, ArtifactsUrl, open_artifact_store
from services.runtime.health_report import Check, database_check
from services.runtime.state import SqliteDatabase

GRAPH_FILE = "knowledge.db"  # the graph store is SQLite whatever the state URL says (Neptune/OpenSearch are later)


@dataclass
class KnowledgeStores:
    graphs: GraphStore
    artifacts: ArtifactStore
    artifacts_url: ArtifactsUrl
    _database: SqliteDatabase

    @property
    def queries(self) -> GraphQueries:
        return GraphQueries(self.graphs)

    def checks(self) -> dict[str, Check]:
        """Health checks: the graph store and the artifact store each answer."""
        where = f"s3://{self.artifacts_url.bucket}" if self.artifacts_url.scheme == "s3" else str(self.artifacts_url.folder)
        return {
            "graph_store": database_check(self.graphs.ping, GRAPH_FILE),
            "artifact_store": database_check(self.artifacts.ping, f"artifact store {where}"),
        }

    def close(self) -> None:
        self._database.close()


def open_knowledge_stores(data_dir: Path, artifacts_url: str = "") -> KnowledgeStores:
    """The SQLite graph store in the data folder and the artifact store `artifacts_url` names (empty: a local folder)."""
    try:
        url = ArtifactsUrl.parse(artifacts_url, data_dir)
    except ValueError as exc:
        raise SystemExit(f"MCPMESH_ARTIFACTS_URL={artifacts_url!r} is not valid: {exc}") from exc
    database = SqliteDatabase(data_dir / GRAPH_FILE, SCHEMA)
    return KnowledgeStores(SqliteGraphStore(database), open_artifact_store(artifacts_url, data_dir), url, database)
