"""The agents this server runs: add an agent by adding its module's SPEC to the list."""

from __future__ import annotations

from services.agents import code_analyzer
from services.agents.base import AgentSpec
from services.agents.database import agent as database_analyzer


def agents() -> list[AgentSpec]:
    return [code_analyzer.SPEC, database_analyzer.SPEC]
