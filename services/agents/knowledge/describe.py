"""Descriptions of entities from the configured model: the one part of the graph a model writes, marked as such."""

from __future__ import annotations

from dataclasses import replace

from services.agents.base import ModelClient
from services.agents.knowledge.graph import Node

MAX_ENTITIES = 20
SYSTEM = (
    "You describe terms found in a software project's documentation. For each term, write one short sentence saying "
    "what it most likely means in this project. Answer with one line per term, exactly `term :: description`, and "
    "nothing else. Skip a term you cannot describe."
)


def describe_entities(nodes: list[Node], model: ModelClient) -> tuple[list[Node], str, tuple[int, int]]:
    """Nodes with `description` (and `description_source`) set on up to MAX_ENTITIES phrase entities; the LLM status
    ("completed" or "failed") and the (input, output) tokens used. A failed call leaves the nodes as they were."""
    entities = [n for n in nodes if n.kind == "entity"][:MAX_ENTITIES]
    if not entities:
        return nodes, "completed", (0, 0)
    prompt = "Terms:\n" + "\n".join(f"- {n.qualified_name}" for n in entities)
    try:
        reply = model.complete(SYSTEM, prompt, max_tokens=1024)
    except Exception:  # the static graph stands without descriptions; the run says the model step failed
        return nodes, "failed", (0, 0)
    wanted = {n.qualified_name.lower(): n.id for n in entities}
    described: dict[str, str] = {}
    for line in reply.text.splitlines():
        term, sep, text = line.strip().lstrip("-* ").partition("::")
        node = wanted.get(term.strip().strip("`").lower())
        if sep and node and text.strip():
            described[node] = text.strip()
    out = [
        replace(n, attributes={**n.attributes, "description": described[n.id], "description_source": f"model:{reply.model_id}"})
        if n.id in described else n
        for n in nodes
    ]
    return out, "completed", (reply.input_tokens, reply.output_tokens)
