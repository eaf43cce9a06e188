"""Suite configuration: YAML defaults (benchmark/suites/*.yaml) overridden by CLI flags,
resolved into typed, frozen models. The resolved config is what gets hashed and logged."""

from __future__ import annotations

import copy
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bench_core.hashing import config_hash
from registry.errors import CardError, UnknownNameError
from registry.names import unknown_name_message

SUITES_DIR = Path(__file__).parent / "suites"
DEFAULT_SUITE = "mnist"  # what `bench run` runs when no --suite is given


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Optimizer(_Frozen):
    name: Literal["adam", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = 0.9


class Scheduler(_Frozen):
    """``halve-after``: lr halved once after ``after`` epochs (the paper's text);
    ``halve-every-after``: halved at every epoch past ``after`` (the public code, compounding)."""

    kind: Literal["none", "halve-after", "halve-every-after"] = "none"
    after: int = Field(0, ge=0)

    def factor(self, epoch: int) -> float:
        """Learning-rate multiplier for 0-based ``epoch``."""
        if self.kind == "halve-after":
            return 0.5 if epoch >= self.after else 1.0
        if self.kind == "halve-every-after":
            return 0.5 ** max(0, epoch - self.after + 1)
        return 1.0


class Augmentation(_Frozen):
    rotation: float = Field(10.0, ge=0, le=180)
    shift: float = Field(0.1, ge=0, le=0.5)
    hflip: bool = True


class TrainSettings(_Frozen):
    image_size: tuple[int, int] = (112, 112)
    batch_size: int = Field(128, ge=1)
    epochs: int = Field(50, ge=1)
    optimizer: Optimizer = Optimizer()
    scheduler: Scheduler = Scheduler()
    augmentation: Augmentation = Augmentation()
    class_weights: Literal["balanced", "none"] = "balanced"
    select_on: Literal["val_auc", "val_loss"] = "val_auc"
    # fine-tuning only: keep each fold's fine-tuned model (model.safetensors + config.json as
    # artifacts of the fold run, for `bench publish SOURCE --run FOLD_RUN_ID`). It changes no
    # result, so it is out of every config hash (exclude=True keeps it out of model_dump);
    # turning it on does not redo finished folds. Pretraining always keeps its weights.
    keep_models: bool = Field(False, exclude=True)


class Architecture(_Frozen):
    name: str = "resnet50"
    drop_rate: float = Field(0.5, ge=0, lt=1)


class Folds(_Frozen):
    """``kfold``: k stratified folds (the paper's protocol); ``official``: the target's own
    published train/val/test split (MedMNIST), one fold, to compare with published numbers."""

    scheme: Literal["kfold", "official"] = "kfold"
    n: int = Field(5, ge=2)
    val_fraction: float = Field(0.5, gt=0, lt=1)  # share of each held-out fold used for val
    seed: int = 0

    @property
    def count(self) -> int:
        """Fold jobs per pair and repeat."""
        return 1 if self.scheme == "official" else self.n


class SourceSpec(_Frozen):
    """A source: a registered dataset to pretrain on, or ``weights`` (e.g. ImageNet)."""

    name: str
    # file:PATH, local-dir:PATH, models:/NAME@ALIAS, hf-hub:ORG/REPO, hub:NAME (see
    # bench_core.weights), "ask" (must be given), None: pretrain on the dataset
    weights: str | None = None
    pretrain: dict[str, Any] = Field(default_factory=dict)
    only_targets: tuple[str, ...] = ()  # empty: every target


class ShiftSpec(_Frozen):
    """A shifted test set of a target (seed 001): another registered ``dataset`` with the same
    classes, or a deterministic ``transform`` of the target's test images: Gaussian
    ``noise`` (sd = level x 255), Gaussian ``blur`` (sigma = level pixels), ``contrast``
    (scaled by level about the image mean), ``resolution`` (down to level x the size and back,
    bilinear). A dataset that holds the target's images by its lineage (the target itself, its
    parent, a child or a sibling derived sample by sample, as mnist-5k-rotated and mnist-5k) is
    paired: each model is tested on the counterparts of its own test images only, and a size
    mismatch fails at plan time; an unrelated dataset (a second acquisition site) is used whole
    (:func:`benchmark.shifts.paired`)."""

    name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    dataset: str | None = None
    transform: Literal["noise", "blur", "contrast", "resolution"] | None = None
    level: float = Field(0.1, gt=0)
    seed: int = 0

    @model_validator(mode="after")
    def _one_kind(self) -> ShiftSpec:
        if (self.dataset is None) == (self.transform is None):
            raise ValueError("a shift names either a dataset or a transform")
        if self.transform == "resolution" and self.level >= 1:
            raise ValueError("a resolution shift needs 0 < level < 1 (the scale factor)")
        return self

    @property
    def label(self) -> str:
        """The name in metric keys and reports."""
        return self.name or self.dataset or f"{self.transform}-{self.level:g}"


class TargetSpec(_Frozen):
    """A target; ``max_samples``: fine-tune on a stratified subset of that many images (seeded
    by the suite's seed, nested: a smaller subset lies inside a larger one), as in seed 000's
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


class Generality(_Frozen):
    """Seed 000's layer-freezing protocol: only the last k stages trainable, for the listed
    sources and targets (empty lists: all of them); g_k = AUC_k / AUC(scratch)."""

    ks: tuple[int, ...] = ()
    sources: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()


class ProbeSpec(_Frozen):
    """A dataset-similarity probe run over the suite's datasets after the grid."""

    method: str
    options: dict[str, Any] = Field(default_factory=dict)


class Suite(_Frozen):
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
                        f"{_errors(err)}.",
                        f"Fix {field} there, or the --set flag that changed it.") from None


