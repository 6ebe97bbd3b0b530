"""The Code Analyzer's findings as SARIF 2.1.0 (what code-scanning dashboards read) and as JSON; baselines from either."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from services.agents.base import FileSpan, Finding
from services.agents.runs import finding_to_dict

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
FINGERPRINT_KEY = "mcpmesh/v1"
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
_SCORE = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}  # GitHub's security-severity


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": _LEVEL[finding.severity],
        "message": {"text": finding.message},
        "partialFingerprints": {FINGERPRINT_KEY: finding.fingerprint},
        "properties": {"severity": finding.severity, "confidence": finding.confidence, "category": finding.category},
    }
    if finding.cwe:
        result["properties"]["cwe"] = f"CWE-{finding.cwe}"
    if finding.fix_hint:
        result["properties"]["fixHint"] = finding.fix_hint
    location = finding.location
    if isinstance(location, FileSpan):
        region: dict[str, Any] = {"startLine": max(location.line, 1), "startColumn": location.column + 1}
        if location.end_line >= location.line and location.end_line:
            region["endLine"] = location.end_line
            if location.end_column and (location.end_line > location.line or location.end_column > location.column):
                region["endColumn"] = location.end_column + 1
        if finding.snippet:
            region["snippet"] = {"text": finding.snippet}
        result["locations"] = [
            {"physicalLocation": {"artifactLocation": {"uri": location.file, "uriBaseId": "SRCROOT"}, "region": region}}
        ]
    else:
        result["locations"] = [{"logicalLocations": [{"name": location.name, "kind": location.kind}]}]
    return result


def to_sarif(findings: Sequence[Finding], tools: dict[str, str]) -> dict[str, Any]:
    """One SARIF run per tool that found something (as SARIF asks), each with the rules it reported."""
    runs = []
    for tool in sorted({f.tool for f in findings} | {"bandit", "ruff"}):
        mine = [f for f in findings if f.tool == tool]
        rules: dict[str, int] = {}
        descriptors: list[dict[str, Any]] = []
        results = []
        for finding in mine:
            if finding.rule_id not in rules:
                rules[finding.rule_id] = len(descriptors)
                tags = [finding.category] + ([f"external/cwe/cwe-{finding.cwe}"] if finding.cwe else [])
                descriptor: dict[str, Any] = {
                    "id": finding.rule_id,
                    "shortDescription": {"text": finding.message.split(" (")[0][:200]},
                    "properties": {"tags": tags},
                }
                if finding.category in ("security", "secrets"):
                    descriptor["properties"]["security-severity"] = _SCORE[finding.severity]
                descriptors.append(descriptor)
            results.append(_result(finding, rules[finding.rule_id]))
        driver: dict[str, Any] = {"name": tool, "rules": descriptors}
        if tool in tools:
            driver["version"] = tools[tool]
        runs.append({
            "tool": {"driver": driver},
            "originalUriBaseIds": {"SRCROOT": {"description": {"text": "The analysed folder."}}},
            "results": results,
            "columnKind": "unicodeCodePoints",
        })
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": runs}


def to_json(findings: Sequence[Finding], summary: str, metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "tool": "mcpmesh code-analyzer",
        "summary": summary,
        "metrics": metrics,
        "findings": [finding_to_dict(f) for f in findings],
    }


def baseline_fingerprints(text: str) -> frozenset[str]:
    """The fingerprints of an earlier SARIF or JSON export; ValueError when the text is neither."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg}") from None
    if not isinstance(body, dict):
        raise ValueError("expected a SARIF log or a JSON export of this analyser")
    if "runs" in body:
        return frozenset(
            result.get("partialFingerprints", {}).get(FINGERPRINT_KEY, "")
            for run in body["runs"]
            for result in run.get("results", [])
        ) - {""}
    if isinstance(body.get("findings"), list):
        return frozenset(str(f.get("fingerprint", "")) for f in body["findings"] if isinstance(f, dict)) - {""}
    raise ValueError("expected a SARIF log or a JSON export of this analyser")
