"""The plan of a suite: pretraining jobs, then source -> target pairs with their folds.

Everything that can be checked before training is checked here, so a bad suite fails in
seconds: datasets registered and single-label, folds stratifiable (every class in every val and
test split), weights for weight-only sources (ImageNet) present, per-source target lists valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bench_core.hashing import config_hash
from benchmark.config import (ShiftSpec, SourceSpec, Suite, TargetSpec, TrainSettings,
                              check_dataset_names)
from bench_core.weights import WeightsError, weights_file
from benchmark.splits import check_splittable
from registry.errors import BenchError, DatasetFormatError, RegistryError
from registry.store import DatasetRecord, RegistryStore

SCRATCH = "scratch"


@dataclass(frozen=True)
class PretrainJob:
    source: str
    settings: TrainSettings
    config_hash: str


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


def _weights_fingerprint(spec: str, tracking_uri: str | None = None) -> str:
    """What identifies the weights of ``spec`` in config hashes (a missing file fails here):
    a file's path, size and mtime; a published folder's SHA-256; a registry model's version
    (an alias that moves changes the hash); a hub name as given."""
    kind, sep, ref = spec.partition(":")
    if kind in ("hub", "hf-hub") and sep:
        return spec
    if spec.startswith("models:/"):
        from mlflow.tracking import MlflowClient

        from bench_core.weights import _registry_version

        name, version = _registry_version(MlflowClient(tracking_uri), spec)
        return f"models:/{name}/{version}"
    if kind == "local-dir" and sep:
        from bench_core.weights import from_folder

        resolved = from_folder(Path(ref).expanduser(), spec)
        return resolved.info.get("weights_sha256") or _stat(resolved.path)
    if kind == "file" and sep or not sep and spec.endswith((".safetensors", ".pth", ".pt", ".bin")):
        return _stat(weights_file(ref if sep else spec, "Check the path given to "
                                  "--imagenet-weights or sources.*.weights."))
    raise WeightsError(f"Weights spec '{spec}' is not one of file:PATH, PATH.safetensors, "
                       "local-dir:PATH, models:/NAME@ALIAS, hf-hub:ORG/REPO or hub:NAME.",
                       "Example: --imagenet-weights ~/weights/resnet50_a1_0-14fe96d1.pth")


def _stat(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _needs_weights_message(source: SourceSpec) -> WeightsError:
    return WeightsError(
        f"Source '{source.name}' means pretrained {source.name} weights, and none were given.",
        "Pass --imagenet-weights PATH (a timm ResNet50 ImageNet state dict such as "
        "resnet50_a1_0-14fe96d1.pth or a .safetensors file), or when online "
        f"--set sources.{source.name}.weights=hub:timm/resnet50.a1_in1k.")


def _records(suite: Suite, store: RegistryStore, where: str, known: tuple[str, ...]
             ) -> dict[str, DatasetRecord]:
    records, missing = {}, []
    for name in suite.dataset_names():
        rec = store.get(name)
        if rec is None:
            missing.append(name)
        else:
            records[name] = rec
    if missing and known:  # a name neither registered nor in the catalog: most likely a typo
        check_dataset_names(suite, {*known, *store.names()}, where)
    if missing:
        cmds = "; ".join(f"`bench add-dataset {n}`" for n in missing)
        raise RegistryError(f"{where} needs datasets that are not registered: "
                            f"{', '.join(missing)}.",
                            f"Register them first ({cmds}; gated data needs --path DIR).")
    for name, rec in records.items():
        if rec.card.get("task") == "multilabel":
            raise DatasetFormatError(f"'{name}' is multilabel; the benchmark trains single-label "
                                     "classifiers.", "Remove it from the suite.")
    return records


def _check_targets(suite: Suite, records: dict[str, DatasetRecord]) -> None:
    names = {t.name for t in suite.targets}
    for s in suite.sources:
        unknown = set(s.only_targets) - names
        if unknown:
            raise BenchError(f"Source '{s.name}' lists only_targets {sorted(unknown)} that are "
                             "not targets of the suite.", "Fix only_targets in the suite.")
    for t in suite.targets:
        labels = np.load(records[t.name].file_path("labels"))
        if t.max_samples is not None:
            if t.max_samples > len(labels):
                raise BenchError(f"Target '{t.name}' asks for max_samples={t.max_samples}, and "
                                 f"it has {len(labels)} samples.",
                                 f"Lower targets.{t.name}.max_samples or remove it.")
            labels = labels[target_subset(labels, t.max_samples, suite.seed)]
        for shift in t.shifts:
            _check_shift(records[t.name], shift, records)
        if suite.folds.scheme == "official":
            _check_official_split(records[t.name])
        else:
            check_splittable(labels, suite.folds.n, t.name)
    if suite.baseline == "self":
        pretrained = {s.name for s in suite.sources if s.weights is None}
        lacking = [t.name for t in suite.targets if t.name not in pretrained]
        if lacking:
            raise BenchError(f"Baseline 'self' needs each target pretrained as a source; "
                             f"{lacking} are not sources of the suite.",
                             "Add them as sources, or use --set baseline=scratch.")


def _check_shift(target: DatasetRecord, shift: ShiftSpec,
                 records: dict[str, DatasetRecord]) -> None:
    """A shifted dataset must have the target's classes, in the same order, and when its
    lineage says it holds the target's images, the same samples in the same order (else a
    model would be tested on its own training images; :func:`benchmark.shifts.paired`)."""
    if shift.dataset is None:
        return
    other = records[shift.dataset]
    if list(other.classes) != list(target.classes):
        raise BenchError(f"Shifted test set '{shift.dataset}' of target '{target.name}' has "
                         f"classes {list(other.classes)}, the target has "
                         f"{list(target.classes)}: a model of the target cannot be tested on it.",
                         "Name a dataset with the target's classes (a variant or a second site "
                         "of the same task), or a transform (noise, blur, contrast, resolution).")
    from benchmark.shifts import paired

    paired(other, target)  # raises when it shares the target's images and cannot be matched


def _check_official_split(record: DatasetRecord) -> None:
    if record.file_path("split") is None:
        raise BenchError(f"Target '{record.name}' has no official train/val/test split in the "
                         "registry (folds.scheme=official needs one, as MedMNIST publishes).",
                         "Use --set folds.scheme=kfold, or register a dataset that ships its "
                         "split (re-register MedMNIST with `bench add-dataset NAME --force` "
                         "if it was registered before splits were kept).")


def make_plan(suite: Suite, store: RegistryStore, tracking_uri: str | None = None, *,
              where: str | None = None, known: tuple[str, ...] = ()) -> Plan:
    """Validate ``suite`` against the registry and lay out its jobs (``tracking_uri``: where
    ``models:/`` weights of sources are registered; ``where`` names the suite in errors, its
    file when it has one; ``known``: catalog names, to tell a typo from unregistered data)."""
    fingerprints = {}
    for s in suite.sources:
        if s.weights == "ask":
            raise _needs_weights_message(s)
        if s.weights is not None:  # a missing weights file fails first
            fingerprints[s.weights] = _weights_fingerprint(s.weights, tracking_uri)
    records = _records(suite, store, where or f"Suite '{suite.name}'", known)
    _check_targets(suite, records)
    arch = suite.architecture.model_dump()
    pretrain, inits = [], {SCRATCH: "scratch"}
    for s in suite.sources:
        if s.weights is not None:
            inits[s.name] = f"weights:{s.weights}"
            continue
        settings = suite.pretrain_settings(s)
        h = config_hash({"kind": "pretrain", "arch": arch, "data": records[s.name].fingerprint,
                         "settings": settings.model_dump(mode="json"), "seed": suite.seed})
        pretrain.append(PretrainJob(s.name, settings, h))
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
    return Plan(suite, tuple(pretrain), tuple(pairs), records)


def target_subset(labels: np.ndarray, max_samples: int | None, seed: int) -> np.ndarray:
    """The indices a target fine-tunes on: all, or a nested stratified subset."""
    from registry.sampling import stratified_subset

    if max_samples is None or max_samples >= len(labels):
        return np.arange(len(labels))
    return stratified_subset(labels, max_samples, seed)


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
    return PairJob(source, target, kind, settings, init, pair_hash, folds, k, suite.repeats,
                   spec.max_samples, spec.shifts)


def _shift_key(shift: ShiftSpec, records: dict[str, DatasetRecord]) -> dict:
    """What identifies a shift in config hashes: its spec, and the data of a shifted dataset
    with the version of how it is paired with the target (2: by lineage, test counterparts
    only; scores of version 1 could include a model's own training images and are redone)."""
    key = shift.model_dump(mode="json")
    if shift.dataset:
        key["data"] = records[shift.dataset].fingerprint
        key["pairing"] = 2
    return key
