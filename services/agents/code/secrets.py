"""Secrets with detect-secrets: every plugin it ships and its default filters, on lines that can match.

detect-secrets calls each of its ~27 plugins on every line through a dependency injector; a line that none of
the plugins' own patterns can match yields nothing, so those lines are skipped before the plugins run."""

from __future__ import annotations

import bisect
import functools
import re
import sre_parse as _parser
from dataclasses import dataclass
from typing import Any

_state: dict[str, Any] = {}


@dataclass(frozen=True)
class Secret:
    line: int
    kind: str  # detect-secrets' secret type, such as "AWS Access Key"
    hashed: str  # detect-secrets' SHA-1 of the secret: never the secret itself
    masked_line: str  # the line with the secret replaced by asterisks


def _setup() -> list[tuple[Any, list[re.Pattern[str]] | None]]:
    """Each plugin (default settings: all of them) with the patterns some part of a line must match for it to
    fire; None for a plugin with logic of its own, which then sees every line."""
    if "plugins" not in _state:
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
        from detect_secrets.plugins.base import RegexBasedDetector
        from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
        from detect_secrets.plugins.keyword import DENYLIST, KeywordDetector
        from detect_secrets.settings import cache_bust, configure_settings_from_baseline, get_plugins

        # What detect_secrets.settings.default_settings() sets (every plugin, default filters), kept for the
        # lifetime of this process instead of inside a context manager.
        cache_bust()
        plugin_types: list[type[Any]] = list(get_mapping_from_secret_type_to_class().values())
        configure_settings_from_baseline({"plugins_used": [{"name": kind.__name__} for kind in plugin_types]})
        gated: list[tuple[Any, list[re.Pattern[str]] | None]] = []
        for plugin in get_plugins():
            gate: list[re.Pattern[str]] | None
            if isinstance(plugin, KeywordDetector):
                gate = [re.compile("|".join(DENYLIST), re.IGNORECASE)]  # every keyword regex contains one of them
            elif isinstance(plugin, HighEntropyStringsPlugin):
                # Shannon entropy of n characters is at most log2(n): a shorter quoted run cannot pass the limit.
                shortest = int(2**plugin.entropy_limit) + 1
                gate = [re.compile(f"[\'\"][{re.escape(plugin.charset)}]{{{shortest},}}[\'\"]")]
            elif isinstance(plugin, RegexBasedDetector) and type(plugin).analyze_line is RegexBasedDetector.analyze_line:
                gate = list(plugin.denylist)
            else:
                gate = None
            # MULTILINE: searched over the whole text, ^ and $ still mean a line's start and end.
            gated.append((plugin, None if gate is None else [re.compile(g.pattern, g.flags | re.MULTILINE) for g in gate]))
        _state["plugins"] = gated
    return _state["plugins"]


def _required(items: Any) -> set[str] | None:
    """Strings one of which every match of this parsed pattern contains, or None when none can be told.

    Only consuming parts count: a literal run, a group, a repeat of at least one, an alternation whose every
    branch requires something. Of several, the set whose shortest string is longest is the sharpest filter."""
    candidates: list[set[str]] = []
    run: list[str] = []
    for op, value in items:
        if op is _parser.LITERAL:
            run.append(chr(value))
            continue
        if run:
            candidates.append({"".join(run)})
            run = []
        if op is _parser.SUBPATTERN:
            inner = _required(value[-1])
            if inner:
                candidates.append(inner)
        elif op is _parser.BRANCH:
            branches = [_required(branch) for branch in value[1]]
            if branches and all(branches):
                candidates.append(set().union(*branches))  # type: ignore[arg-type]
        elif op in (_parser.MAX_REPEAT, _parser.MIN_REPEAT) and value[0] >= 1:
            inner = _required(value[2])
            if inner:
                candidates.append(inner)
    if run:
        candidates.append({"".join(run)})
    return max(candidates, key=lambda c: min(len(x) for x in c), default=None)