def _deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _errors(err: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(suite)'}: {e['msg']}" for e in err.errors())


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def load_suite_dict(name_or_path: str) -> tuple[dict[str, Any], str]:
    """The raw suite mapping and where it came from (a built-in name or a YAML path)."""
    path = Path(name_or_path).expanduser()
    if path.suffix in (".yaml", ".yml") or len(path.parts) > 1:  # a path, not a built-in name
        if not path.is_file():
            raise CardError(f"Suite file {path} does not exist"
                            f"{' (it is a folder)' if path.is_dir() else ''}.",
                            f"Check the path, or run a built-in suite: {', '.join(suite_names())}"
                            " (`--suite NAME`).")
    else:
        path = SUITES_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise UnknownNameError(unknown_name_message("suite", name_or_path, suite_names()),
                                   f"Built-in suites: {', '.join(suite_names())}; "
                                   "or give the path of a suite YAML file.")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise CardError(f"Suite file {path} is not valid YAML: {err}.", "Fix its syntax.") from None
    if not isinstance(data, dict):
        raise CardError(f"Suite file {path} must hold a mapping.", "See benchmark/suites/.")
    return data, str(path)


def apply_override(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in ``data``; list items are addressed by their ``name``
    (``sources.stl10.pretrain.epochs``)."""
    keys = dotted.split(".")
    node: Any = data
    for i, key in enumerate(keys[:-1]):
        if isinstance(node, list):
            match = [item for item in node if isinstance(item, dict) and item.get("name") == key]
            if not match:
                names = [item.get("name") for item in node if isinstance(item, dict)]
                raise CardError(f"--set {dotted}: no list item named '{key}' (have {names}).",
                                "Use the name of a source or target of the suite.")
            node = match[0]
        else:
            node = node.setdefault(key, {})
            if not isinstance(node, (dict, list)):
                raise CardError(f"--set {dotted}: '{'.'.join(keys[:i + 1])}' is not a section.",
                                "Check the key path against the suite file.")
    node[keys[-1]] = value


def select(data: dict[str, Any], field: str, names: list[str] | None, where: str = "the suite"
           ) -> None:
    """Keep only the named sources/targets (in the given order); unknown names are errors
    that name the suite (its file, when it has one)."""
    if not names:
        return
    items = {item["name"]: item for item in data.get(field, [])}
    picked = []
    for name in names:
        if name not in items:
            raise UnknownNameError(unknown_name_message(field[:-1], name, sorted(items)),
                                   f"The {field} of {where}: {', '.join(items)}.")
        picked.append(items[name])
    data[field] = picked


def resolve_suite(name_or_path: str, overrides: list[tuple[str, Any]] = (),
                  sources: list[str] | None = None, targets: list[str] | None = None) -> Suite:
    """Load a suite, apply ``--set`` overrides and source/target selection, validate."""
    data, where = load_suite_dict(name_or_path)
    for dotted, value in overrides:
        apply_override(data, dotted, value)
    select(data, "sources", sources, where)
    select(data, "targets", targets, where)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as err:
        raise CardError(f"Suite {where} is invalid: {_errors(err)}.",
                        "Fix the suite file or the --set flags.") from None
    for s in suite.sources:
        suite.pretrain_settings(s, f"suite file {where}")
    for t in suite.targets:
        suite.finetune_settings(t, f"suite file {where}")
    return suite
