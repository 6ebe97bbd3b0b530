"""The Code Analyzer on a fixture project with planted problems: exact findings, bandit parity, suppressions,
fingerprints, baseline, SARIF 2.1.0, the content-hash cache, and that analysed code is never run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import jsonschema
import pytest

from services.agents import code_analyzer
from services.agents.base import Finding, Limits, RunCancelled, RunContext
from services.agents.code.analyzer import analyze
from services.agents.code.cache import MemoryFileCache, SqliteFileCache
from services.agents.code.exports import baseline_fingerprints, to_sarif
from services.runtime.errors import InvalidArgument

FIXTURES = Path(__file__).parent.parent / "fixtures"
PLANTED = FIXTURES / "code" / "planted"

# Every finding the planted project must give: (rule, file, line), nothing more, nothing less.
EXPECTED = [
    ("B403", "app/handlers.py", 4),  # import pickle
    ("B404", "app/handlers.py", 6),  # import subprocess
    ("SECRET-KEYWORD", "app/handlers.py", 11),  # column 0: detect-secrets reports lines
    ("B105", "app/handlers.py", 11),  # hard-coded password, at the string's column
    ("B602", "app/handlers.py", 15),  # shell=True
    ("B301", "app/handlers.py", 19),  # pickle.loads
    ("B506", "app/handlers.py", 23),  # yaml.load
    ("B324", "app/handlers.py", 27),  # MD5
    ("B608", "app/handlers.py", 31),  # SQL built with %
    ("B501", "app/handlers.py", 35),  # verify=False
    ("B307", "app/handlers.py", 39),  # eval
    ("AWS-ACCESS-KEY", "app/settings.py", 3),
    ("E722", "app/settings.py", 10),  # bare except (ruff)
    ("CC", "app/settings.py", 14),  # route(): complexity 14, rank C (radon)
    ("go/command-injection", "svc/main.go", 13),
    ("go/weak-hash", "svc/main.go", 14),
    ("go/sql-format", "svc/main.go", 15),
    ("go/tls-insecure-skip-verify", "svc/main.go", 16),
    ("js/inner-html", "web/app.js", 5),
    ("js/child-process-exec", "web/app.js", 9),
    ("js/eval", "web/app.js", 13),
    ("js/new-function", "web/app.js", 16),
    ("js/document-write", "web/app.js", 17),
    ("js/inner-html", "web/view.ts", 3),  # outerHTML
    ("CC", "web/view.ts", 6),  # classify(): complexity 12, rank C (tree-sitter)
]
THE_EIGHT = {"B105", "B602", "B301", "B506", "B324", "B608", "B501", "B307"}


def _where(findings: list[Finding]) -> list[tuple[str, str, int]]:
    return [(f.rule_id, f.file, f.line) for f in findings]


def _analyze(root: Path, **kwargs: object) -> list[Finding]:
    return analyze(root, Limits(), lambda: None, MemoryFileCache(), **kwargs).findings  # type: ignore[arg-type]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return Path(shutil.copytree(PLANTED, tmp_path / "planted"))


def test_the_planted_project_gives_exactly_the_planted_findings() -> None:
    findings = _analyze(PLANTED)
    assert _where(findings) == EXPECTED
    assert {f.rule_id for f in findings if f.tool == "bandit"} >= THE_EIGHT
    by_rule = {f.rule_id: f for f in findings}
    shell = by_rule["B602"]
    assert (shell.tool, shell.severity, shell.confidence, shell.cwe, shell.category) == ("bandit", "high", "high", 78, "security")
    assert shell.snippet == "return subprocess.run(command, shell=True)"
    assert shell.fix_hint and len(shell.fingerprint) == 32
    assert by_rule["E722"].tool == "ruff"
    assert [f.tool for f in findings if f.rule_id == "CC"] == ["radon", "tree-sitter"]
    assert by_rule["go/command-injection"].cwe == 78 and by_rule["js/eval"].cwe == 95


def test_every_issue_bandit_reports_is_reported() -> None:
    bandit = Path(sys.executable).parent / "bandit"
    done = subprocess.run(
        [str(bandit), "-r", "-q", "-f", "json", "."], cwd=PLANTED, capture_output=True, text=True, timeout=120, check=False
    )
    issues = {(r["test_id"], r["filename"].removeprefix("./"), r["line_number"]) for r in json.loads(done.stdout)["results"]}
    assert len(issues) >= 10  # the eight planted ones and the two imports at least
    assert issues <= set(_where(_analyze(PLANTED)))


def test_secrets_never_appear_in_findings() -> None:
    text = json.dumps([f.message + f.snippet for f in _analyze(PLANTED)])
    assert "s3cr3t-Passw0rd!" not in text and "AKIAIOSFODNN7EXAMPLE" not in text


def test_suppressions_are_honoured(project: Path) -> None:
    findings = _analyze(project)
    assert not [f for f in findings if f.file == "app/quiet.py"]  # its noqa F401, nosec B307 and noqa B006
    assert ("js/eval", "web/app.js", 18) not in _where(findings)  # eslint-disable-line
    (project / "app" / "quiet.py").write_text("def cleanup(items=[]):\n    return eval(items)\n")
    assert _where([f for f in _analyze(project) if f.file == "app/quiet.py"]) == [
        ("B006", "app/quiet.py", 1),
        ("B307", "app/quiet.py", 2),
    ]


def test_fingerprints_survive_edits_above(project: Path) -> None:
    before = {f.fingerprint: f for f in _analyze(project)}
    handlers = project / "app" / "handlers.py"
    handlers.write_text('"""Moved down."""\n\nimport os\n\nprint(os.sep)\n' + handlers.read_text())
    after = {f.fingerprint: f for f in _analyze(project)}
    assert set(before) <= set(after)
    moved = [fp for fp, f in before.items() if f.file == "app/handlers.py"]
    assert moved and all(after[fp].line == before[fp].line + 5 for fp in moved)


def test_a_baseline_leaves_only_new_findings(project: Path) -> None:
    result = code_analyzer.run({"path": str(project), "formats": ["json", "sarif"]}, RunContext(roots=(project.parent,)))
    exports = {a.name: a.content for a in result.artifacts}
    # Beside the project, inside the workspace: the exports hold fingerprints that look like secrets themselves.
    (project.parent / "baseline.json").write_text(exports["findings.json"])
    (project.parent / "baseline.sarif").write_text(exports["findings.sarif"])
    assert len(baseline_fingerprints(exports["findings.sarif"])) == len(EXPECTED)
    (project / "app" / "new.py").write_text("import os\n\n\ndef go(cmd):\n    os.system(cmd)\n")
    for baseline in ("../baseline.json", str(project.parent / "baseline.sarif")):
        later = code_analyzer.run({"path": str(project), "baseline": baseline}, RunContext(roots=(project.parent,)))
        assert _where(later.findings) == [("B605", "app/new.py", 5)]
        assert later.metrics["baseline_matched"] == len(EXPECTED)


def test_sarif_export_is_valid_sarif_2_1_0() -> None:
    schema = json.loads((FIXTURES / "sarif" / "sarif-schema-2.1.0.json").read_text())
    findings = _analyze(PLANTED)
    log = to_sarif(findings, {"bandit": "1.9.4"})
    jsonschema.Draft4Validator(schema).validate(log)
    results = [r for run in log["runs"] for r in run["results"]]
    assert len(results) == len(EXPECTED)
    shell = next(r for r in results if r["ruleId"] == "B602")
    location = shell["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "app/handlers.py" and location["region"]["startLine"] == 15
    assert shell["level"] == "error"


def test_a_rerun_on_an_unchanged_tree_reads_the_cache(tmp_path: Path) -> None:
    cache = SqliteFileCache(tmp_path / "cache.db")
    first = analyze(PLANTED, Limits(), lambda: None, cache)
    again = analyze(PLANTED, Limits(), lambda: None, SqliteFileCache(tmp_path / "cache.db"))
    assert first.cache_hits == 0 and again.cache_hits == sum(again.files_by_language.values()) == 6
    assert again.findings == first.findings


def test_analysed_code_is_never_imported_or_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    project = tmp_path / "p"
    project.mkdir()
    body = f"open({str(marker)!r}, 'w').write('x')\n"
    (project / "boom.py").write_text(body)
    (project / "setup.py").write_text(body)
    (project / "conftest.py").write_text(body)
    (project / "index.js").write_text(f"require('fs').writeFileSync({json.dumps(str(marker))}, 'x');\n")
    _analyze(project)
    assert not marker.exists()


def test_many_files_go_through_the_worker_pool_and_a_cancel_stops_the_run(tmp_path: Path) -> None:
    project = tmp_path / "many"
    project.mkdir()
    for i in range(12):
        (project / f"m{i}.py").write_text(f"def f{i}(x):\n    return eval(x)\n")
    findings = _analyze(project)
    assert _where(findings) == sorted(("B307", f"m{i}.py", 2) for i in range(12))
    cancelled = threading.Event()
    cancelled.set()
    (project / "m0.py").write_text("changed = True\n")  # a cache miss either way: a fresh cache is used

    def check() -> None:
        if cancelled.is_set():
            raise RunCancelled("stop")

    with pytest.raises(RunCancelled):
        analyze(project, Limits(), check, MemoryFileCache())


def test_agent_input_is_checked_with_the_field_named(project: Path) -> None:
    context = RunContext(roots=(project.parent,))
    with pytest.raises(InvalidArgument) as bad:
        code_analyzer.run({"path": str(project), "formats": ["pdf"]}, context)
    assert bad.value.violations[0].field == "input.formats[0]"
    with pytest.raises(InvalidArgument) as bad:
        code_analyzer.run({"path": str(project), "baseline": "/etc/passwd"}, context)
    assert (bad.value.violations[0].field, bad.value.reason) == ("input.baseline", "PATH_OUTSIDE_WORKSPACE")
    (project / "junk.json").write_text("[1, 2]")
    with pytest.raises(InvalidArgument) as bad:
        code_analyzer.run({"path": str(project), "baseline": "junk.json"}, context)
    assert bad.value.violations[0].field == "input.baseline"


def test_the_result_says_the_model_step_did_not_run() -> None:
    result = code_analyzer.run({"path": str(PLANTED)}, RunContext(roots=(PLANTED.parent,)))
    assert result.llm_status == "not_configured"
    assert "Model review not run" in result.summary
    assert result.metrics["files"] == {"go": 1, "javascript": 1, "python": 3, "typescript": 1}
    report = result.artifacts[0]
    assert report.name == "report.md" and "| high | B602 | bandit | app/handlers.py:15 |" in report.content
    skipped = code_analyzer.run({"path": str(PLANTED)}, RunContext(roots=(PLANTED.parent,), model_status="skipped"))
    assert skipped.llm_status == "skipped" and "skipped at the caller's request" in skipped.summary


def test_the_secrets_scan_finds_what_detect_secrets_own_scan_finds() -> None:
    """The pre-checks that skip lines must never drop a secret: compare with detect-secrets' scan_file."""
    import detect_secrets
    from detect_secrets.core.secrets_collection import SecretsCollection
    from detect_secrets.settings import default_settings

    from services.agents.code.secrets import scan_text

    files = sorted(PLANTED.rglob("*.*")) + sorted((Path(detect_secrets.__file__).parent / "plugins").rglob("*.py"))
    ours = {(str(p), s.hashed, s.kind) for p in files for s in scan_text(str(p), p.read_text(errors="replace"))}
    theirs = set()
    with default_settings():
        for path in files:
            collection = SecretsCollection()
            collection.scan_file(str(path))
            theirs |= {(name, secret.secret_hash, secret.type) for name, secret in collection}
    assert len(theirs) >= 30 and ours == theirs


