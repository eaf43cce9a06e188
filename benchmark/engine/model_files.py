"""A trained model as the folder timm and the Hugging Face Hub read: ``model.safetensors`` and
timm's ``config.json`` with our section (what it was trained on, the weights' SHA-256). Fold
runs of a suite with ``keep_models`` keep this folder as an artifact; publishing writes it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from timm.models import save_for_hf

from bench_core.batches import IMAGENET_MEAN, IMAGENET_STD
from bench_core.weights import CONFIG, OURS, WEIGHTS
from registry.files import file_digest

KEPT_TAG = "kept_model"  # "1" on a fold run whose fine-tuned model is in its artifacts
KEPT_DIR = "model"  # where: model/config.json, model/model.safetensors


def save_timm_files(model, folder: Path, image_size: tuple[int, int],
                    classes: tuple[str, ...] | list[str], ours: dict[str, Any]) -> dict:
    """``model.safetensors`` and timm's ``config.json`` (label names, input size, ImageNet
    mean/std) in ``folder``, with our section ``ours`` and the weights' SHA-256; returns the
    config."""
    h, w = image_size
    save_for_hf(model, folder, safe_serialization=True,
                model_config={"label_names": list(classes)},
                data_config={"input_size": (3, h, w), "mean": IMAGENET_MEAN,
                             "std": IMAGENET_STD, "crop_pct": 1.0, "interpolation": "bilinear"})
    cfg = json.loads((folder / CONFIG).read_text())
    cfg[OURS] = {**ours, "weights_sha256": file_digest(folder / WEIGHTS)}
    (folder / CONFIG).write_text(json.dumps(cfg, indent=2))
    return cfg
