"""The training loop: device-resident uint8 data, index-gathered batches, batched on-device
augmentation, float conversion and normalisation per batch, bf16 autocast and channels_last on
CUDA (fp32 on CPU), best epoch chosen on the validation split, test metrics at that epoch."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench_core.batches import BatchPrep, class_weights
from bench_core.data import DeviceData
from bench_core.models import set_train_mode, state_to_cpu
from benchmark.engine.augment import augment
from benchmark.engine.metrics import accuracy, auc
from benchmark.suite.settings import TrainSettings
from benchmark.suite.splits import Split

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class FitResult:
    best_epoch: int
    history: list[dict[str, float]]
    test: dict[str, float]
    best_state: dict[str, torch.Tensor] = field(repr=False)
    train_images_per_s: float


def batches(n: int, size: int) -> list[slice]:
    """Batch slices of ``range(n)``; a last batch of one sample joins the previous one
    (BatchNorm cannot train on a single sample)."""
    cuts = list(range(0, n, size)) + [n]
    if len(cuts) > 2 and cuts[-1] - cuts[-2] == 1:
        cuts.pop(-2)
    return [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:])]


@torch.no_grad()
def predict(model: nn.Module, data: DeviceData, idx: np.ndarray, batch: int, prep: BatchPrep,
            weight: torch.Tensor | None = None) -> tuple[np.ndarray, float]:
    """Softmax probabilities (n, K) and mean weighted cross-entropy on ``idx``."""
    model.eval()
    index = torch.as_tensor(idx, device=data.images.device)
    probs, loss_sum, w_sum = [], 0.0, 0.0
    for sl in batches(len(index), batch):
        b = index[sl]
        with torch.autocast(prep.device.type, dtype=torch.bfloat16, enabled=prep.cuda):
            logits = model(prep(data.images[b])).float()
        y = data.labels[b]
        w = weight[y] if weight is not None else torch.ones_like(y, dtype=torch.float32)
        loss_sum += float((F.cross_entropy(logits, y, reduction="none") * w).sum())
        w_sum += float(w.sum())
        probs.append(torch.softmax(logits, dim=1).cpu())
    return torch.cat(probs).numpy(), loss_sum / max(w_sum, 1e-12)


def _evaluate(model, data, idx, settings, prep, weight) -> dict[str, float]:
    proba, loss = predict(model, data, idx, max(settings.batch_size, 256), prep, weight)
    y = data.labels_np[idx]
    return {"auc": auc(y, proba), "accuracy": accuracy(y, proba), "loss": loss}


def evaluate_on(model: nn.Module, data: DeviceData, idx: np.ndarray, settings: TrainSettings,
                device: torch.device) -> dict[str, float]:
    """AUC, accuracy and (unweighted) loss of ``model`` on ``data[idx]``."""
    return _evaluate(model, data, idx, settings, BatchPrep(device), None)


def fit(model: nn.Module, data: DeviceData, split: Split, settings: TrainSettings,
        device: torch.device, seed: int, frozen: list[nn.Module] = (),
        on_epoch: EpochCallback | None = None, progress=None) -> FitResult:
    """Train ``model`` on ``split.train``; keep the epoch with the best validation score;
    return its test metrics (``progress(n)`` is advanced once per epoch)."""
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    prep = BatchPrep(device)
    weight = (class_weights(data.labels_np[split.train], data.n_classes, device)
              if settings.class_weights == "balanced" else None)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _optimizer(params, settings)
    train_idx = torch.as_tensor(split.train, device=device)
    history, best, best_state, seen, busy = [], None, state_to_cpu(model), 0, 0.0
    for epoch in range(settings.epochs):
        for group in opt.param_groups:
            group["lr"] = settings.optimizer.lr * settings.scheduler.factor(epoch)
        set_train_mode(model, list(frozen))
        start = time.perf_counter()
        train_loss = _train_epoch(model, data, train_idx, settings, prep, gen, opt, weight)
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        seen, busy = seen + len(train_idx), busy + elapsed
        val = _evaluate(model, data, split.val, settings, prep, weight)
        row = {"train_loss": train_loss, "val_loss": val["loss"], "val_auc": val["auc"],
               "val_accuracy": val["accuracy"], "lr": opt.param_groups[0]["lr"],
               "train_images_per_s": len(train_idx) / elapsed}
        history.append(row)
        score = val["auc"] if settings.select_on == "val_auc" else -val["loss"]
        if best is None or score > best[1]:
            best, best_state = (epoch, score), state_to_cpu(model)
        if on_epoch:
            on_epoch(epoch, row)
        if progress:
            progress(1)
    model.load_state_dict(best_state)
    test = _evaluate(model, data, split.test, settings, prep, weight)
    return FitResult(best[0], history, test, best_state, seen / max(busy, 1e-9))


def _train_epoch(model, data, train_idx, settings, prep, gen, opt, weight) -> float:
    order = train_idx[torch.randperm(len(train_idx), generator=gen, device=gen.device)
                      .to(train_idx.device)]
    total = torch.zeros((), device=order.device)  # summed on the device: no sync per batch
    count = 0
    for sl in batches(len(order), settings.batch_size):
        b = order[sl]
        x = prep(data.images[b], lambda v: augment(v, settings.augmentation, gen))
        y = data.labels[b]
        with torch.autocast(prep.device.type, dtype=torch.bfloat16, enabled=prep.cuda):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y, weight=weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach() * len(b)
        count += len(b)
    return float(total) / max(count, 1)


def _optimizer(params, settings: TrainSettings) -> torch.optim.Optimizer:
    o = settings.optimizer
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
