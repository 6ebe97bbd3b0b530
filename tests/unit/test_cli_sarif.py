"""SARIF 2.1.0 from the REST form of findings, through the Code Analyzer's exporter, valid against the OASIS schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from clients.sarif import SEVERITY_RANK, to_sarif

SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"


def test_rest_findings_become_schema_valid_sarif(tmp_path: Path) -> None:
    findings = [
        # As a workflow result holds them (proto field names) ...
        {"rule_id": "B307", "tool": "bandit", "severity": "SEVERITY_MEDIUM", "category": "security", "message": "eval",
         "file": "app/main.py", "line": 5, "column": 15, "end_line": 5, "end_column": 25, "cwe": 78,
         "confidence": "CONFIDENCE_HIGH", "fingerprint": "abc123", "snippet": "eval(data)"},
        {"rule_id": "E722", "tool": "ruff", "severity": "SEVERITY_LOW", "message": "bare except", "file": "app/main.py", "line": 6},
        # ... and as the agents' REST answer does (JSON names), including a finding at a named object.
        {"ruleId": "DB001", "tool": "schema", "severity": "SEVERITY_HIGH", "message": "no primary key",
         "object": {"kind": "table", "name": "public.orders"}, "fixHint": "ALTER TABLE ..."},
    ]
    document = to_sarif(findings, tmp_path)
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    runs = {run["tool"]["driver"]["name"]: run for run in document["runs"]}
    assert set(runs) >= {"bandit", "ruff", "schema"}
    [bandit] = runs["bandit"]["results"]
    assert bandit["ruleId"] == "B307" and bandit["level"] == "warning"
    assert bandit["partialFingerprints"] == {"mcpmesh/v1": "abc123"} and bandit["properties"]["cwe"] == "CWE-78"
    assert bandit["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "app/main.py", "uriBaseId": "SRCROOT"},
        "region": {"startLine": 5, "startColumn": 16, "endLine": 5, "endColumn": 26, "snippet": {"text": "eval(data)"}},
    }
    assert runs["ruff"]["results"][0]["level"] == "note"
    assert runs["schema"]["results"][0]["locations"] == [{"logicalLocations": [{"name": "public.orders", "kind": "table"}]}]
    assert runs["bandit"]["originalUriBaseIds"]["SRCROOT"]["uri"] == tmp_path.resolve().as_uri() + "/"


def test_severity_order_comes_from_the_contract() -> None:
    assert sorted(SEVERITY_RANK, key=SEVERITY_RANK.__getitem__) == ["info", "low", "medium", "high", "critical"]
