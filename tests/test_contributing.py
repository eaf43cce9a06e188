"""docs/contributing.md's examples are extensions that work: each one (an estimator, a loader,
an executor) is copied from the page's text alone into a throwaway installed package, found by
its registry through the package's entry points, and run through its contract; with a
required attribute removed, registering it fails with a message naming the attribute."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "contributing.md"
GROUPS = {"estimator": ("transfer_bench.probes", "ncm-accuracy", "NCMAccuracyProbe"),
          "loader": ("transfer_bench.loaders", "csv-labels", "CsvLabelsLoader"),
          "executor": ("transfer_bench.executors", "inline-example", "InlineExecutor")}

RUN = '''
import sys, numpy as np
from pathlib import Path
kind, folder = sys.argv[1], Path(sys.argv[2])
if kind == "estimator":
    from probes.base import PROBES, ProbeContext
    from registry.paths import BenchPaths
    assert "ncm-accuracy" in PROBES.names(), PROBES.names()
    cls = PROBES.get("ncm-accuracy")
    probe = cls(cls.smoke_options, ProbeContext(BenchPaths(folder)))
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 20)
    good = rng.normal(0, 0.1, (60, 8)) + labels[:, None]
    noise = rng.normal(0, 1, (60, 8))
    probs = np.full((60, 3), 1 / 3)
    a, b = probe.checked_score(good, probs, labels), probe.checked_score(noise, probs, labels)
    assert a == 1.0 and b < 0.7, (a, b)
    order = rng.permutation(60)
    assert probe.checked_score(good[order], probs[order], labels[order]) == a
    for bad in (np.full((60, 8), np.nan), good[:10]):
        try:
            probe.checked_score(bad, probs, labels)
        except Exception as err:
            assert "ncm-accuracy" in str(err), err
        else:
            raise AssertionError("bad input accepted")
elif kind == "loader":
    from PIL import Image
    from registry.loaders import LOADERS
    from registry.loaders.base import LoaderContext
    from registry.paths import BenchPaths
    data = folder / "data"
    data.mkdir()
    rows = ["file,label"]
    for i in range(6):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(data / f"{i}.png")
        rows.append(f"{i}.png,{'cat' if i % 2 else 'dog'}")
    (data / "labels.csv").write_text("\\n".join(rows) + "\\n")
    cls = LOADERS.get("csv-labels")
    loader = cls({}, LoaderContext(paths=BenchPaths(folder), dataset="mine", classes=None))
    table = loader.scan(data)
    assert table.class_names == ("cat", "dog") and len(table) == 6, table
    assert table.labels.tolist() == [1, 0, 1, 0, 1, 0]
    image = loader.read(table, 2)
    assert image.dtype == np.uint8 and image.shape == (8, 8) and image[0, 0] == 80
else:
    from benchmark.engine.executors import EXECUTORS, ExecutorContext, Job
    from benchmark.engine.executors.base import check_executor
    cls = EXECUTORS.get("inline-example")
    executor = cls(ExecutorContext(), cpus_per_job=1)
    jobs = [Job("a", "a", "fold", lambda deps: 2), Job("b", "b", "fold",
            lambda deps: deps["a"] * 10, deps=("a",))]
    out = executor.run(jobs, {}, lambda outcome: None)
    assert out["b"].ok and out["b"].value == 20 and executor.threads_per_job == 1, out
print("ok")
'''


def examples() -> dict[str, str]:
    """The page's code blocks marked ``<!-- example: KIND -->``."""
    text = GUIDE.read_text()
    found = dict(re.findall(r"<!-- example: (\w+) -->\s*```python\n(.*?)```", text, re.S))
    assert set(found) == set(GROUPS), f"docs/contributing.md examples: {sorted(found)}"
    return found


def install(tmp: Path, kind: str, code: str) -> Path:
    """``code`` as module ``contrib_KIND`` of a package installed in ``tmp`` (on PYTHONPATH),
    its class declared under the registry's entry-point group."""
    group, name, cls = GROUPS[kind]
    (tmp / f"contrib_{kind}.py").write_text(code)
    info = tmp / f"contrib_{kind}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: contrib-{kind}\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{name} = contrib_{kind}:{cls}\n")
    return tmp


def run(tmp: Path, kind: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(tmp), "PATH": "/usr/bin:/bin", "HOME": str(tmp)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(RUN), kind, str(tmp)],
                          capture_output=True, text=True, env=env, cwd=tmp, timeout=300)


@pytest.mark.parametrize("kind", sorted(GROUPS))
def test_each_example_from_the_page_passes_its_contract(kind, tmp_path):
    res = run(install(tmp_path, kind, examples()[kind]), kind)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-3000:]


REMOVE = {"estimator": ('    name = "ncm-accuracy"\n', "`name` is missing"),
          "loader": ('    name = "csv-labels"\n', "`name` is missing"),
          "executor": ('    placement = "process"\n', "`placement`")}


@pytest.mark.parametrize("kind", sorted(GROUPS))
def test_a_required_attribute_removed_is_refused_by_name(kind, tmp_path):
    line, message = REMOVE[kind]
    code = examples()[kind]
    assert line in code
    res = run(install(tmp_path, kind, code.replace(line, "")), kind)
    assert res.returncode != 0
    assert "ContractError" in res.stderr and message in res.stderr, res.stderr[-3000:]
