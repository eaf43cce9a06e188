"""Per-filter per-sample Fisher from per-sample gradient norms, at about one backward pass.

Task2Vec only needs, for every output filter c of a layer, sum_p w_p ||dL_p/dW_c||^2 (divided
by the filter's size). A layer's per-sample weight gradient is built from its input and the
gradient at its output, so these squared norms come from those two tensors without keeping any
per-sample weight gradient (the per-sample gradient norm trick of differentially private
training, "ghost norms"):

- Conv2d with few output positions T, where T (D + C) < C D (D = C_in k_h k_w): the spatial
  Gram form ||g_c X||^2 = g_c (X X^T) g_c^T with X (T, D) the unfolded input, built as the sum
  of the k_h k_w shifted input slices' Grams (no unfold copy);
- other Conv2d: per-sample weight gradients by one grouped convolution backward (groups = the
  samples; for 1x1 kernels a batched matmul), reduced per filter at once;
- BatchNorm2d in eval mode: sums over positions of g * x_hat (weight) and g (bias);
- Linear: g_o^2 ||x||^2 for one token per sample, the Gram form over tokens otherwise.

Each chunk runs one forward and one backward with the parameters frozen (the graph starts at
the first layer's output): no weight gradient and no input gradient is formed; tensor hooks on every layer's output receive its
gradient during the backward and reduce it at once, so no output gradient is kept.
Exact when samples do not interact (BatchNorm in eval mode) and each layer runs once per
forward; :func:`norms_engine_applies` checks the first, the hooks the second.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from probes.fisher import Pairs, sample_from

LAYERS = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)


class NormsNotApplicable(RuntimeError):
    """The model does something the norms engine cannot reproduce exactly."""


def _owned(model: nn.Module, names: list[str]) -> list[tuple[str, nn.Module, list[str]]]:
    """(module name, module, wanted parameter names) for every module owning a wanted param."""
    wanted = set(names)
    out = []
    for mname, module in model.named_modules():
        mine = [p for p, _ in module.named_parameters(recurse=False)
                if (f"{mname}.{p}" if mname else p) in wanted]
        if mine:
            out.append((mname, module, mine))
    return out


def norms_engine_applies(model: nn.Module, names: list[str]) -> str | None:
    """None if the engine is exact for ``names`` of ``model``, else why not."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and (m.training
                                                               or m.running_mean is None):
            return "a BatchNorm layer uses batch statistics (samples interact)"
    for mname, module, _ in _owned(model, names):
        if not isinstance(module, LAYERS):
            return f"{mname} ({type(module).__name__}) is not Conv2d, BatchNorm2d or Linear"
        if isinstance(module, nn.Conv2d) and (module.groups != 1 or isinstance(module.padding, str)
                                              or module.padding_mode != "zeros"):
            return f"{mname}: grouped, 'same'-padded or non-zero-padded convolution"
    return None


def _slices(x: torch.Tensor, conv: nn.Conv2d, out_hw: tuple[int, int]) -> Iterator[torch.Tensor]:
    """The input positions each kernel offset sees: (n, C_in, H_out, W_out) per offset."""
    (ph, pw), (sh, sw), (dh, dw) = conv.padding, conv.stride, conv.dilation
    xp = F.pad(x, (pw, pw, ph, ph)) if ph or pw else x
    ho, wo = out_hw
    for i in range(conv.kernel_size[0]):
        for j in range(conv.kernel_size[1]):
            yield xp[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]


