"""Diagonal Fisher information of a network's weights.

``per-sample`` (the definition): for each sample x, draw y from the model's own softmax
("montecarlo") or take the expectation over every class ("expected"), compute the gradient of
log p(y | x) for that single sample, square it, average over samples. Per-sample gradients are
computed in batch with ``torch.func.vmap(grad(...))`` over chunks, not a Python loop.
``batch-mean`` (the aws-cv-task2vec reference): square the gradient of the batch-mean loss,
average over batches. ``loop`` is the straightforward per-sample Python loop, kept as the
reference for tests and the speed benchmark.

Two engines compute the per-sample gradients in batch: ``layers`` (default where it applies)
does one backward pass per chunk to get every sample's gradient at each layer output (exact in
eval mode, where samples do not interact), then forms per-sample weight gradients of Conv2d
(unfold + batched matmul), BatchNorm2d and Linear layers directly; ``func`` uses
``torch.func.vmap(grad(...))`` and works for any model (faster on GPUs than on CPUs, where
vmap turns convolutions into slow grouped ones).
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
                      chunk: int = 16, gen: torch.Generator | None = None,
                      engine: Literal["auto", "layers", "func"] = "auto"
                      ) -> dict[str, torch.Tensor]:
    """Mean over samples of squared per-sample gradients of log p(y|x) for params ``names``."""
    if engine == "layers" or (engine == "auto" and layers_engine_applies(model, names)):
        return fisher_layers(model, x, names, mode, chunk, gen)
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


_LAYER_TYPES = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)


def _key(module_name: str, param: str) -> str:
    return f"{module_name}.{param}" if module_name else param


def layers_engine_applies(model: nn.Module, names: list[str]) -> bool:
    """True if every parameter in ``names`` belongs to a supported layer in eval mode."""
    owners = {}
    for mname, module in model.named_modules():
        for pname, _ in module.named_parameters(recurse=False):
            owners[_key(mname, pname)] = module
    for n in names:
        m = owners.get(n)
        if not isinstance(m, _LAYER_TYPES) or m.training:
            return False
        if isinstance(m, nn.Conv2d) and (m.groups != 1 or m.padding_mode != "zeros"
                                         or isinstance(m.padding, str)):
            return False
    return True


def _layer_sq_grads(module: nn.Module, inp: torch.Tensor, go: torch.Tensor,
                    w: torch.Tensor) -> dict[str, torch.Tensor]:
    """Weighted sums of squared per-sample gradients of ``module``'s parameters."""
    n = inp.shape[0]
    out: dict[str, torch.Tensor] = {}
    if isinstance(module, nn.Conv2d):
        cols = F.unfold(inp, module.kernel_size, module.dilation, module.padding, module.stride)
        g = go.reshape(n, go.shape[1], -1)
        per = torch.bmm(g, cols.transpose(1, 2))  # (n, C_out, C_in * k * k)
        out["weight"] = torch.einsum("n,n...->...", w, per ** 2).reshape(module.weight.shape)
        if module.bias is not None:
            out["bias"] = torch.einsum("n,nc->c", w, g.sum(2) ** 2)
    elif isinstance(module, nn.BatchNorm2d):
        x_hat = (inp - module.running_mean[None, :, None, None]) / torch.sqrt(
            module.running_var[None, :, None, None] + module.eps)
        out["weight"] = torch.einsum("n,nc->c", w, (go * x_hat).sum((2, 3)) ** 2)
        out["bias"] = torch.einsum("n,nc->c", w, go.sum((2, 3)) ** 2)
    else:  # Linear
        x2, g2 = inp.reshape(n, -1, inp.shape[-1]), go.reshape(n, -1, go.shape[-1])
        per = torch.einsum("nto,nti->noi", g2, x2)
        out["weight"] = torch.einsum("n,noi->oi", w, per ** 2)
        if module.bias is not None:
            out["bias"] = torch.einsum("n,no->o", w, g2.sum(1) ** 2)
    return out


def fisher_layers(model: nn.Module, x: torch.Tensor, names: list[str], mode: Mode = "montecarlo",
                  chunk: int = 16, gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """The per-sample Fisher of :func:`fisher_per_sample`, by the ``layers`` engine."""
    wanted = set(names)
    layers = [(mname, m) for mname, m in model.named_modules() if isinstance(m, _LAYER_TYPES)
              and any(_key(mname, p) in wanted for p, _ in m.named_parameters(recurse=False))]
    acc = {n: torch.zeros_like(p) for n, p in model.named_parameters() if n in wanted}
    with torch.no_grad():
        logits = model(x)
    ys, ws = _sample_targets(logits, mode, gen)
    saved: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def hook(name: str):
        def fn(module, inputs, output):
            # downstream gets a clone, so in-place activations and residual additions
            # (timm's ReLU(inplace=True), x += shortcut) cannot rewrite the saved output
            saved[name] = (inputs[0].detach().clone(), output)
            return output.clone()
        return fn

    handles = [m.register_forward_hook(hook(name)) for name, m in layers]
    try:
        for start in range(0, len(x), chunk):
            xs = x[start:start + chunk]
            for j in range(ys.shape[1]):
                saved.clear()
                with torch.enable_grad():
                    lsm = F.log_softmax(model(xs).float(), dim=1)
                    total = lsm.gather(1, ys[start:start + chunk, j:j + 1]).sum()
                    outs = [saved[name][1] for name, _ in layers]
                    grads = torch.autograd.grad(total, outs)
                w = ws[start:start + chunk, j].to(xs.dtype)
                for (name, module), go in zip(layers, grads):
                    for pname, value in _layer_sq_grads(module, saved[name][0], go, w).items():
                        key = _key(name, pname)
                        if key in acc:
                            acc[key] += value
    finally:
        for h in handles:
            h.remove()
    return {n: v / len(x) for n, v in acc.items()}
