"""Lint with ruff (its own binary, from the ruff wheel): pyflakes, pycodestyle errors and bugbear rules."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from services.agents.base import FileSpan, Finding

SELECT = "E4,E7,E9,F,B"  # ruff's defaults plus bugbear (mutable defaults, loop variable capture, ...)
BATCH = 400  # files per ruff process, to keep command lines short


def ruff_binary() -> str:
    from ruff.__main__ import find_ruff_bin

    return os.fsdecode(find_ruff_bin())


def _severity(code: str) -> tuple[str, str]:
    if code in ("invalid-syntax", "syntax-error") or code.startswith("E9"):
        return "high", "syntax"
    if code.startswith(("F", "B")):
        return "medium", "quality"
    return "low", "quality"


def start(root: Path, files: Sequence[str]) -> list[subprocess.Popen[bytes]]:
    """Starts ruff on `files` (relative to root) so it runs while the worker processes do their part.

    --isolated: the analysed project's own configuration neither changes the rules nor runs plugins;
    `# noqa` comments are still honoured. --no-cache: nothing is written into the analysed folder."""
    binary = ruff_binary()
    return [
        subprocess.Popen(
            [binary, "check", "--isolated", "--no-cache", "--exit-zero", "--output-format", "json",
             "--select", SELECT, "--", *files[i : i + BATCH]],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        for i in range(0, len(files), BATCH)
    ]


def collect(root: Path, processes: list[subprocess.Popen[bytes]], timeout: float) -> dict[str, list[Finding]]:
    """ruff's diagnostics per relative file path."""
    found: dict[str, list[Finding]] = {}
    real_root = root.resolve()
    for process in processes:
        output, _ = process.communicate(timeout=max(timeout, 1.0))
        for item in json.loads(output or b"[]"):
            code = item.get("code") or "invalid-syntax"
            try:
                path = Path(item["filename"]).resolve().relative_to(real_root).as_posix()
            except ValueError:
                continue
            start_at, end_at = item["location"], item.get("end_location") or item["location"]
            severity, category = _severity(code)
            fix = item.get("fix") or {}
            hint = fix.get("message") or (f"See {item['url']}" if item.get("url") else "")
            found.setdefault(path, []).append(
                Finding(
                    rule_id=code,
                    tool="ruff",
                    severity=severity,
                    message=item["message"],
                    location=FileSpan(path, start_at["row"], max(start_at["column"] - 1, 0), end_at["row"], max(end_at["column"] - 1, 0)),
                    category=category,
                    fix_hint=hint or "",
                )
            )
    return found


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()
