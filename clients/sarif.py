"""Findings as SARIF 2.1.0, for code-scanning tools, built from the REST result fields of a finding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcpmesh.agents.v1 import agent_pb2

from clients.rest import CLIENT_VERSION

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# The contract's Severity enum orders severities (INFO=1 .. CRITICAL=5); nothing else does.
SEVERITY_RANK = {name.removeprefix("SEVERITY_").lower(): number for name, number in agent_pb2.Severity.items() if number}
LEVELS = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
# GitHub code scanning reads this number (0-10) to rank security results.
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}


def severity(finding: dict[str, Any]) -> str:
    """"SEVERITY_HIGH", "high" or 4 -> "high"; unknown -> "info"."""
    value = finding.get("severity", "")
    if isinstance(value, int):
        return next((name for name, rank in SEVERITY_RANK.items() if rank == value), "info")
    name = str(value).removeprefix("SEVERITY_").lower()
    return name if name in SEVERITY_RANK else "info"


def location(finding: dict[str, Any]) -> tuple[str, int, int]:
    """(file, line, column) from flat fields or a nested location/span; 0 where unknown."""
    place = finding.get("location") or finding.get("span") or finding
    if not isinstance(place, dict):
        place = finding
    file = str(place.get("file") or place.get("path") or "")
    return file, int(place.get("line") or place.get("start_line") or place.get("startLine") or 0), int(place.get("column") or 0)


def rule_id(finding: dict[str, Any]) -> str:
    return str(finding.get("rule_id") or finding.get("ruleId") or finding.get("rule") or "unknown")


def _uri(file: str, root: Path | None) -> str:
    path = Path(file)
    if path.is_absolute() and root is not None:
        try:
            path = path.relative_to(root)
        except ValueError:
            return path.as_uri()
    return path.as_posix()


def to_sarif(findings: list[dict[str, Any]], root: Path | None = None) -> dict[str, Any]:
    """One run of the tool "mcpmesh"; locations relative to the analysed folder (uriBaseId SRCROOT)."""
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for finding in findings:
        rule, level = rule_id(finding), severity(finding)
        if rule not in rules:
            rules[rule] = {
                "id": rule,
                "shortDescription": {"text": str(finding.get("message", rule))},
                "properties": {"category": str(finding.get("category", "")), "security-severity": SECURITY_SEVERITY[level]},
            }
        file, line, column = location(finding)
        result: dict[str, Any] = {
            "ruleId": rule,
            "ruleIndex": list(rules).index(rule),
            "level": LEVELS[level],
            "message": {"text": str(finding.get("message", rule))},
            "properties": {"severity": level},
        }
        if file:
            region = {"startLine": max(line, 1)}
            if column > 0:
                region["startColumn"] = column + 1  # the agents count columns from 0, SARIF from 1
            result["locations"] = [{"physicalLocation": {
                "artifactLocation": {"uri": _uri(file, root), **({"uriBaseId": "SRCROOT"} if root else {})},
                "region": region,
            }}]
        results.append(result)
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "mcpmesh", "version": CLIENT_VERSION, "rules": list(rules.values())}},
        "results": results,
    }
    if root is not None:
        run["originalUriBaseIds"] = {"SRCROOT": {"uri": root.resolve().as_uri() + "/"}}
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}
