"""Every extension registered by name passes the same contract, found by walking its registry:
each probe and estimator on three tiny datasets, each estimator's score on tied features and
bad input, each shift transform on a batch, each executor on a small graph of jobs (skipped, or
in the slow tier, as its class declares); names are listed without importing the modules that
hold them; a new probe is one new module (in the package, or an installed plugin's), and a new
executor one registered class, refused when it lacks what the contract asks."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import python_in_fresh_process
from bench_core.models import build_model
from bench_core.sources import SourceModel
from benchmark.engine.executors import (EXECUTORS, ExecutorContext, Job, Needs,
                                        executor_options, make_executor)
from benchmark.transforms import TRANSFORMS, transform_derivation, transform_images
from probes.base import PROBES, ProbeContext, ProbeError
from probes.estimators.base import EstimatorProbe
from registry.errors import CardError
from registry.loaders import LOADERS
from registry.names import ContractError, LazyRegistry
from registry.paths import BenchPaths
from test_contributing import examples

def _probe_params():
    """Every registered probe; those whose cost tier is 4 (they train a network or solve
    optimal transport) run in the slow tier: the class says so, no list here."""
    return [pytest.param(n, marks=pytest.mark.slow) if PROBES.get(n).cost >= 4 else n
            for n in PROBES.names()]


@pytest.fixture(scope="module")
def source_models(tmp_path_factory, shared_three):
    """A small random network per dataset, as a suite's pretrained models look to a probe."""
    from safetensors.torch import save_file

    models, folder = {}, tmp_path_factory.mktemp("models")
    for i, rec in enumerate(shared_three[1]):
        torch.manual_seed(i)
        net = build_model("resnet10t", len(rec.classes), 0.0)
        path = folder / f"{rec.name}.safetensors"
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
        models[rec.name] = SourceModel(rec.name, "resnet10t", str(path), (32, 32))
    return models


@pytest.mark.parametrize("name", _probe_params())
def test_probe_contract(name, shared_three, source_models):
    paths, three = shared_three
    cls = PROBES.get(name)
    context = ProbeContext(paths, source_models=source_models if cls.uses_source_models else {})
    result = cls(cls.smoke_options, context).compute(three)
    d = result.distances
    assert result.method == name
    assert result.datasets == ["digits", "digits-noise", "lfw-faces"] and d.shape == (3, 3)
    assert np.allclose(np.diag(d), 0) and np.all(np.isfinite(d))
    if cls.symmetric:
        assert np.all(d[~np.eye(3, dtype=bool)] >= 0)
        assert np.allclose(d, d.T, atol=1e-9 if name != "task2vec" else 0.2)
    again = cls(cls.smoke_options, context).compute(three)
    np.testing.assert_allclose(again.distances, d)  # deterministic (and cached for task2vec)
    with pytest.raises(CardError, match=f"Options for probe '{name}' are invalid"):
        cls({**cls.smoke_options, "bogus": 1}, context)


