"""Dependencies point one way: registry <- bench_core <- probes <- the benchmark engine <- CLI.
The engine sits above the probes (benchmark imports probes to run and report them; probes never
import benchmark), so the two never import each other. Read from the source (every import
statement, top level or inside functions) and checked by importing in a clean interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package -> packages of ours it must never import
FORBIDDEN = {"registry": {"bench_core", "probes", "benchmark"},
             "bench_core": {"probes", "benchmark"},
             "probes": {"benchmark"}}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_points_the_wrong_way(package):
    offenders = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imported_packages(path) & FORBIDDEN[package]
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offenders, f"{package} imports what depends on it: {offenders}"


def test_the_scan_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from benchmark.cli import app\n    import probes.registry\n")
    assert imported_packages(module) == {"benchmark", "probes"}


def test_probes_import_without_the_benchmark_engine_or_the_cli():
    code = ("import sys, probes.registry, probes.transfer_estimators, probes.logging\n"
            "bad = sorted(m for m in sys.modules if m == 'benchmark' or m.startswith('benchmark.'))\n"
            "assert not bad, bad\n"
            "print(sorted(probes.registry.PROBES.names()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "task2vec" in out.stdout and "logme" in out.stdout


def test_the_library_entry_point_does_not_import_the_cli(tmp_path):
    code = ("import sys, benchmark.api\n"
            "from registry.paths import BenchPaths\n"
            "import pathlib; benchmark.api.open_tracker(BenchPaths(pathlib.Path(sys.argv[1])), 'x')\n"
            "assert 'benchmark.cli' not in sys.modules and 'typer' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
