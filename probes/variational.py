"""Task2Vec's variational estimate: instead of the Fisher, learn a per-filter posterior
variance sigma^2 of the weights (w' = w + sigma * eps) that keeps the task loss low while
staying as wide as the prior allows:

    L(sigma) = E_eps[ CE(f(x; w + sigma * eps), y) ] + beta * sum 0.5 * (sigma^2 / lambda^2 - log sigma^2)

(beta 1e-7, Adam lr 1e-2 as in the reference). Filters the task depends on get small variances;
the embedding is the learned precision 1 / sigma^2 per filter of the embedded parameters.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


def variational_embedding(model: nn.Module, x: torch.Tensor, y: torch.Tensor, keys: list[str],
                          *, epochs: int = 2,
                          batch: int = 64, lr: float = 1e-2, beta: float = 1e-7,
                          prior_var: float = 1.0, init_logvar: float = -10.0,
                          gen: torch.Generator | None = None) -> np.ndarray:
    """Precision per filter of the parameters ``keys``, concatenated in their order."""
    model.eval()
    params = dict(model.named_parameters())
    targets = [(k, params[k]) for k in keys]
    logvars = {n: torch.full((p.shape[0],), init_logvar, device=p.device, requires_grad=True)
               for n, p in targets}
    base = {n: p.detach() for n, p in model.named_parameters()}
    buffers = dict(model.named_buffers())
    opt = torch.optim.Adam(list(logvars.values()), lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen).to(x.device)
        for s in range(0, len(order), batch):
            b = order[s:s + batch]
            params = dict(base)
            for n, p in targets:
                std = torch.exp(0.5 * logvars[n]).view(-1, *([1] * (p.dim() - 1)))
                noise = torch.randn(p.shape, generator=gen).to(p.device)
                params[n] = base[n] + std * noise
            ce = F.cross_entropy(functional_call(model, (params, buffers), (x[b],)).float(), y[b])
            reg = sum((0.5 * (torch.exp(lv) / prior_var - lv)).sum() for lv in logvars.values())
            loss = ce + beta * reg
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return torch.cat([torch.exp(-logvars[n]).detach() for n, _ in targets]).cpu().double().numpy()
