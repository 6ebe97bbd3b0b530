"""The Code Analyzer's run: walk, read, hash, reuse cached results, analyse the rest in worker processes and ruff
in parallel, then suppressions, fingerprints and the baseline over the one finding record."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

from services.agents.base import FileSpan, Finding, Limits
from services.agents.code import ruff_lint
from services.agents.code.cache import FileCache
from services.agents.code.python_file import FunctionMetrics
from services.agents.code.treesitter import LANGUAGES
from services.agents.code.worker import FileOutcome, analyze_file
from services.runtime.file_walk import count_lines, read_file_capped, walk_files

VERSION = "3"  # bump when what a file's analysis yields changes: cached results of another version are not used
SECRET_ONLY = {".env", ".yaml", ".yml", ".json", ".ini", ".cfg", ".toml", ".properties", ".sh", ".conf", ".tf"}
_NATIVE_SUPPRESSION = {"bandit", "ruff"}  # they read their own suppression comments (nosec, noqa)
_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[\w\-/, ]+))?", re.IGNORECASE)
_QUOTED = re.compile(r"""(['"])(?:(?!\1).)+\1""")
_PASSWORD_RULES = {"B105", "B106", "B107"}  # bandit quotes the password it found in its message
_SMALL_RUN = 8  # fewer files than this are analysed in the calling thread: starting workers would cost more

_pool_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def _workers() -> ProcessPoolExecutor:
    """One pool per process, started on first use. spawn: forking a process that runs gRPC threads is unsafe."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(max_workers=max(os.cpu_count() or 1, 1), mp_context=multiprocessing.get_context("spawn"))
        return _pool


def warm_up() -> None:
    """Starts the workers and has each load its analysers, so the first run does not pay for it."""
    pool = _workers()
    for future in [pool.submit(analyze_file, "warm.py", b"x = 1\n", "python") for _ in range(2 * (os.cpu_count() or 1))]:
        future.result()


def language_of(name: str) -> str | None:
    suffix = Path(name).suffix.lower()
    if suffix in (".py", ".pyi"):
        return "python"
    if suffix in LANGUAGES:
        return LANGUAGES[suffix]
    if suffix in SECRET_ONLY or name.startswith(".env"):
        return "config"
    return None


@dataclass
class CodeReport:
    findings: list[Finding]
    files_by_language: dict[str, int]
    files_skipped: int
    lines: int
    functions: list[tuple[str, FunctionMetrics]]  # (file, metrics)
    classes: int
    maintainability: list[tuple[str, float, str]]  # (file, index, rank) for Python files
    unparsed: list[str]
    truncated: bool
    cache_hits: int
    suppressed: int
    baseline_matched: int
    tools: dict[str, str] = field(default_factory=dict)


def _suppressed(finding: Finding, lines: list[str]) -> bool:
    """`# noqa` / `# nosec` (Python), `// eslint-disable-line` and `-next-line`, `//nolint` and `// #nosec` (Go)
    for the analysers that do not read them themselves; a `# noqa: CODES` list must name the rule."""
    if finding.tool in _NATIVE_SUPPRESSION or not isinstance(finding.location, FileSpan):
        return False
    row = finding.location.line
    line = lines[row - 1] if 0 < row <= len(lines) else ""
    previous = lines[row - 2] if 1 < row <= len(lines) + 1 else ""
    if "nosec" in line or "eslint-disable-line" in line or "eslint-disable-next-line" in previous or "//nolint" in line:
        return True
    if "pragma: allowlist secret" in line:
        return True
    match = _NOQA.search(line)
    if match:
        codes = match.group("codes")
        return not codes or finding.rule_id in {c.strip() for c in codes.split(",")}
    return False


def fingerprint(finding: Finding, occurrence: int) -> str:
    """Tool, rule, file, the finding's own text (its line without spacing, or the secret's hash) and which
    occurrence of that text it is in the file: lines added or removed above it do not change it."""
    basis = finding.fingerprint or " ".join(finding.snippet.split())
    if not basis:
        basis = finding.message
    text = "\x1f".join((finding.tool, finding.rule_id, finding.file, basis, str(occurrence)))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _finish(findings: list[Finding], lines_of: dict[str, list[str]], baseline: frozenset[str]) -> tuple[list[Finding], int, int]:
    kept: list[Finding] = []
    suppressed = matched = 0
    seen: Counter[tuple[str, str, str, str]] = Counter()
    for finding in sorted(findings, key=Finding.sort_key):
        lines = lines_of.get(finding.file, [])
        if _suppressed(finding, lines):
            suppressed += 1
            continue
        snippet = finding.snippet
        if not snippet and finding.tool == "ruff" and isinstance(finding.location, FileSpan):
            row = finding.location.line
            snippet = lines[row - 1].strip() if 0 < row <= len(lines) else ""
        if finding.rule_id in _PASSWORD_RULES and finding.tool == "bandit":
            # Findings travel to dashboards and logs: the secret itself must not.
            finding = replace(finding, message=_QUOTED.sub("'********'", finding.message))
            snippet = _QUOTED.sub('"********"', snippet)
        finding = replace(finding, snippet=snippet)
        key = (finding.tool, finding.rule_id, finding.file, finding.fingerprint or " ".join(snippet.split()))
        seen[key] += 1
        finding = replace(finding, fingerprint=fingerprint(finding, seen[key]))
        if finding.fingerprint in baseline:
            matched += 1
            continue
        kept.append(finding)
    return kept, suppressed, matched


def _tool_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("bandit", "ruff", "radon", "detect-secrets", "tree-sitter")}


def analyze(
    root: Path,
    limits: Limits,
    check: Callable[[], None],
    cache: FileCache,
    baseline: frozenset[str] = frozenset(),
    timeout: float = 120.0,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> CodeReport:
    """Analyses every source and config file under root; `check` raises to stop (cancel, deadline); `progress`
    hears (files done, files in all) after the cache lookup and as the files are analysed."""
    paths, truncated = walk_files(root, max_files=limits.max_files)
    tools = _tool_versions()
    salt = VERSION + repr(sorted(tools.items())) + ruff_lint.SELECT
    files: dict[str, tuple[str, bytes, str]] = {}  # relative path -> (language, bytes, cache key)
    skipped = 0
    for path in paths:
        relative = path.relative_to(root).as_posix()
        language = language_of(path.name)
        if language is None:
            continue
        try:
            _, data = read_file_capped(path, limits.max_file_bytes)
        except OSError:
            skipped += 1
            continue
        if data is None or b"\x00" in data[:8192]:
            skipped += 1  # too large, or binary
            continue
        key = hashlib.sha256(f"{salt}\x00{relative}\x00".encode() + data).hexdigest()
        files[relative] = (language, data, key)
    check()
    outcomes: dict[str, FileOutcome] = {}
    cached = cache.get_many([key for _, _, key in files.values()])
    for relative, (_, _, key) in files.items():
        if key in cached:
            outcomes[relative] = cached[key]
    missing = sorted(r for r in files if r not in outcomes)
    progress(len(outcomes), len(files))
    ruff_files = [r for r in missing if files[r][0] == "python"]
    with tempfile.TemporaryDirectory(prefix="mcpmesh-ruff-") as copy:
        # ruff reads a private copy of the bytes read here: what it checks is what was hashed and cached, and a
        # folder swapped for a symlink during the run cannot send it outside the workspace.
        for relative in ruff_files:
            target = Path(copy, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(files[relative][1])
        processes = ruff_lint.start(Path(copy), ruff_files) if ruff_files else []
        try:
            fresh = _run_workers(missing, files, check, lambda done: progress(len(outcomes) + done, len(files)))
            lint = ruff_lint.collect(Path(copy), processes, timeout) if processes else {}
        finally:
            ruff_lint.stop(processes)
    for relative in missing:
        outcome = fresh[relative]
        outcome.findings = outcome.findings + lint.get(relative, [])
        outcomes[relative] = outcome
    cache.put_many({files[r][2]: fresh[r] for r in missing})
    lines_of = {r: files[r][1].decode("utf-8-sig", "replace").splitlines() for r in files}
    findings, suppressed, matched = _finish([f for o in outcomes.values() for f in o.findings], lines_of, baseline)
    languages = Counter(o.language for o in outcomes.values())
    return CodeReport(
        findings=findings,
        files_by_language=dict(sorted(languages.items())),
        files_skipped=skipped,
        lines=sum(count_lines(files[r][1]) for r in files),
        functions=[(r, f) for r in sorted(outcomes) for f in outcomes[r].functions],
        classes=sum(o.classes for o in outcomes.values()),
        maintainability=[
            (r, o.maintainability, o.maintainability_rank) for r, o in sorted(outcomes.items()) if o.maintainability is not None
        ],
        unparsed=sorted(r for r, o in outcomes.items() if not o.parsed),
        truncated=truncated,
        cache_hits=len(files) - len(missing),
        suppressed=suppressed,
        baseline_matched=matched,
        tools=tools,
    )


def _run_workers(
    missing: list[str], files: dict[str, tuple[str, bytes, str]], check: Callable[[], None], progress: Callable[[int], None]
) -> dict[str, FileOutcome]:
    """Analyses the files not in the cache; `progress` hears how many are done, per file (or per batch of workers)."""
    if len(missing) < _SMALL_RUN:
        done: dict[str, FileOutcome] = {}
        for relative in missing:
            check()
            language, data, _ = files[relative]
            done[relative] = analyze_file(relative, data, language)
            progress(len(done))
        return done
    pool = _workers()
    # Largest first, so the last file to finish is a small one and both workers end together.
    order = sorted(missing, key=lambda r: -len(files[r][1]))
    pending: dict[Future[FileOutcome], str] = {pool.submit(analyze_file, r, files[r][1], files[r][0]): r for r in order}
    results: dict[str, FileOutcome] = {}
    try:
        while pending:
            finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in finished:
                results[pending.pop(future)] = future.result()
            if finished:
                progress(len(results))
            check()
    finally:
        for future in pending:
            future.cancel()
    return results