@functools.lru_cache(maxsize=256)
def _literal_gate(pattern: re.Pattern[str]) -> tuple[frozenset[str], bool] | None:
    """(strings, case-insensitive) that any match must contain, when they are at least three characters long."""
    try:
        required = _required(_parser.parse(pattern.pattern, pattern.flags))
    except (re.error, RecursionError):
        return None
    if not required or min(len(x) for x in required) < 3:
        return None
    folded = bool(pattern.flags & re.IGNORECASE)
    return frozenset(x.lower() for x in required) if folded else frozenset(required), folded


def _lines_matching(text: str, starts: list[int], patterns: list[re.Pattern[str]], lowered: str | None = None) -> set[int]:
    """1-based numbers of the lines any match touches: one pass over the text per pattern instead of one per line.

    A pattern that requires a literal is first checked with str.find over the text (C speed): only when the
    literal occurs is the pattern itself searched, on the lines holding it."""
    found: set[int] = set()
    for pattern in patterns:
        gate = _literal_gate(pattern) if lowered is not None else None
        if gate is not None:
            literals, folded = gate
            haystack = lowered if folded else text
            assert haystack is not None
            holding: set[int] = set()
            for literal in literals:
                at = haystack.find(literal)
                while at != -1:
                    holding.add(bisect.bisect_right(starts, at))
                    at = haystack.find(literal, at + 1)
            for number in holding:  # the pattern decides, on each candidate line and its neighbours' reach
                line = text[starts[number - 1] : starts[number] - 1]
                if pattern.search(line):
                    found.add(number)
            continue
        for match in pattern.finditer(text):
            first = bisect.bisect_right(starts, match.start())
            last = bisect.bisect_right(starts, max(match.end() - 1, match.start()))
            found.update(range(first, last + 1))
    return found


def scan_text(filename: str, text: str) -> list[Secret]:
    """detect-secrets' line-based scan of one file's text (what its scan_file does for a source file)."""
    from detect_secrets.core import scan
    from detect_secrets.util.code_snippet import get_code_snippet

    plugins = _setup()
    # Files detect-secrets skips by name (lock files full of integrity hashes, swagger files, non-text files), as
    # its scan_file does; its filter of files missing on disk does not apply to text already read.
    from detect_secrets.filters import heuristic

    if heuristic.is_lock_file(filename) or heuristic.is_swagger_file(filename) or heuristic.is_non_text_file(filename):
        return []
    lines = text.splitlines()
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    text = "\n".join(lines)  # splitlines also splits on \r and others: offsets must agree with the lines
    every = set(range(1, len(lines) + 1))
    lowered = text.lower()
    lowered_ok = lowered if len(lowered) == len(text) else None  # a few characters change length when lowered
    candidates = [
        (plugin, every if gate is None else _lines_matching(text, starts, gate, lowered_ok)) for plugin, gate in plugins
    ]
    found: list[Secret] = []
    for number in sorted(set().union(*(c for _, c in candidates))):
        line = lines[number - 1].rstrip()
        snippet = get_code_snippet(lines=lines, line_number=number)
        # The same steps, in the same order, as detect_secrets.core.scan._process_line_based_plugins.
        if scan._is_filtered_out(required_filter_parameters=["line"], filename=filename, line=line, context=snippet):
            continue
        for plugin, lines_of_plugin in candidates:
            if number not in lines_of_plugin:
                continue  # none of this plugin's patterns touches the line: it would find nothing
            for secret in scan._scan_line(plugin=plugin, filename=filename, line=line, line_number=number, context=snippet):
                if not scan._is_filtered_out(
                    required_filter_parameters=["context"],
                    filename=secret.filename,
                    secret=secret.secret_value,
                    plugin=plugin,
                    line=line,
                    context=snippet,
                ):
                    value = secret.secret_value or ""
                    masked = line.replace(value, "*" * 8) if value else line
                    found.append(Secret(number, secret.type, secret.secret_hash, masked.strip()))
    return found