def _tied_outputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features with many identical rows: three nearby directions, 12 copies each (B and C
    equally far from A, so a 20-NN of an A row takes 9 of their 24 tied copies), and 12 noise
    rows far from them; labels mixed within the copies, head probabilities from the features."""
    rng = np.random.default_rng(0)
    tied = np.repeat([[1.0, 0, 0, 0, 0], [1.0, 0.2, 0, 0, 0], [1.0, 0, 0.2, 0, 0]], 12, axis=0)
    noise = rng.normal(size=(12, 5)) - [3.0, 0, 0, 0, 0]
    features = np.vstack([tied, noise])
    labels = rng.permutation(np.arange(len(features)) % 3)
    logits = features @ rng.normal(size=(5, 4))
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return features, probs / probs.sum(axis=1, keepdims=True), labels


def _estimator(name, tmp_path):
    cls = PROBES.get(name)
    return cls(cls.smoke_options, ProbeContext(BenchPaths(tmp_path)))


ESTIMATORS = [n for n in PROBES.names() if issubclass(PROBES.get(n), EstimatorProbe)]


@pytest.mark.parametrize("name", ESTIMATORS)
def test_estimator_score_is_invariant_to_sample_order_on_tied_features(name, tmp_path):
    probe, (f, p, y) = _estimator(name, tmp_path), _tied_outputs()
    rng = np.random.default_rng(1)
    one, two = rng.permutation(len(y)), rng.permutation(len(y))
    first = probe.score(f[one], p[one], y[one])
    np.testing.assert_allclose(probe.score(f[two], p[two], y[two]), first, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("case", ["nan", "one_class", "lengths"])
@pytest.mark.parametrize("name", ESTIMATORS)
def test_estimator_refuses_bad_input_naming_itself(name, case, tmp_path):
    f, p, y = _tied_outputs()
    f, y = {"nan": (np.where(np.eye(*f.shape) > 0, np.nan, f), y),
            "one_class": (f, np.zeros_like(y)), "lengths": (f, y[:-1])}[case]
    with pytest.raises(ProbeError) as err:
        _estimator(name, tmp_path).checked_score(f, p, y)
    assert f"'{name}'" in err.value.what and err.value.hint


@pytest.mark.parametrize("name", TRANSFORMS.names())
def test_transform_contract(name):
    cls = TRANSFORMS.get(name)
    images = torch.randint(0, 256, (4, 3, 16, 16), generator=torch.Generator().manual_seed(0),
                           dtype=torch.uint8)
    low, high = cls.level_range
    level = (low + high) / 2 if high is not None else low + 0.5

    class Spec:
        transform, seed = name, 3

    Spec.level = level
    out = transform_images(images, Spec)
    assert out.dtype == torch.uint8 and out.shape == images.shape
    assert torch.equal(out, transform_images(images, Spec))  # deterministic
    assert not torch.equal(out, images)  # it does change the images
    derivation = transform_derivation(Spec, "target")
    assert derivation.parent == "target" and derivation.method == f"shift-{name}"
    assert cls.describe(level, 3) in derivation.description
    with pytest.raises(ValueError, match=f"a {name} shift needs"):
        cls.check_level(low)


# Executors ------------------------------------------------------------------------------------

JOB_BODIES = '''
    """Job bodies of the executor contract test: a module workers import (PYTHONPATH)."""
    from registry.errors import BenchError


    def add(deps):
        return sum(deps.values()) + 1


    def boom(deps):
        raise BenchError("boom")
    '''


@pytest.fixture(scope="module")
def job_bodies(tmp_path_factory) -> Path:
    """A folder holding the importable ``contract_jobs`` module (workers cannot import tests)."""
    folder = tmp_path_factory.mktemp("jobs")
    (folder / "contract_jobs.py").write_text(textwrap.dedent(JOB_BODIES))
    return folder


def _executor_param(name: str):
    """One registered executor as a test case, marked from what its class declares: skipped,
    with the reason, where this machine lacks what it ``needs`` (an extra, a cluster's
    tools); slow when its jobs run outside this process (it starts workers)."""
    cls = EXECUTORS.get(name)
    marks = [] if cls.placement == "process" else [pytest.mark.slow]
    lacking = cls.needs.missing()
    if lacking:
        marks.append(pytest.mark.skip(reason=f"--executor {name} {lacking}"))
    return pytest.param(name, marks=marks)


def check_executor_contract(name: str, folder: Path, job_bodies: Path, monkeypatch) -> None:
    """Dependencies first, results passed on, a failure fails its dependents only, inline
    jobs run by the driver: the same outcomes on every engine (built with its
    ``smoke_options``)."""
    path = os.pathsep.join(p for p in (str(job_bodies), os.environ.get("PYTHONPATH")) if p)
    monkeypatch.setenv("PYTHONPATH", path)  # workers started from here import the bodies
    monkeypatch.syspath_prepend(str(job_bodies))
    import contract_jobs as b

    jobs = [Job("a", "a", "fold", b.add), Job("b", "b", "fold", b.add, deps=("a",)),
            Job("c", "c", "pair", b.add, deps=("a", "b"), inline=True),
            Job("x", "x", "fold", b.boom), Job("y", "y", "pair", b.add, deps=("x",), inline=True),
            Job("z", "z", "fold", b.add, deps=("done-earlier",))]
    seen = []
    ex = make_executor(name, ExecutorContext(folder=folder), **EXECUTORS.get(name).smoke_options)
    threads = ex.threads_per_job
    assert threads is None or (isinstance(threads, int) and threads >= 1), threads
    outcomes = ex.run(jobs, {"done-earlier": 41}, seen.append)
    assert {k: o.value for k, o in outcomes.items() if o.ok} == {"a": 1, "b": 2, "c": 4, "z": 42}
    assert not outcomes["x"].ok and outcomes["x"].error == "boom"
    assert not outcomes["y"].ok and "a job it depends on failed (x)" in outcomes["y"].error
    assert sorted(o.key for o in seen) == sorted(outcomes)


@pytest.mark.parametrize("name", [_executor_param(n) for n in EXECUTORS.names()])
def test_executor_contract(name, tmp_path, job_bodies, monkeypatch):
    check_executor_contract(name, tmp_path / "engine", job_bodies, monkeypatch)


# docs/contributing.md's example of a new executor, as the page has it (indented as a class
# body in a function would be: the helpers below strip and edit it)
NEW_EXECUTOR = textwrap.indent(examples()["executor"], "    ")


def _load_module(text: str, tmp_path: Path, monkeypatch) -> None:
    """Import ``text`` as a throwaway module; what it registers is forgotten after the test."""
    monkeypatch.setattr(EXECUTORS, "_items", dict(EXECUTORS._items))
    path = tmp_path / "my_executor.py"
    path.write_text(textwrap.dedent(text))
    spec = importlib.util.spec_from_file_location("my_executor", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "my_executor", module)
    spec.loader.exec_module(module)


def test_a_new_executor_is_one_registered_class_that_passes_the_contract(tmp_path, job_bodies,
                                                                         monkeypatch):
    _load_module(NEW_EXECUTOR, tmp_path, monkeypatch)
    assert "inline-example" in EXECUTORS.names()
    assert executor_options("inline-example") == ["cpus_per_job"]  # its CLI options
    check_executor_contract("inline-example", tmp_path / "engine", job_bodies, monkeypatch)
    assert make_executor("inline-example", ExecutorContext(), cpus_per_job=2).threads_per_job == 2


def _without(text: str, attr: str) -> str:
    """``text`` without the class-body line or method (a property too) that defines ``attr``."""
    pattern = rf"^        (?:{attr} = [^\n]*\n|(?:@property\n        )?def {attr}\(.*?\n\n)"
    out, n = re.subn(pattern, "", text, count=1, flags=re.M | re.S)
    assert n == 1, attr
    return out


@pytest.mark.parametrize("attr", ["name", "placement", "threads_per_job", "run"])
def test_an_executor_without_a_required_attribute_is_refused_naming_it(attr, tmp_path,
                                                                       monkeypatch):
    named = rf"InlineExecutor cannot be registered: .*(`{attr}` is missing|{attr}\(\) is not)"
    with pytest.raises(ContractError, match=named) as err:
        _load_module(_without(NEW_EXECUTOR, attr), tmp_path, monkeypatch)
    assert err.value.hint.startswith("Fix: ") and "Executor contract" in err.value.hint
    assert "inline-example" not in EXECUTORS.names()


@pytest.mark.parametrize("init,message", [
    ("def __init__(self, context, *, cpus_per_job): ...", "option 'cpus_per_job' has no default"),
    ("def __init__(self, context, **options): ...", "the CLI lists options by name"),
    ("def __init__(self, *, cpus_per_job=None): ...", "does not take 'context' first"),
])
def test_an_executor_whose_options_the_cli_cannot_list_is_refused(init, message, tmp_path,
                                                                 monkeypatch):
    text = re.sub(r"def __init__\(self, context, .*?\n\n", init + "\n\n", NEW_EXECUTOR,
                  flags=re.S)
    with pytest.raises(ContractError, match=re.escape(message)):
        _load_module(text, tmp_path, monkeypatch)


def test_an_engine_without_slots_is_refused_when_defined():
    from benchmark.engine.executors import Engine

    with pytest.raises(ContractError, match=r"NoSlots does not define 'slots'\."):
        class NoSlots(Engine):
            def submit(self, batch):
                return []

            def wait(self, handles):
                return []


def test_what_an_executor_needs_decides_its_test_marks(tmp_path, monkeypatch):
    """A class declaring an extra that is not installed is skipped with that reason (and,
    running its jobs elsewhere, in the slow tier): no hand-written list decides."""
    text = NEW_EXECUTOR.replace('placement = "process"', 'placement = "cluster"\n        '
                                'needs = Needs(module="no_such_engine", extra="nope")')
    text = text.replace("import Engine, Executor,", "import Engine, Executor, Needs,")
    _load_module(text, tmp_path, monkeypatch)
    marks = {m.name: m for m in _executor_param("inline-example").marks}
    assert set(marks) == {"slow", "skip"}
    assert marks["skip"].kwargs["reason"] == ("--executor inline-example needs no_such_engine, "
                                              'which is not installed (pip install -e ".[nope]")')
    assert "sbatch-not-here" in Needs(commands=("sbatch-not-here",)).missing()
    assert Needs().missing() is None


@pytest.mark.parametrize("registry", [PROBES, LOADERS, EXECUTORS, TRANSFORMS],
                         ids=lambda r: r.kind)
def test_every_name_found_in_the_source_is_what_its_module_registers(registry):
    for name, ext in registry.extensions().items():
        obj = registry.get(name)
        assert f"{obj.__module__}:{obj.__qualname__}" == ext.target
        assert getattr(obj, "name", name) == name


def test_names_are_listed_without_importing_torch_or_the_extensions():
    code = ("import sys\n"
            "from probes.base import PROBES\n"
            "from registry.loaders import LOADERS\n"
            "from benchmark.engine.executors import EXECUTORS\n"
            "from benchmark.transforms import TRANSFORMS\n"
            "names = [r.names() for r in (PROBES, LOADERS, EXECUTORS, TRANSFORMS)]\n"
            "assert all(names), names\n"
            "assert 'torch' not in sys.modules\n"
            "assert 'probes.task2vec' not in sys.modules\n"
            "print(names)")
    out = python_in_fresh_process(code)
    assert "logme" in out and "chest-xray" in out and "blur" in out


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    pkg = tmp_path / "myprobes"
    pkg.mkdir()
    (pkg / "__init__.py").write_text('"""A package of probes."""\n')
    for name, text in files.items():
        (pkg / name).write_text(textwrap.dedent(text))
    return pkg


ONE_PROBE = '''
    """A probe in one file."""
    import numpy as np

    from probes.base import Probe, ProbeResult, register_probe


    @register_probe
    class Same(Probe):
        """Every dataset equally far (a placeholder only tests use)."""

        name = "same-distance"
        needs_data = False

        def compute(self, records):
            n = len(records)
            return ProbeResult(self.name, [r.name for r in records], 1.0 - np.eye(n))
    '''


def test_a_new_module_in_the_folder_is_one_new_extension(tmp_path, monkeypatch):
    _package(tmp_path, {"same.py": ONE_PROBE, "helpers.py": "X = 1\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = LazyRegistry("probe", "myprobes", "register_probe")
    assert reg.names() == ["same-distance"]
    assert reg.extensions()["same-distance"].summary.startswith("Every dataset equally far")
    assert "myprobes.same" not in sys.modules  # listed from the source alone
    with pytest.raises(Exception, match="Unknown probe 'same-distanc'. Did you mean"):
        reg.get("same-distanc")


def test_two_modules_claiming_one_name_are_refused(tmp_path, monkeypatch):
    from registry.errors import DuplicateNameError

    _package(tmp_path, {"a.py": ONE_PROBE, "b.py": ONE_PROBE})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(DuplicateNameError, match="Two probes are named 'same-distance'"):
        LazyRegistry("probe", "myprobes", "register_probe").names()


@pytest.mark.slow  # two fresh `bench` processes
def test_a_probe_plugin_is_listed_and_runs_from_the_cli(tmp_path):
    """A probe outside the project: its module and an entry point in the standard
    ``transfer_bench.probes`` group (how an installed package declares it)."""
    (tmp_path / "same_plugin.py").write_text(textwrap.dedent(ONE_PROBE))
    info = tmp_path / "same_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: same-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[transfer_bench.probes]\nsame-distance = same_plugin:Same\n")
    env = {"PYTHONPATH": str(tmp_path), "BENCH_HOME": str(tmp_path / "home"),
           "PATH": "/usr/bin:/bin"}
    bench = [sys.executable, "-m", "benchmark.cli.app"]
    help_ = subprocess.run([*bench, "probe", "--help"], capture_output=True, text=True, env=env)
    assert "same-distance" in " ".join(help_.stdout.split()), help_.stderr[-2000:]
    run = subprocess.run([*bench, "probe", "same-distance", "--datasets", "imagenet,isic",
                          "--json"], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert '"distances": [\n    [\n      0.0,\n      1.0' in run.stdout


def test_a_probe_or_transform_missing_what_the_engine_reads_is_refused_by_name():
    from benchmark.transforms.base import ShiftTransform, register_transform
    from probes.base import Probe, register_probe

    class NoCompute(Probe):
        name = "no-compute"
        cost = 7

    with pytest.raises(ContractError, match=r"compute\(\) is not implemented.*`cost` = 7"):
        register_probe(NoCompute)

    class Unnamed(EstimatorProbe):
        def score(self, features, probs, labels):
            return 0.0

    with pytest.raises(ContractError, match="`name` is missing from the class body"):
        register_probe(Unnamed)

    class NoScore(EstimatorProbe):
        name = "no-score"

    with pytest.raises(ContractError, match=r"score\(\) is not implemented"):
        register_probe(NoScore)

    class NoDescribe(ShiftTransform):
        name = "no-describe"

        @staticmethod
        def apply(images, level, seed):
            return images

    with pytest.raises(ContractError, match=r"describe\(\) is not implemented"):
        register_transform(NoDescribe)
    assert "no-compute" not in PROBES.names() and "no-score" not in PROBES.names()


@pytest.mark.parametrize("registry, name", [(PROBES, "expert"), (LOADERS, "idx"),
                                            (TRANSFORMS, "blur"), (EXECUTORS, "local")])
def test_a_class_offered_under_another_name_is_refused(registry, name):
    """An entry point naming a class by a name it does not carry registers nothing."""
    cls = registry.get(name)
    with pytest.raises(ContractError, match=f"is named '{name}' but offered as 'other-name'"):
        registry.add("other-name", cls)
    assert "other-name" not in registry
