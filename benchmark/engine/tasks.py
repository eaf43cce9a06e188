"""The jobs of a suite as plain picklable values that run in any process of any machine: the
environment every job shares (:class:`JobEnv`), one task type per kind of job, and what a job
hands to the jobs that depend on it (:class:`FoldOutcome`, :class:`PairOutcome`).

- :class:`PretrainTask` trains a source once (:mod:`.pretrain`); result: its weights path.
- :class:`FoldTask` fine-tunes (or trains from scratch) on one fold (:mod:`.fold`).
- :class:`PairTask` (cheap, run by the driver) closes a pair once its folds and its baseline's
  folds are done (:mod:`.pair`).
- :class:`ProbeTask` computes one probe of the suite and logs it (:mod:`.probe_job`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench_core.data import DeviceDataCache
from bench_core.sources import SourceModel
from bench_core.tracking import ResumePolicy, TrackingTarget, flatten
from benchmark.suite.plan import PairJob, PretrainJob
from benchmark.suite.settings import Architecture, Folds
from benchmark.suite.spec import ProbeSpec
from probes.base import OutputsCache
from registry.paths import BenchPaths
from registry.store import DatasetRecord

REPEAT_SEED_STRIDE = 1000  # repeat r of fold i trains with seed + i + 1000 r


@dataclass(frozen=True, kw_only=True)
class JobEnv:
    """What every task needs besides its own spec, as plain values."""

    paths: BenchPaths
    tracking: TrackingTarget
    session: str
    device: str
    suite: str
    suite_yaml: str
    seed: int
    arch: Architecture
    folds: Folds
    baseline: str
    policy: ResumePolicy = ResumePolicy()
    system_metrics: bool = True
    threads: int | None = None  # torch threads per job (None: torch's default)
    data: DeviceDataCache = field(default_factory=DeviceDataCache, compare=False, repr=False)
    outputs: OutputsCache = field(default_factory=OutputsCache, compare=False, repr=False)

    def tags(self, **extra: str) -> dict[str, str]:
        return {"suite": self.suite, **extra}


@dataclass(frozen=True, kw_only=True)
class FoldOutcome:
    fold: int
    auc: float
    accuracy: float
    run_id: str = ""
    transferability: float | None = None
    generality: float | None = None
    repeat: int = 0
    shift: dict[str, float] = field(default_factory=dict, compare=False)  # shift_<label>_<m>


@dataclass(frozen=True, kw_only=True)
class PairOutcome:
    job: PairJob
    folds: tuple[FoldOutcome, ...]
    run_id: str
    reused: bool = False
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PretrainTask:
    job: PretrainJob
    record: DatasetRecord


@dataclass(frozen=True, kw_only=True)
class FoldTask:
    pair: PairJob
    fold: int  # the slot: fold + repeat * n_folds (PairJob.slot)
    record: DatasetRecord
    parent_run_id: str
    source_weights: str | None = None  # the key of the PretrainTask it needs, when any
    shift_records: dict[str, DatasetRecord] = field(default_factory=dict)  # shifted datasets

    @property
    def config_hash(self) -> str:
        return self.pair.fold_hashes[self.fold]


@dataclass(frozen=True, kw_only=True)
class PairTask:
    pair: PairJob
    parent_run_id: str
    fold_keys: tuple[str, ...]
    baseline_keys: tuple[str, ...] = ()
    scratch_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProbeTask:
    spec: ProbeSpec
    records: tuple[DatasetRecord, ...]
    config_hash: str
    source_models: tuple[SourceModel, ...] = ()


def fold_name(job: PairJob, fold: int, repeat: int) -> str:
    return f"fold {fold}" + (f" repeat {repeat}" if job.repeats > 1 else "")


def fold_outcome(i: int, m: dict[str, float], run_id: str = "", repeat: int = 0) -> FoldOutcome:
    return FoldOutcome(fold=i, auc=m["test_auc"], accuracy=m["test_accuracy"], run_id=run_id,
                       transferability=m.get("transferability"), generality=m.get("generality"),
                       repeat=repeat, shift={k: v for k, v in m.items() if k.startswith("shift_")})


def settings_params(arch: Architecture, folds: Folds, baseline: str, pair: PairJob
                    ) -> dict[str, str]:
    """Every setting of a pair, flattened as MLflow params (``train.optimizer.lr``, ...)."""
    return flatten({"arch": arch.model_dump(), "train": pair.settings.model_dump(mode="json"),
                    "source": pair.source, "target": pair.target, "init": pair.init,
                    "k": pair.k, "folds": folds.model_dump(), "repeats": pair.repeats,
                    "baseline": baseline})
