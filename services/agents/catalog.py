"""The agents this server runs: add an agent by adding its module's SPEC to the list."""

from __future__ import annotations

from services.agents import code_analyzer
from services.agents.base import AgentSpec
from services.agents.database import agent as database_analyzer
from services.agents.docs import agent as documentation_generator
from services.agents.knowledge import agent as knowledge_builder
from services.agents.knowledge.stores import KnowledgeStores


def agents(stores: KnowledgeStores) -> list[AgentSpec]:
    """Agents that write to a store beyond their run record get it from `stores`."""
    return [
        code_analyzer.SPEC,
        database_analyzer.SPEC,
        knowledge_builder.spec(stores.graphs),
        documentation_generator.spec(stores.artifacts, stores.graphs),
    ]
