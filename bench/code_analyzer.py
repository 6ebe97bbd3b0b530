"""The Code Analyzer against the bandit command line on one tree of at least 50,000 lines of installed Python.

Measured in one run, interleaved round by round so the ratios hold on a noisy host:
  bandit        `bandit -r -q -f json` on the tree (one process, bandit alone)
  cold          the whole Code Analyzer agent (bandit, ruff, radon, detect-secrets, tree-sitter, SARIF and JSON
                exports) with an empty file cache, in a running service: its worker processes are up
  first         the same, in a fresh process: starting the worker processes (spawn, imports) is included
  warm          a re-run on the unchanged tree: every file's result comes from the content-hash cache
Targets: cold <= 1.0x bandit, warm <= 0.1x bandit. The analysed code is never imported.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from services.agents import code_analyzer
from services.agents.base import Limits, RunContext
from services.agents.code import analyzer
from services.runtime.file_walk import count_lines

DEFAULT_PACKAGE = "langchain_core"


def package_folder(name: str) -> Path:
    """Where an installed package lives, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def python_lines(tree: Path) -> tuple[int, int]:
    files = [p for p in tree.rglob("*.py") if p.is_file()]
    return len(files), sum(count_lines(p.read_bytes()) for p in files)


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended: a figure the host's load does not change."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_bandit(tree: Path) -> tuple[float, float]:
    bandit = Path(sys.executable).parent / "bandit"
    started, cpu = time.perf_counter(), cpu_seconds()
    # Exit code 1 means "issues found"; the JSON goes nowhere: only bandit's own work is timed.
    subprocess.run([str(bandit), "-r", "-q", "-f", "json", "-o", "/dev/null", str(tree)], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    return time.perf_counter() - started, cpu_seconds() - cpu


def time_agent(tree: Path, data_dir: Path) -> tuple[float, int]:
    context = RunContext(roots=(tree,), limits=Limits(max_files=100_000), data_dir=data_dir)
    started = time.perf_counter()
    result = code_analyzer.run({"path": str(tree), "formats": ["sarif", "json"]}, context)
    return time.perf_counter() - started, len(result.findings)


def fresh_pool() -> None:
    """Shut the worker pool down so the next cold run pays for starting it, as a fresh service would."""
    if analyzer._pool is not None:
        analyzer._pool.shutdown(wait=True)
        analyzer._pool = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", default=DEFAULT_PACKAGE, help="installed package whose folder is analysed")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tree = package_folder(args.package)
    files, lines = python_lines(tree)
    if lines < 50_000:
        raise SystemExit(f"{tree} has {lines} lines of Python; the benchmark wants at least 50,000")
    print(f"tree: {tree} ({files} Python files, {lines} lines)")
    bandit_times: list[float] = []
    bandit_cpu: list[float] = []
    first_cpu: list[float] = []
    cold_times: list[float] = []
    first_times: list[float] = []
    warm_times: list[float] = []
    findings = 0
    for round_number in range(1, args.rounds + 1):
        wall, cpu = time_bandit(tree)
        bandit_times.append(wall)
        bandit_cpu.append(cpu)
        with tempfile.TemporaryDirectory(prefix="mcpmesh-bench-") as data_dir:
            fresh_pool()
            cpu = cpu_seconds()
            first, findings = time_agent(tree, Path(data_dir))
            fresh_pool()  # the workers end, so their CPU time is counted
            first_cpu.append(cpu_seconds() - cpu)
        with tempfile.TemporaryDirectory(prefix="mcpmesh-bench-") as data_dir:
            analyzer.warm_up()
            cold, _ = time_agent(tree, Path(data_dir))
            warm, _ = time_agent(tree, Path(data_dir))
        first_times.append(first)
        cold_times.append(cold)
        warm_times.append(warm)
        print(f"round {round_number}: bandit {bandit_times[-1]:.2f} s, cold {cold:.2f} s, first {first:.2f} s, warm {warm:.2f} s")
    bandit, cold, first, warm = (statistics.median(t) for t in (bandit_times, cold_times, first_times, warm_times))
    print(f"median over {args.rounds} rounds; {findings} findings from the Code Analyzer; load average {os.getloadavg()[0]:.1f}")
    print(f"  bandit CLI alone           {bandit:7.2f} s")
    print(f"  Code Analyzer, cold        {cold:7.2f} s   {cold / bandit:5.2f}x bandit (target <= 1.0x)")
    print(f"  ... in a fresh process     {first:7.2f} s   {first / bandit:5.2f}x bandit (worker start-up included)")
    print(f"  Code Analyzer, re-run      {warm:7.2f} s   {warm / bandit:5.2f}x bandit (target <= 0.1x)")
    cpu_bandit, cpu_first = statistics.median(bandit_cpu), statistics.median(first_cpu)
    print(f"  CPU time: bandit {cpu_bandit:.2f} s, Code Analyzer in a fresh process {cpu_first:.2f} s "
          f"({cpu_first / cpu_bandit:.2f}x; on {os.cpu_count()} cores its workers run side by side)")
    fresh_pool()


if __name__ == "__main__":
    main()
