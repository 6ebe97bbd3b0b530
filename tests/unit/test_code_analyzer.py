"""Tests for the ast-based Python code analyzer."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from services.agents.code_analyzer import Finding, analyze_path, analyze_source


def _write(root: Path, relative: str, source: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def _rules(findings: list[Finding] | tuple[Finding, ...]) -> list[tuple[str, str, int]]:
    return [(f.rule_id, f.file, f.line) for f in findings]


def _source_findings(source: str) -> list[Finding]:
    findings, _, _ = analyze_source(textwrap.dedent(source), "mod.py")
    return findings


def test_py001_bare_except(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "pkg/a.py",
        """\
        try:
            pass
        except:
            pass
        try:
            pass
        except Exception:
            pass
        """,
    )
    analysis = analyze_path(tmp_path)
    assert _rules(analysis.findings) == [("PY001", "pkg/a.py", 3)]
    finding = analysis.findings[0]
    assert (finding.severity, finding.category, finding.column) == ("medium", "quality", 0)


def test_py002_eval_and_exec_but_not_methods() -> None:
    findings = _source_findings(
        """\
        x = eval("1 + 1")
        exec("y = 2")
        model.eval()
        import builtins
        builtins.exec("z = 3")
        """
    )
    assert _rules(findings) == [("PY002", "mod.py", 1), ("PY002", "mod.py", 2), ("PY002", "mod.py", 5)]
    assert all(f.severity == "high" and f.category == "security" for f in findings)


def test_py003_one_finding_per_mutable_default() -> None:
    findings = _source_findings(
        """\
        def f(a, b=[], *, c={}, d=None, e=set(), g=(1, 2)):
            return a
        """
    )
    assert _rules(findings) == [("PY003", "mod.py", 1)] * 3
    messages = [f.message for f in findings]
    assert any("'f'" in m and "'b'" in m for m in messages)
    assert any("'c'" in m for m in messages)
    assert any("'e'" in m for m in messages)
    assert not any("'d'" in m or "'g'" in m for m in messages)


def test_py003_positional_only_and_async() -> None:
    findings = _source_findings(
        """\
        async def h(x, y=dict(), /, z=list()):
            return x
        """
    )
    assert sorted(f.message.split("'")[3] for f in findings) == ["y", "z"]
    assert {f.rule_id for f in findings} == {"PY003"}


def _branchy_function(name: str, branches: int, indent: str = "") -> str:
    body = "".join(f"{indent}    if x == {i}:\n{indent}        return {i}\n" for i in range(branches))
    return f"{indent}def {name}(x):\n{body}{indent}    return -1\n"


def test_py004_complexity_threshold() -> None:
    source = _branchy_function("ok", 9) + _branchy_function("too_complex", 10)
    findings, functions, _ = analyze_source(source, "mod.py")
    assert functions == 2
    complex_line = 1 + 9 * 2 + 2
    assert _rules(findings) == [("PY004", "mod.py", complex_line)]
    assert "11" in findings[0].message
    assert "too_complex" in findings[0].message


def test_py004_counts_bool_ops_comprehensions_and_match() -> None:
    findings = _source_findings(
        """\
        def f(x, items):
            a = x and x and x and x          # +3
            b = [i for i in items if i if i]  # +2
            c = 1 if x else 2                 # +1
            while x:                          # +1
                break
            match x:
                case 1:                       # +1
                    pass
                case 2:                       # +1
                    pass
            try:
                pass
            except ValueError:                # +1
                pass
            return a, b, c
        """
    )
    # 1 + 3 + 2 + 1 + 1 + 2 + 1 = 11
    assert _rules(findings) == [("PY004", "mod.py", 1)]
    assert "11" in findings[0].message


def test_py004_nested_functions_are_not_added_to_parent() -> None:
    outer = "def outer(x):\n" + _branchy_function("inner", 10, indent="    ") + "    return inner(x)\n"
    findings, functions, _ = analyze_source(outer, "mod.py")
    assert functions == 2
    assert _rules(findings) == [("PY004", "mod.py", 2)]
    assert "inner" in findings[0].message


def test_py005_shell_execution() -> None:
    findings = _source_findings(
        """\
        import os
        import subprocess
        import subprocess as sp
        from subprocess import run
        subprocess.run("ls", shell=True)
        subprocess.run(["ls"], shell=False)
        subprocess.run(["ls"])
        os.system("ls")
        sp.Popen("ls", shell=True)
        run("ls", shell=True)
        """
    )
    assert _rules(findings) == [("PY005", "mod.py", line) for line in (5, 8, 9, 10)]
    assert all(f.severity == "high" and f.category == "security" for f in findings)


def test_py006_syntax_error(tmp_path: Path) -> None:
    _write(tmp_path, "broken.py", "x = 1\ny = 2\ndef f(:\n    pass\n")
    analysis = analyze_path(tmp_path)
    assert _rules(analysis.findings) == [("PY006", "broken.py", 3)]
    assert analysis.findings[0].category == "syntax"
    assert analysis.stats.files_analyzed == 1
    assert analysis.stats.lines == 4


def test_py006_null_bytes_do_not_crash() -> None:
    findings, _, _ = analyze_source("x = 1\0\n", "nul.py")
    assert [f.rule_id for f in findings] == ["PY006"]


def test_py007_hard_coded_credentials() -> None:
    findings = _source_findings(
        """\
        DB_PASSWORD = "hunter2"
        api_key: str = "abc123"
        empty_secret = ""
        token_count = 3
        username = "bob"
        class C:
            def __init__(self):
                self.Secret = "s3cr3t"
        """
    )
    assert _rules(findings) == [("PY007", "mod.py", line) for line in (1, 2, 8)]
    assert "DB_PASSWORD" in findings[0].message
    assert findings[0].severity == "medium"


def test_py008_long_function() -> None:
    short = "def short():\n" + "    x = 1\n" * 79
    long = "def long():\n" + "    x = 1\n" * 80
    findings, functions, _ = analyze_source(short + long, "mod.py")
    assert functions == 2
    assert _rules(findings) == [("PY008", "mod.py", 81)]
    assert "81" in findings[0].message and "long" in findings[0].message


def test_stats_and_sorting(tmp_path: Path) -> None:
    _write(tmp_path, "b.py", "class A:\n    def m(self):\n        eval('1')\n")
    _write(tmp_path, "a.py", "def f(x=[]):\n    try:\n        pass\n    except:\n        pass\n")
    _write(tmp_path, "notes.txt", "eval('ignored')\n")
    analysis = analyze_path(tmp_path)
    assert _rules(analysis.findings) == [("PY003", "a.py", 1), ("PY001", "a.py", 4), ("PY002", "b.py", 3)]
    stats = analysis.stats
    assert (stats.files_analyzed, stats.files_skipped, stats.lines, stats.functions, stats.classes) == (2, 0, 8, 2, 1)
    assert analysis.truncated is False


def test_oversized_and_undecodable_files_are_skipped(tmp_path: Path) -> None:
    _write(tmp_path, "big.py", "eval('x')\n" * 100)
    (tmp_path / "latin1.py").write_bytes(b"name = '\xe9'\n")
    _write(tmp_path, "ok.py", "x = 1\n")
    analysis = analyze_path(tmp_path, max_file_bytes=100)
    assert analysis.findings == ()
    assert analysis.stats.files_analyzed == 1
    assert analysis.stats.files_skipped == 2
    assert analysis.stats.lines == 1


def test_skipped_directories_are_not_analyzed(tmp_path: Path) -> None:
    _write(tmp_path, ".venv/lib/x.py", "eval('x')\n")
    _write(tmp_path, "node_modules/y.py", "eval('x')\n")
    _write(tmp_path, "generated/z.py", "eval('x')\n")
    analysis = analyze_path(tmp_path)
    assert _rules(analysis.findings) == [("PY002", "generated/z.py", 1)]


def test_symlink_outside_root_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    root = tmp_path / "root"
    _write(outside, "evil.py", "eval('x')\n")
    _write(root, "good.py", "x = 1\n")
    (root / "link.py").symlink_to(outside / "evil.py")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    analysis = analyze_path(root)
    assert analysis.findings == ()
    assert analysis.stats.files_analyzed == 1


def test_truncation(tmp_path: Path) -> None:
    for name in ("a.py", "b.py", "c.py"):
        _write(tmp_path, name, "eval('x')\n")
    analysis = analyze_path(tmp_path, max_files=2)
    assert analysis.truncated is True
    assert _rules(analysis.findings) == [("PY002", "a.py", 1), ("PY002", "b.py", 1)]


def test_missing_root_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        analyze_path(tmp_path / "missing")