def test_secrets_skip_the_files_detect_secrets_skips_by_name(tmp_path: Path) -> None:
    """A package-lock.json is full of base64 integrity hashes; detect-secrets' own scan skips lock files by name."""
    from detect_secrets.core.secrets_collection import SecretsCollection
    from detect_secrets.settings import default_settings

    from services.agents.code.secrets import scan_text

    line = '    "integrity": "sha512-2bBtP7rv4zdJv2jCqz0mG6ZyIHpWkF3lfnRG9pAcOcA4vB8QqLxYhZ+fVtBq0qWvJpB1Gm9x7cM3y2K5o6dW1Q==",\n'
    text = "{\n" + line + "}\n"
    lock, other = tmp_path / "package-lock.json", tmp_path / "settings.json"
    for path in (lock, other):
        path.write_text(text)
    with default_settings():
        theirs = {}
        for path in (lock, other):
            collection = SecretsCollection()
            collection.scan_file(str(path))
            theirs[path.name] = len(list(collection))
    assert theirs == {"package-lock.json": 0, "settings.json": 1}
    assert {p.name: len(scan_text(str(p), text)) for p in (lock, other)} == theirs


def test_bandit_issues_on_an_installed_package_match_bandits_command_line() -> None:
    """Beyond the fixture: every issue bandit's command line reports on httpx's source, and no other."""
    import httpx

    from services.agents.code.python_file import analyze_python

    root = Path(httpx.__file__).parent.resolve()
    bandit = Path(sys.executable).parent / "bandit"
    done = subprocess.run([str(bandit), "-r", "-q", "-f", "json", str(root)], capture_output=True, text=True, timeout=300, check=False)
    theirs = {
        (r["test_id"], Path(r["filename"]).resolve().relative_to(root).as_posix(), r["line_number"])
        for r in json.loads(done.stdout)["results"]
    }
    ours = {
        (f.rule_id, f.file, f.line)
        for path in sorted(root.rglob("*.py"))
        for f in analyze_python(path.relative_to(root).as_posix(), path.read_bytes()).findings
        if f.tool == "bandit"
    }
    assert len(theirs) >= 10 and ours == theirs
