"""Diagonal Fisher information of a network's weights: the definition and the reference's estimate.

The per-sample Fisher is F = (1/N) sum_d (d log p(y_d | x_d) / dw)^2 over N draws x_d of the data,
with y_d drawn from the model's own softmax ("montecarlo") or every class weighted by its
probability ("expected"). Task2Vec draws N class-balanced samples *with replacement* from a small
subset, so the same (image, target) pair recurs many times: :func:`draw_targets` turns the draws
into distinct (image, target, weight) :class:`Pairs` (weight = count / N), and every engine
computes sum_p weight_p * (per-sample gradient of pair p)^2, the same estimate without repeating
identical work. Targets come from one uniform number per draw (inverse CDF of the softmax), so
they do not depend on how an engine chunks its work.

Engines for the per-sample Fisher: ``func`` (torch.func vmap of grad; any model; the reference
in tests), ``loop`` (one backward pass per pair; the obvious and slow one) and ``norms``
(:mod:`probes.fisher_norms`, per-filter sums at about the cost of one backward pass).
``batch-mean`` is aws-cv-task2vec's estimate: the squared gradient of each batch's mean loss,
averaged over batches (a different, smaller quantity).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

Mode = Literal["montecarlo", "expected"]


@dataclass(frozen=True)
class Pairs:
    """Distinct (image index, target class) pairs and their weights (summing to 1)."""

    index: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor

    def __len__(self) -> int:
        return len(self.index)

    def chunks(self, size: int):
        for start in range(0, len(self), size):
            sl = slice(start, start + size)
            yield self.index[sl], self.target[sl], self.weight[sl]


def sample_from(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One class per row of ``probs`` by inverse CDF of the uniform numbers ``u``."""
    cdf = probs.cumsum(1)
    return (cdf < u[:, None] * cdf[:, -1:]).sum(1).clamp(max=probs.shape[1] - 1)


@torch.no_grad()
def class_probs(model: nn.Module, x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    return torch.cat([torch.softmax(model(x[s:s + chunk]).float(), 1)
                      for s in range(0, len(x), chunk)])


def draw_targets(model: nn.Module, x: torch.Tensor, mode: Mode = "montecarlo",
                 draws: torch.Tensor | None = None, gen: torch.Generator | None = None
                 ) -> Pairs:
    """The pairs of the Fisher over ``draws`` (indices into ``x``, repeats allowed; default:
    every sample once)."""
    draws = torch.arange(len(x)) if draws is None else draws.cpu()
    probs = class_probs(model, x).cpu()
    n, k = probs.shape
    if mode == "expected":
        counts = torch.bincount(draws, minlength=n).to(probs.dtype)
        weight = counts[:, None] * probs / len(draws)
        index, target = torch.nonzero(weight > 0, as_tuple=True)
        return Pairs(index, target, weight[index, target])
    u = torch.rand(len(draws), generator=gen)
    y = sample_from(probs[draws], u)
    keys, counts = torch.unique(draws * k + y, return_counts=True)
    return Pairs(keys // k, keys % k, counts.to(probs.dtype) / len(draws))


def _log_prob_sum(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.log_softmax(model(x).float(), dim=1).gather(1, y[:, None]).sum()


def fisher_func(model: nn.Module, x: torch.Tensor, names: list[str], pairs: Pairs,
                chunk: int = 16) -> dict[str, torch.Tensor]:
    """Weighted squared per-sample gradients by ``torch.func.vmap(grad(...))``; any model."""
    params = {n: p.detach() for n, p in model.named_parameters() if n in names}
    rest = {**{n: p.detach() for n, p in model.named_parameters() if n not in names},
            **dict(model.named_buffers())}

    def logp(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, {**rest, **p}, (xi.unsqueeze(0),))
        return F.log_softmax(out.float(), dim=1)[0].gather(0, yi.reshape(1))[0]

    per_grad = vmap(grad(logp), in_dims=(None, 0, 0))
    acc = {n: torch.zeros_like(p) for n, p in params.items()}
    for idx, y, w in pairs.chunks(chunk):
        g = per_grad(params, x[idx.to(x.device)], y.to(x.device))
        for n in acc:
            acc[n] += torch.einsum("b,b...->...", w.to(g[n]), g[n] ** 2)
    return acc


def fisher_loop(model: nn.Module, x: torch.Tensor, names: list[str], pairs: Pairs
                ) -> dict[str, torch.Tensor]:
    """The same quantity with one backward pass per pair (slow reference)."""
    params = dict(model.named_parameters())
    acc = {n: torch.zeros_like(params[n]) for n in names}
    for i, y, w in zip(pairs.index.tolist(), pairs.target.tolist(), pairs.weight.tolist()):
        model.zero_grad(set_to_none=True)
        F.log_softmax(model(x[i:i + 1]).float(), dim=1)[0, y].backward()
        for n in names:
            acc[n] += w * params[n].grad.detach() ** 2
    model.zero_grad(set_to_none=True)
    return acc


def fisher_batch_mean(model: nn.Module, x: torch.Tensor, names: list[str],
                      draws: torch.Tensor | None = None, batch: int = 64,
                      gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """aws-cv-task2vec's estimate: squared gradient of each batch's mean cross-entropy (y drawn
    from the model), averaged over batches; the last partial batch is dropped, as there."""
    draws = torch.arange(len(x)) if draws is None else draws.cpu()
    u = torch.rand(len(draws), generator=gen)
    params = dict(model.named_parameters())
    acc = {n: torch.zeros_like(params[n]) for n in names}
    stop = len(draws) - len(draws) % batch if len(draws) >= batch else len(draws)
    n_batches = 0
    for start in range(0, stop, batch):
        sl = slice(start, start + batch)
        model.zero_grad(set_to_none=True)
        logits = model(x[draws[sl].to(x.device)])
        y = sample_from(torch.softmax(logits.detach().float(), 1).cpu(), u[sl])
        F.cross_entropy(logits.float(), y.to(logits.device)).backward()
        for n in names:
            acc[n] += params[n].grad.detach() ** 2
        n_batches += 1
    model.zero_grad(set_to_none=True)
    return {n: v / max(n_batches, 1) for n, v in acc.items()}


def per_filter(fisher: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each parameter's Fisher averaged over the elements of every output filter (row)."""
    return {n: v.reshape(v.shape[0], -1).mean(dim=1) if v.dim() else v.reshape(1)
            for n, v in fisher.items()}
