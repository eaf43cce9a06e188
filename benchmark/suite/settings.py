"""Training settings of a suite, as typed frozen models: what pretraining and fine-tuning
runs with (optimizer, schedule, augmentation, image size), the network and the folds. They are
hashed into every job's config hash, so a field's name, default and order are part of the
stores made before; change them only with a reason (and say so)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Optimizer(Frozen):
    name: Literal["adam", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = 0.9


class Scheduler(Frozen):
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


class Augmentation(Frozen):
    rotation: float = Field(10.0, ge=0, le=180)
    shift: float = Field(0.1, ge=0, le=0.5)
    hflip: bool = True


class TrainSettings(Frozen):
    image_size: tuple[PositiveInt, PositiveInt] = (112, 112)  # height, width in pixels
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


class Architecture(Frozen):
    name: str = "resnet50"
    drop_rate: float = Field(0.5, ge=0, lt=1)


class Folds(Frozen):
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

