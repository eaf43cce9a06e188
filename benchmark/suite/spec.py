"""A suite as a typed, frozen model: its sources, targets (with their shifted test sets),
the generality sweep and the probes, over the training settings of :mod:`.settings`. The
resolved suite is what is hashed and logged."""

from __future__ import annotations

import copy
from collections.abc import Collection
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from bench_core.hashing import config_hash
from benchmark.suite.settings import Architecture, Folds, Frozen, TrainSettings
from benchmark.transforms import TRANSFORMS
from registry.errors import CardError, UnknownNameError
from registry.names import unknown_name_message


class SourceSpec(Frozen):
    """A source: a registered dataset to pretrain on, or ``weights`` (e.g. ImageNet)."""

    name: str
    # file:PATH, local-dir:PATH, models:/NAME@ALIAS, hf-hub:ORG/REPO, hub:NAME (see
    # bench_core.weights), "ask" (must be given), None: pretrain on the dataset
    weights: str | None = None
    pretrain: dict[str, Any] = Field(default_factory=dict)
    only_targets: tuple[str, ...] = ()  # empty: every target


class ShiftSpec(Frozen):
    """A shifted test set of a target (Recht et al. 2019): another registered ``dataset`` with the same
    classes, or a deterministic ``transform`` of the target's test images: Gaussian
    ``noise`` (sd = level x 255), Gaussian ``blur`` (sigma = level pixels), ``contrast``
    (scaled by level about the image mean), ``resolution`` (down to level x the size and back,
    bilinear). A dataset that holds the target's images by its lineage (the target itself, its
    parent, a child or a sibling derived sample by sample, as mnist-5k-rotated and mnist-5k) is
    paired: each model is tested on the counterparts of its own test images only, and a size
    mismatch fails at plan time; an unrelated dataset (a second acquisition site) is used whole
    (:func:`benchmark.suite.lineage.paired`). Transforms are the modules of
    :mod:`benchmark.transforms`, one each (``bench run --help`` lists them)."""

    name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    dataset: str | None = None
    transform: str | None = None  # a name of benchmark.transforms.TRANSFORMS
    level: float = Field(0.1, gt=0)
    seed: int = 0

    @model_validator(mode="after")
    def _one_kind(self) -> ShiftSpec:
        if (self.dataset is None) == (self.transform is None):
            raise ValueError("a shift names either a dataset or a transform")
        if self.transform is not None:
            if self.transform not in TRANSFORMS:
                raise ValueError(unknown_name_message("shift transform", self.transform,
                                                      TRANSFORMS.names()))
            TRANSFORMS.get(self.transform).check_level(self.level)
        return self

    @property
    def label(self) -> str:
        """The name in metric keys and reports."""
        return self.name or self.dataset or f"{self.transform}-{self.level:g}"

    def metric_key(self, metric: str) -> str:
        """The MLflow metric of a fold run holding ``metric`` on this shifted set."""
        return f"shift_{self.label}_{metric}"


class TargetSpec(Frozen):
    """A target; ``max_samples``: fine-tune on a stratified subset of that many images (seeded
    by the suite's seed, nested: a smaller subset lies inside a larger one), as in Venkatesan et al.'s (2016)
    small-sample experiments and to keep a suite small."""

    name: str
    finetune: dict[str, Any] = Field(default_factory=dict)
    max_samples: int | None = Field(None, ge=4)
    shifts: tuple[ShiftSpec, ...] = ()  # shifted test sets every fine-tuned model is tested on

    @model_validator(mode="after")
    def _unique_shifts(self) -> TargetSpec:
        labels = [s.label for s in self.shifts]
        if len(set(labels)) != len(labels):
            raise ValueError(f"shift names of target {self.name} must be unique, got {labels}")
        return self


class Generality(Frozen):
    """Seed 000's layer-freezing protocol: only the last k stages trainable, for the listed
    sources and targets (empty lists: all of them); g_k = AUC_k / AUC(scratch)."""

    ks: tuple[int, ...] = ()
    sources: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()


class ProbeSpec(Frozen):
    """A dataset-similarity probe run over the suite's datasets after the grid."""

    method: str
    options: dict[str, Any] = Field(default_factory=dict)


class Suite(Frozen):
    name: str
    description: str = ""
    architecture: Architecture = Architecture()
    folds: Folds = Folds()
    baseline: Literal["scratch", "self"] = "scratch"
    seed: int = 0
    # repeated k-fold: every fine-tuning runs ``repeats`` times, each repeat with its own fold
    # split (folds.seed + r) and training seed; the spread and the noise ceiling come from them
    repeats: int = Field(1, ge=1, le=100)
    pretrain_defaults: TrainSettings = TrainSettings()
    finetune_defaults: TrainSettings = TrainSettings()
    sources: tuple[SourceSpec, ...]
    targets: tuple[TargetSpec, ...]
    generality: Generality = Generality()
    probes: tuple[ProbeSpec, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> Suite:
        for kind, names in (("source", [s.name for s in self.sources]),
                            ("target", [t.name for t in self.targets])):
            if len(set(names)) != len(names):
                raise ValueError(f"{kind} names must be unique, got {names}")
        if not self.targets:
            raise ValueError("a suite needs at least one target")
        return self

    def pretrain_settings(self, source: SourceSpec, where: str | None = None) -> TrainSettings:
        """The source's pretraining settings; ``where`` names the suite in errors (its file)."""
        return _merge(self.pretrain_defaults, source.pretrain, f"sources.{source.name}.pretrain",
                      where or f"suite '{self.name}'")

    def finetune_settings(self, target: TargetSpec, where: str | None = None) -> TrainSettings:
        """The target's fine-tuning settings; ``where`` names the suite in errors (its file)."""
        return _merge(self.finetune_defaults, target.finetune, f"targets.{target.name}.finetune",
                      where or f"suite '{self.name}'")

    def digest(self) -> str:
        return config_hash(self.model_dump(mode="json"))

    def dataset_names(self) -> list[str]:
        """The registered datasets the suite trains and tests on, each once, in suite order:
        sources without weights, targets, datasets of shifts."""
        names = [s.name for s in self.sources if s.weights is None]
        names += [t.name for t in self.targets]
        names += [s.dataset for t in self.targets for s in t.shifts if s.dataset]
        return list(dict.fromkeys(names))


def check_dataset_names(suite: Suite, known: Collection[str], where: str) -> None:
    """Raise for the first dataset of ``suite`` that is not in ``known`` (registered, catalog
    and alias names): most likely a typo, reported with the close names before anything is
    registered or loaded. ``where`` names the suite (its file, when it has one)."""
    for name in suite.dataset_names():
        if name not in known:
            raise UnknownNameError(
                unknown_name_message("dataset", name, sorted(known)).replace(
                    "Unknown dataset", f"{where} names an unknown dataset", 1),
                "Fix the name in the suite, or register your own data with `bench add-dataset "
                f"{name} --path DIR --format LOADER`.")


def _merge(base: TrainSettings, override: dict[str, Any], field: str, where: str
           ) -> TrainSettings:
    data = _deep_merge(base.model_dump(mode="json") | {"keep_models": base.keep_models},
                       override)  # keep_models is out of model_dump (and so of the hashes)
    try:
        return TrainSettings.model_validate(data)
    except ValidationError as err:
        raise CardError(f"{where[:1].upper()}{where[1:]}: field {field} is invalid: "
                        f"{validation_errors(err)}.",
                        f"Fix {field} there, or the --set flag that changed it.") from None


def _deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def validation_errors(err: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(suite)'}: {e['msg']}" for e in err.errors())

