"""Everything about a suite that can be checked before any job runs, so a bad suite fails in
seconds with what to do: datasets registered and single-label, folds stratifiable (every class
in every val and test split), subsets and shifted sets that fit their target, weights of
weight-only sources (ImageNet) present, per-source target lists valid. These run while the
plan is made; the suite's probes, which need the plan, are checked beside them
(:mod:`benchmark.suite.probe_checks`).

MLflow is imported only where a ``models:/`` source needs it: a suite without registry
weights never loads it, and its errors come fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench_core.weights import WeightsError, from_folder, registry_version, weights_file
from bench_core.weights_check import check_weights_fit
from benchmark.suite.lineage import paired
from benchmark.suite.spec import ShiftSpec, SourceSpec, Suite, check_dataset_names
from benchmark.suite.splits import (Split, check_splittable, fold_splits, official_split,
                                    single_split, target_subset)
from registry.errors import BenchError, DatasetFormatError, RegistryError
from registry.store import DatasetRecord, RegistryStore


def weights_fingerprint(spec: str, tracking_uri: str | None = None) -> str:
    """What identifies the weights of ``spec`` in config hashes (a missing file fails here):
    a file's path, size and mtime; a published folder's SHA-256; a registry model's version
    (an alias that moves changes the hash); a hub name as given."""
    kind, sep, ref = spec.partition(":")
    if kind in ("hub", "hf-hub") and sep:
        return spec
    if spec.startswith("models:/"):
        from mlflow.tracking import MlflowClient

        name, version = registry_version(MlflowClient(tracking_uri), spec)
        return f"models:/{name}/{version}"
    if kind == "local-dir" and sep:
        resolved = from_folder(Path(ref).expanduser(), spec)
        return resolved.info.get("weights_sha256") or _stat(resolved.path)
    if kind == "file" and sep or not sep and spec.endswith((".safetensors", ".pth", ".pt", ".bin")):
        return _stat(weights_file(ref if sep else spec, "Check the path given to "
                                  "--imagenet-weights or sources.*.weights."))
    raise WeightsError(f"Weights spec '{spec}' is not one of file:PATH, PATH.safetensors, "
                       "local-dir:PATH, models:/NAME@ALIAS, hf-hub:ORG/REPO or hub:NAME.",
                       "Example: --imagenet-weights ~/weights/resnet50_a1_0-14fe96d1.pth")


def check_weights(spec: str, arch: str, source: str) -> None:
    """A weights file (or a published folder) a source names must be readable and fit the
    suite's architecture, checked from its header alone (:mod:`bench_core.weights_check`);
    registry and hub weights are checked when they are fetched."""
    kind, sep, ref = spec.partition(":")
    if kind == "local-dir" and sep:
        path = from_folder(Path(ref).expanduser(), spec).path
    elif kind == "file" and sep or not sep:
        path = weights_file(ref if sep else spec, "")
    else:
        return
    check_weights_fit(path, arch, f"The weights of source '{source}'")


def _stat(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def needs_weights_message(source: SourceSpec) -> WeightsError:
    return WeightsError(
        f"Source '{source.name}' means pretrained {source.name} weights, and none were given.",
        "Pass --imagenet-weights PATH (a timm ResNet50 ImageNet state dict such as "
        "resnet50_a1_0-14fe96d1.pth or a .safetensors file), or when online "
        f"--set sources.{source.name}.weights=hub:timm/resnet50.a1_in1k.")


def suite_records(suite: Suite, store: RegistryStore, where: str, known: tuple[str, ...]
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


def check_architecture(suite: Suite) -> None:
    """The suite's architecture exists in timm and, when the generality protocol freezes
    stages, is a ResNet whose stage count holds every k (built on the meta device: no
    weights, no memory)."""
    import torch

    from bench_core.models import build_model, stage_modules

    name = suite.architecture.name
    with torch.device("meta"):
        model = build_model(name, 2, 0.0)  # an unknown name fails here, with suggestions
    if suite.generality.ks:
        n = len(stage_modules(model))
        wrong = sorted(k for k in suite.generality.ks if not 0 <= k <= n)
        if wrong:
            raise BenchError(f"generality.ks {wrong} are outside 0..{n}: {name} has {n} "
                             "stages to keep trainable (0: only the head).",
                             f"Use ks between 0 and {n} (--set generality.ks=[...]).")


def check_targets(suite: Suite, records: dict[str, DatasetRecord]) -> None:
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
    check_splits(suite, records)
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
    paired(other, target)  # raises when it shares the target's images and cannot be matched


def _check_official_split(record: DatasetRecord) -> None:
    if record.file_path("split") is None:
        raise BenchError(f"Target '{record.name}' has no official train/val/test split in the "
                         "registry (folds.scheme=official needs one, as MedMNIST publishes).",
                         "Use --set folds.scheme=kfold, or register a dataset that ships its "
                         "split (re-register MedMNIST with `bench add-dataset NAME --force` "
                         "if it was registered before splits were kept).")



def check_splits(suite: Suite, records: dict[str, DatasetRecord]) -> None:
    """Make every split the run will make (each source's pretraining split, each target's
    folds of every repeat, or its official split, within its subset) and check that each part
    holds every class of the dataset and the training part at least two images (BatchNorm):
    what would otherwise fail deep inside a job, after hours of others."""
    for s in suite.sources:
        if s.weights is not None:
            continue
        record = records[s.name]
        labels = np.load(record.file_path("labels"))
        where = (f"Source '{s.name}' cannot be split for pretraining (one stratified "
                 "train/validation/test split, 80/10/10)")
        fix = (f"Register more images of those classes, or leave '{s.name}' out "
               "(--sources ...).")
        _check_parts(lambda: single_split(labels, suite.seed), labels, record, where, fix,
                     np.arange(len(labels)))
    for t in suite.targets:
        record = records[t.name]
        labels = np.load(record.file_path("labels"))
        subset = target_subset(labels, t.max_samples, suite.seed)
        cut = f" (its subset of max_samples={t.max_samples})" if t.max_samples else ""
        if suite.folds.scheme == "official":
            _check_parts(lambda: _official_within(record, subset, len(labels)), labels, record,
                         f"Target '{t.name}'{cut} cannot use its official split", "Use "
                         "--set folds.scheme=kfold, or a larger max_samples.", subset)
            continue
        for r in range(suite.repeats):
            folds = _folds(labels, subset, suite, r)
            for i in range(suite.folds.n):
                _check_parts(lambda: folds(i), labels, record,
                             f"Target '{t.name}'{cut} cannot be split into {suite.folds.n} "
                             f"stratified folds (fold {i}, repeat {r})",
                             "Use fewer folds (--set folds.n=...), a larger folds.val_fraction, "
                             "a larger max_samples, or more data for those classes.", subset)


def _folds(labels: np.ndarray, subset: np.ndarray, suite: Suite, repeat: int):
    """fold i of a repeat, as the fold job makes it (indices into the whole dataset)."""
    made: list[Split] = []

    def fold(i: int) -> Split:
        if not made:
            made.extend(fold_splits(labels[subset], suite.folds.n, suite.folds.val_fraction,
                                    suite.folds.seed + repeat))
        s = made[i]
        return Split(subset[s.train], subset[s.val], subset[s.test])
    return fold


def _official_within(record: DatasetRecord, subset: np.ndarray, n: int) -> Split:
    split = official_split(np.load(record.file_path("split")))
    keep = np.zeros(n, dtype=bool)
    keep[subset] = True
    return Split(*(part[keep[part]] for part in (split.train, split.val, split.test)))


def _check_parts(make, labels: np.ndarray, record: DatasetRecord, where: str, fix: str,
                 within: np.ndarray) -> None:
    """Raise a clear error when the split ``make()`` makes fails, or a part lacks a class
    (the images per class counted ``within`` the indices the split is made of)."""
    counts = {c: int(n) for c, n in zip(record.classes, np.bincount(
        labels[within], minlength=len(record.classes)))}
    try:
        split = make()
    except ValueError as err:  # scikit-learn's refusal of a stratified split
        raise DatasetFormatError(f"{where}: {str(err).rstrip('.')}. Images per class: "
                                 f"{counts}.", fix) from None
    everything = set(range(len(record.classes)))
    for part, idx in (("training", split.train), ("validation", split.val),
                      ("test", split.test)):
        lacking = sorted(everything - set(labels[idx].tolist()))
        if lacking:
            names = [record.classes[c] for c in lacking]
            raise DatasetFormatError(f"{where}: its {part} part ({len(idx)} images) holds no "
                                     f"image of class(es) {names} (AUC needs every class). "
                                     f"Images per class: {counts}.", fix)
    if len(split.train) < 2:
        raise DatasetFormatError(f"{where}: its training part holds {len(split.train)} image "
                                 "(BatchNorm needs at least two).", fix)
