"""SARIF 2.1.0 built from the REST result fields of findings."""

from __future__ import annotations

from pathlib import Path

from clients.sarif import SEVERITY_RANK, to_sarif


def test_findings_become_sarif_results(tmp_path: Path) -> None:
    findings = [
        {"rule_id": "PY-EVAL", "severity": "SEVERITY_HIGH", "category": "security", "message": "eval() on input",
         "file": "app/main.py", "line": 5, "column": 15},
        {"rule_id": "PY-BARE-EXCEPT", "severity": "SEVERITY_LOW", "message": "bare except", "file": "app/main.py", "line": 6},
        {"rule_id": "PY-EVAL", "severity": "SEVERITY_HIGH", "message": "eval() on input", "file": str(tmp_path / "b.py"), "line": 1},
        {"ruleId": "SQL-1", "severity": "medium", "message": "no index", "location": {"file": "db.sql", "line": 0}},
    ]
    sarif = to_sarif(findings, tmp_path)
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    run = sarif["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["PY-EVAL", "PY-BARE-EXCEPT", "SQL-1"]
    results = run["results"]
    assert [(r["ruleId"], r["ruleIndex"], r["level"]) for r in results] == [
        ("PY-EVAL", 0, "error"), ("PY-BARE-EXCEPT", 1, "note"), ("PY-EVAL", 0, "error"), ("SQL-1", 2, "warning")]
    first = results[0]["locations"][0]["physicalLocation"]
    assert first == {"artifactLocation": {"uri": "app/main.py", "uriBaseId": "SRCROOT"}, "region": {"startLine": 5, "startColumn": 16}}
    # An absolute path inside the analysed folder is made relative; a line of 0 becomes 1 (SARIF lines start at 1).
    assert results[2]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "b.py"
    assert results[3]["locations"][0]["physicalLocation"]["region"] == {"startLine": 1}
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == tmp_path.resolve().as_uri() + "/"


def test_severity_order_comes_from_the_contract() -> None:
    assert sorted(SEVERITY_RANK, key=SEVERITY_RANK.__getitem__) == ["info", "low", "medium", "high", "critical"]
