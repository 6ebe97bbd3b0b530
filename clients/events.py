"""One line per workflow event, as the CLI and the launcher print them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def format_event(event: Mapping[str, Any]) -> str:
    """`#3    40% [analyze_code] analysis finished`: sequence, progress, step when there is one, message.

    Takes the REST (JSON) form of a WorkflowEvent; fields the server left out print as their defaults."""
    step = f" [{event['step']}]" if event.get("step") else ""
    return f"#{event.get('sequence', 0):<3} {event.get('progressPercent', 0):>3}%{step} {event.get('message', '')}"