def _conv_weight(conv: nn.Conv2d, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """(n, C_out): squared norm of each sample's gradient of each filter."""
    n, c, ho, wo = g.shape
    t, d = ho * wo, conv.weight[0].numel()
    g2 = g.reshape(n, c, t)
    if t * (d + c) < c * d:  # spatial Gram form
        gram = None
        for xs in _slices(x, conv, (ho, wo)):
            x2 = xs.reshape(n, xs.shape[1], t)
            part = torch.bmm(x2.transpose(1, 2), x2)
            gram = part if gram is None else gram.add_(part)
        return (torch.bmm(g2, gram) * g2).sum(2)
    if conv.kernel_size == (1, 1):
        xs = next(_slices(x, conv, (ho, wo))).reshape(n, x.shape[1], t)
        return torch.linalg.vector_norm(torch.bmm(g2, xs.transpose(1, 2)), dim=2).square()
    grouped = conv.weight.new_empty(n * c, *conv.weight.shape[1:])
    _, per, _ = torch.ops.aten.convolution_backward(
        g.reshape(1, n * c, ho, wo), x.reshape(1, -1, *x.shape[2:]), grouped, None,
        list(conv.stride), list(conv.padding), list(conv.dilation), False, [0, 0], n,
        [False, True, False])
    return torch.linalg.vector_norm(per.reshape(n, c, d), dim=2).square()


def _batchnorm(bn: nn.BatchNorm2d, x: torch.Tensor, g: torch.Tensor) -> dict[str, torch.Tensor]:
    """sum_hw g * x_hat = (sum_hw g * x - mean * sum_hw g) / std: two passes over g and x."""
    g_sum = g.sum((2, 3))
    gx = torch.einsum("nchw,nchw->nc", g, x)
    weight = (gx - g_sum * bn.running_mean) * torch.rsqrt(bn.running_var + bn.eps)
    return {"weight": weight.square(), "bias": g_sum.square()}


def _linear(x: torch.Tensor, g: torch.Tensor) -> dict[str, torch.Tensor]:
    if x.dim() == 2:
        return {"weight": g.square() * x.square().sum(1, keepdim=True), "bias": g.square()}
    x3, g3 = x.reshape(len(x), -1, x.shape[-1]), g.reshape(len(g), -1, g.shape[-1])
    gram = torch.bmm(x3, x3.transpose(1, 2))  # (n, tokens, tokens)
    return {"weight": (torch.bmm(gram, g3) * g3).sum(1), "bias": g3.sum(1).square()}


def squared_norms(module: nn.Module, x: torch.Tensor, g: torch.Tensor, wanted: list[str]
                  ) -> dict[str, torch.Tensor]:
    """Per sample and output filter, the squared norm of the gradient of each wanted param."""
    if isinstance(module, nn.Conv2d):
        out = {}
        if "weight" in wanted:
            out["weight"] = _conv_weight(module, x, g)
        if "bias" in wanted:
            out["bias"] = g.sum((2, 3)).square()
        return out
    out = _batchnorm(module, x, g) if isinstance(module, nn.BatchNorm2d) else _linear(x, g)
    return {k: v for k, v in out.items() if k in wanted}


class _Catcher:
    """Forward hooks that keep each layer's input and hook its output's gradient."""

    def __init__(self, acc: dict[str, torch.Tensor]) -> None:
        self.acc = acc
        self.weight: torch.Tensor | None = None
        self.seen: set[str] = set()

    def hook(self, mname: str, wanted: list[str]):
        def forward_hook(module, inputs, output):
            if mname in self.seen:
                raise NormsNotApplicable(f"{mname} runs twice in one forward (shared weights)")
            self.seen.add(mname)
            x, version = inputs[0].detach(), inputs[0]._version
            if not output.requires_grad:  # the first layer: start the graph at its output
                output = output.detach().requires_grad_(True).clone()

            def on_grad(g: torch.Tensor) -> None:
                if inputs[0]._version != version:
                    raise NormsNotApplicable(f"the input of {mname} was changed in place")
                for pname, sq in squared_norms(module, x, g.to(x.dtype), wanted).items():
                    key = f"{mname}.{pname}" if mname else pname
                    self.acc[key] += self.weight.to(sq) @ sq

            output.register_hook(on_grad)
            return output
        return forward_hook


def _batches(x: torch.Tensor, pairs: Pairs | None, chunk: int):
    """(image indices, targets or None to draw in the forward pass, weights) per chunk."""
    if pairs is not None:
        yield from pairs.chunks(chunk)
        return
    for start in range(0, len(x), chunk):
        idx = torch.arange(start, min(start + chunk, len(x)))
        yield idx, None, torch.full((len(idx),), 1.0 / len(x))


def fisher_norms(model: nn.Module, x: torch.Tensor, names: list[str], pairs: Pairs | None = None,
                 chunk: int = 64, gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Per-filter mean of the per-sample Fisher of ``names`` (see the module docstring).

    ``pairs`` from :func:`probes.fisher.draw_targets`; without them every sample of ``x`` counts
    once, its target drawn from the model's softmax in the same forward pass (the target
    ``draw_targets(model, x, "montecarlo", gen=gen)`` would draw: no extra forward pass)."""
    reason = norms_engine_applies(model, names)
    if reason:
        raise NormsNotApplicable(reason)
    layers = _owned(model, names)
    params = dict(model.named_parameters())
    acc = {n: x.new_zeros(params[n].shape[0]) for n in names}
    catcher = _Catcher(acc)
    u = torch.rand(len(x), generator=gen) if pairs is None else None
    handles = [m.register_forward_hook(catcher.hook(mname, wanted)) for mname, m, wanted in layers]
    frozen = {n: p.requires_grad for n, p in params.items()}
    try:
        for p in params.values():
            p.requires_grad_(False)
        for idx, y, w in _batches(x, pairs, chunk):
            catcher.seen.clear()
            catcher.weight = w.to(x.device)
            with torch.enable_grad():
                logp = F.log_softmax(model(x[idx.to(x.device)].detach()).float(), 1)
                if y is None:
                    y = sample_from(logp.detach().exp().cpu(), u[idx])
                logp.gather(1, y.to(x.device)[:, None]).sum().backward()
    finally:
        for h in handles:
            h.remove()
        for n, p in params.items():
            p.requires_grad_(frozen[n])
    return {n: v / math.prod(params[n].shape[1:]) for n, v in acc.items()}
