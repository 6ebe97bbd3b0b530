"""The agent slot: what every agent declares (spec), receives (run context) and returns (findings, result)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from services.runtime.errors import DomainError, InvalidArgument
from services.runtime.identity import ANONYMOUS, Identity
from services.runtime.workspace import resolve_folder_argument

SEVERITIES = ("critical", "high", "medium", "low", "info")  # the one severity list, most severe first
CONFIDENCES = ("high", "medium", "low")
LLM_STATES = ("not_configured", "skipped", "completed", "failed")


class RunCancelled(DomainError):
    """The caller went away or cancelled the run; the agent stops at its next check."""

    code = "CANCELLED"


class RunTimedOut(DomainError):
    """The run passed its deadline; the agent stops at its next check."""

    code = "DEADLINE_EXCEEDED"


@dataclass(frozen=True)
class FileSpan:
    """A place in a file: path relative to the analysed folder (forward slashes), lines 1-based, columns 0-based.

    end_line/end_column are 0 when the tool gives only a start."""

    file: str
    line: int
    column: int = 0
    end_line: int = 0
    end_column: int = 0


@dataclass(frozen=True)
class NamedObject:
    """A finding's subject that is not a file span: a database table or column, an index, a graph node."""

    kind: str  # "table", "column", "index", "node", ...
    name: str  # qualified name, such as "public.orders.customer_id"


Location = FileSpan | NamedObject


@dataclass(frozen=True)
class Finding:
    """One problem an agent found, whatever tool found it: the record every agent returns."""

    rule_id: str  # the tool's own rule id, such as "B602" or "E722"
    tool: str  # "bandit", "ruff", "radon", "detect-secrets", "tree-sitter", ...
    severity: str  # one of SEVERITIES
    message: str
    location: Location
    category: str = ""  # "security", "quality", "complexity", "syntax", "schema", ...
    confidence: str = "high"  # one of CONFIDENCES
    cwe: int = 0  # CWE id; 0 when none applies
    fix_hint: str = ""
    snippet: str = ""
    fingerprint: str = ""  # stable across unrelated edits; see the agent for how it is made

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")
        if self.confidence not in CONFIDENCES:
            raise ValueError(f"confidence {self.confidence!r} is not one of {CONFIDENCES}")

    # The flat view older readers (workflows merge, the CLI) use: empty/0 for a named object.
    @property
    def file(self) -> str:
        return self.location.file if isinstance(self.location, FileSpan) else ""

    @property
    def line(self) -> int:
        return self.location.line if isinstance(self.location, FileSpan) else 0

    @property
    def column(self) -> int:
        return self.location.column if isinstance(self.location, FileSpan) else 0

    def sort_key(self) -> tuple[str, int, int, str, str]:
        if isinstance(self.location, FileSpan):
            return (self.location.file, self.location.line, self.location.column, self.rule_id, self.message)
        return (f"\x00{self.location.kind}:{self.location.name}", 0, 0, self.rule_id, self.message)


@dataclass(frozen=True)
class Artifact:
    """A document an agent made (a report, SARIF, Markdown)."""

    name: str
    media_type: str
    content: str


@dataclass(frozen=True)
class ModelReply:
    text: str
    model_id: str
    input_tokens: int = 0
    output_tokens: int = 0


class ModelClient(Protocol):
    """The optional language model (Bedrock when configured). Agents call it from their worker thread."""

    model_id: str

    def complete(self, system: str, prompt: str, *, max_tokens: int = 1024) -> ModelReply: ...


@dataclass(frozen=True)
class Limits:
    max_files: int = 20000
    max_file_bytes: int = 1_000_000


class Progress(Protocol):
    """How an agent reports what it is doing: a stage, the share done (0..1) and, when the stage counts them, the
    items (files, tables) done of their total. Called from the agent's worker thread; cheap, may be called often."""

    def __call__(self, stage: str, fraction: float, done: int = 0, total: int = 0) -> None: ...


def _no_progress(stage: str, fraction: float, done: int = 0, total: int = 0) -> None:
    return None


@dataclass
class RunContext:
    """What one run may use: the workspace roots, limits, a deadline, cancellation, progress, the model."""

    roots: tuple[Path, ...]
    limits: Limits = field(default_factory=Limits)
    deadline: float = float("inf")  # time.monotonic() value
    cancelled: threading.Event = field(default_factory=threading.Event)
    progress: Progress = _no_progress
    model: ModelClient | None = None  # None: no model configured, or the caller disabled it
    model_status: str = "not_configured"  # what to report when model is None: "not_configured" or "skipped"
    caller: Identity = ANONYMOUS
    data_dir: Path | None = None  # a folder the agent may keep caches in

    def check(self) -> None:
        """Agents call this between units of work (a file, a table) so a cancel or a deadline stops them."""
        if self.cancelled.is_set():
            raise RunCancelled("the run was cancelled", reason="AGENT_RUN_CANCELLED")
        if time.monotonic() > self.deadline:
            raise RunTimedOut("the run passed its deadline", reason="AGENT_RUN_TIMED_OUT")

    def folder(self, arguments: Mapping[str, Any], name: str = "path") -> Path:
        """A folder argument resolved inside the workspace roots; InvalidArgument names `input.<name>`."""
        return resolve_folder_argument(arguments.get(name), self.roots, f"input.{name}")


@dataclass
class RunResult:
    """What an agent returns; the runner adds the id, times, caller and duration."""

    findings: list[Finding] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    files_analyzed: int = 0
    files_skipped: int = 0
    lines_analyzed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    llm_status: str = "not_configured"  # one of LLM_STATES: whether the model part ran
    truncated: bool = False  # a limit (files) cut the analysis short


AgentFunction = Callable[[dict[str, Any], RunContext], RunResult]


@dataclass(frozen=True)
class AgentSpec:
    """An agent as the catalog lists it. `run` is called in a worker thread with checked arguments."""

    name: str  # such as "code-analyzer"
    display_name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the input; services.runtime.workspace.path_input_schema() for a folder
    run: AgentFunction
    capabilities: tuple[str, ...] = ()  # such as ("python", "security", "sarif")
    uses_model: bool = False  # whether a configured model adds to the result


def require_int(arguments: Mapping[str, Any], name: str, default: int, *, low: int, high: int) -> int:
    """An optional integer argument within bounds; InvalidArgument names `input.<name>`."""
    value = arguments.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument.field(f"input.{name}", f"must be an integer from {low} to {high}")
    return value
