"""The plan of a suite: pretraining jobs, then source -> target pairs with their folds and
repeats, each with its config hash (what identifies its results in the store). Everything that
can be checked before training is checked first (:mod:`benchmark.suite.checks`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


from bench_core.hashing import config_hash
from benchmark.suite.checks import (check_architecture, check_targets, check_weights,
                                    needs_weights_message, suite_records, weights_fingerprint)
from benchmark.suite.settings import TrainSettings
from benchmark.suite.spec import ShiftSpec, Suite, TargetSpec
from registry.store import DatasetRecord, RegistryStore

SCRATCH = "scratch"


@dataclass(frozen=True, kw_only=True)
class PretrainJob:
    source: str
    settings: TrainSettings
    config_hash: str


@dataclass(frozen=True, kw_only=True)
class PairJob:
    """Fine-tune ``source`` -> ``target`` (or train from scratch) on every fold."""

    source: str
    target: str
    kind: Literal["scratch", "transfer", "freeze"]
    settings: TrainSettings
    init: str  # "scratch", "pretrain:<hash>" or "weights:<spec>"
    config_hash: str
    fold_hashes: tuple[str, ...]  # one per (repeat, fold), repeat-major
    k: int | None = None
    repeats: int = 1
    max_samples: int | None = None  # a stratified subset of the target (TargetSpec)
    shifts: tuple[ShiftSpec, ...] = ()  # shifted test sets (TargetSpec)

    @property
    def n_folds(self) -> int:
        return len(self.fold_hashes) // self.repeats

    def slot(self, j: int) -> tuple[int, int]:
        """(fold, repeat) of the ``j``-th fold job."""
        repeat, fold = divmod(j, self.n_folds)
        return fold, repeat

    @property
    def label(self) -> str:
        base = f"{self.source} -> {self.target}"
        return f"{base} [k={self.k}]" if self.kind == "freeze" else base


@dataclass(frozen=True, kw_only=True)
class Plan:
    suite: Suite
    pretrain: tuple[PretrainJob, ...]
    pairs: tuple[PairJob, ...]
    records: dict[str, DatasetRecord] = field(repr=False)

    def summary(self) -> dict[str, Any]:
        return {"suite": self.suite.name, "pretrain": [j.source for j in self.pretrain],
                "pairs": [{"source": p.source, "target": p.target, "kind": p.kind, "k": p.k,
                           "folds": p.n_folds, "repeats": p.repeats} for p in self.pairs],
                "runs": len(self.pretrain) + sum(len(p.fold_hashes) for p in self.pairs)}


def make_plan(suite: Suite, store: RegistryStore, tracking_uri: str | None = None, *,
              where: str | None = None, known: tuple[str, ...] = ()) -> Plan:
    """Validate ``suite`` against the registry and lay out its jobs (``tracking_uri``: where
    ``models:/`` weights of sources are registered; ``where`` names the suite in errors, its
    file when it has one; ``known``: catalog names, to tell a typo from unregistered data)."""
    check_architecture(suite)
    fingerprints = {}
    for s in suite.sources:
        if s.weights == "ask":
            raise needs_weights_message(s)
        if s.weights is not None:  # a missing or unfitting weights file fails first
            fingerprints[s.weights] = weights_fingerprint(s.weights, tracking_uri)
            check_weights(s.weights, suite.architecture.name, s.name)
    records = suite_records(suite, store, where or f"Suite '{suite.name}'", known)
    check_targets(suite, records)
    arch = suite.architecture.model_dump()
    pretrain, inits = [], {SCRATCH: "scratch"}
    for s in suite.sources:
        if s.weights is not None:
            inits[s.name] = f"weights:{s.weights}"
            continue
        settings = suite.pretrain_settings(s)
        h = config_hash({"kind": "pretrain", "arch": arch, "data": records[s.name].fingerprint,
                         "settings": settings.model_dump(mode="json"), "seed": suite.seed})
        pretrain.append(PretrainJob(source=s.name, settings=settings, config_hash=h))
        inits[s.name] = f"pretrain:{h}"
    pairs = []
    for t in suite.targets:
        settings = suite.finetune_settings(t)
        sources = [SCRATCH] + [s.name for s in suite.sources
                               if not s.only_targets or t.name in s.only_targets]
        for src in sources:
            pairs.append(_pair(suite, records, t, src, settings, inits[src], None,
                               fingerprints))
        for k in suite.generality.ks:
            for src in sources[1:]:
                if (not suite.generality.sources or src in suite.generality.sources) and \
                        (not suite.generality.targets or t.name in suite.generality.targets):
                    pairs.append(_pair(suite, records, t, src, settings, inits[src], k,
                                       fingerprints))
    return Plan(suite=suite, pretrain=tuple(pretrain), pairs=tuple(pairs), records=records)


def _pair(suite: Suite, records: dict[str, DatasetRecord], spec: TargetSpec, source: str,
          settings: TrainSettings, init: str, k: int | None, fingerprints: dict[str, str]
          ) -> PairJob:
    kind = "scratch" if source == SCRATCH else ("freeze" if k is not None else "transfer")
    init_key = init
    if init.startswith("weights:"):
        init_key = f"weights:{fingerprints[init.removeprefix('weights:')]}"
    target = spec.name
    base = {"kind": kind, "arch": suite.architecture.model_dump(), "init": init_key, "k": k,
            "data": records[target].fingerprint, "settings": settings.model_dump(mode="json"),
            "folds": suite.folds.model_dump(), "seed": suite.seed,
            **({"max_samples": spec.max_samples} if spec.max_samples is not None else {}),
            **({"shifts": [_shift_key(s, records) for s in spec.shifts]} if spec.shifts else {})}
    folds = tuple(config_hash({**base, "fold": i, **({"repeat": r} if r else {})})
                  for r in range(suite.repeats) for i in range(suite.folds.count))
    pair_hash = config_hash({**base, **({"repeats": suite.repeats} if suite.repeats > 1 else {})})
    return PairJob(source=source, target=target, kind=kind, settings=settings, init=init,
                   config_hash=pair_hash, fold_hashes=folds, k=k, repeats=suite.repeats,
                   max_samples=spec.max_samples, shifts=spec.shifts)


def _shift_key(shift: ShiftSpec, records: dict[str, DatasetRecord]) -> dict:
    """What identifies a shift in config hashes: its spec, and the data of a shifted dataset
    with the version of how it is paired with the target (2: by lineage, test counterparts
    only; scores of version 1 could include a model's own training images and are redone)."""
    key = shift.model_dump(mode="json")
    if shift.dataset:
        key["data"] = records[shift.dataset].fingerprint
        key["pairing"] = 2
    return key
