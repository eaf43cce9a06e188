"""Diagonal Fisher information of a network's weights.

``per-sample`` (the definition): for each sample x, draw y from the model's own softmax
("montecarlo") or take the expectation over every class ("expected"), compute the gradient of
log p(y | x) for that single sample, square it, average over samples. Per-sample gradients are
computed in batch with ``torch.func.vmap(grad(...))`` over chunks, not a Python loop.
``batch-mean`` (the aws-cv-task2vec reference): square the gradient of the batch-mean loss,
average over batches. ``loop`` is the straightforward per-sample Python loop, kept as the
reference for tests and the speed benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

Mode = Literal["montecarlo", "expected"]


def _sample_targets(logits: torch.Tensor, mode: Mode, gen: torch.Generator | None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets (n, m) and their weights (n, m): m=1 sampled, or m=K classes weighted by p."""
    probs = torch.softmax(logits.float(), dim=1)
    if mode == "expected":
        k = probs.shape[1]
        return torch.arange(k, device=logits.device).expand(len(probs), k), probs
    y = torch.multinomial(probs, 1, generator=gen)
    return y, torch.ones_like(y, dtype=probs.dtype)


def fisher_per_sample(model: nn.Module, x: torch.Tensor, names: list[str], mode: Mode = "montecarlo",
                      chunk: int = 16, gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Mean over samples of squared per-sample gradients of log p(y|x) for params ``names``."""
    params = {n: p.detach() for n, p in model.named_parameters() if n in names}
    buffers = {n: b for n, b in model.named_buffers()}
    frozen = {n: p.detach() for n, p in model.named_parameters() if n not in names}

    def logp(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, {**frozen, **p, **buffers}, (xi.unsqueeze(0),))
        return F.log_softmax(out.float(), dim=1)[0].gather(0, yi.reshape(1))[0]

    per_grad = vmap(grad(logp), in_dims=(None, 0, 0))
    acc = {n: torch.zeros_like(p) for n, p in params.items()}
    with torch.no_grad():
        logits = model(x)
    ys, ws = _sample_targets(logits, mode, gen)
    for start in range(0, len(x), chunk):
        xs = x[start:start + chunk]
        for j in range(ys.shape[1]):
            g = per_grad(params, xs, ys[start:start + chunk, j])
            w = ws[start:start + chunk, j]
            for n in acc:
                acc[n] += torch.einsum("b,b...->...", w, g[n] ** 2)
    return {n: v / len(x) for n, v in acc.items()}


def fisher_loop(model: nn.Module, x: torch.Tensor, names: list[str], mode: Mode = "montecarlo",
                gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """The same quantity with one backward pass per sample and target (slow reference)."""
    params = dict(model.named_parameters())
    acc = {n: torch.zeros_like(params[n]) for n in names}
    with torch.no_grad():
        logits = model(x)
    ys, ws = _sample_targets(logits, mode, gen)
    for i in range(len(x)):
        for j in range(ys.shape[1]):
            model.zero_grad(set_to_none=True)
            F.log_softmax(model(x[i:i + 1]).float(), dim=1)[0, ys[i, j]].backward()
            for n in names:
                acc[n] += ws[i, j] * params[n].grad.detach() ** 2
    model.zero_grad(set_to_none=True)
    return {n: v / len(x) for n, v in acc.items()}


def fisher_batch_mean(model: nn.Module, x: torch.Tensor, names: list[str], batch: int = 64,
                      gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """The reference implementation's estimate: squared gradient of each batch's mean loss
    (y sampled from the model), averaged over batches."""
    params = dict(model.named_parameters())
    acc = {n: torch.zeros_like(params[n]) for n in names}
    n_batches = 0
    for start in range(0, len(x), batch):
        xb = x[start:start + batch]
        model.zero_grad(set_to_none=True)
        logits = model(xb)
        y = torch.multinomial(torch.softmax(logits.detach().float(), 1), 1, generator=gen)[:, 0]
        F.cross_entropy(logits.float(), y).backward()
        for n in names:
            acc[n] += params[n].grad.detach() ** 2
        n_batches += 1
    model.zero_grad(set_to_none=True)
    return {n: v / max(n_batches, 1) for n, v in acc.items()}


FisherFn = Callable[..., dict[str, torch.Tensor]]
