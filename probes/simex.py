"""SimEx (Hwang et al. 2020): similarity from reconstruction by a fleet of autoencoders.

One autoencoder per reference set Y_k (a dataset, or a class); Delta(X | Y_k) is the mean over
x in X of delta(x, A_k(x)) with delta = MSE or iSSIM = 1 - SSIM; smaller = more similar. To
compare across references, Delta(. | Y_k) is divided by the mean L2 norm of Y_k's samples.
The autoencoders (LeNet-5-like encoder, symmetric decoder) are trained and evaluated as one
network, :class:`Fleet`: their channels are concatenated, every convolution is a grouped one
(groups = number of autoencoders) and every linear layer a batched matmul, so each autoencoder
sees only its own channels and all of them train in one pass: on a 2-core CPU about 1.6-1.9x
the training speed of one at a time, where torch.func's vmap over stacked parameters was no
faster than one at a time (tests/bench/bench_simex.py).
Training stops early once the watched similarity ordering has not changed for ``patience``
checks: the probe watches, on its held-out samples, each query's ordering of the references
(:func:`references_per_query`); the reproduction of the paper's Table 1 watches the ordering it
scores, each reference's ordering of the query sets (:func:`queries_per_reference`), on
training samples.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench_core.data import load_device_data
from probes.base import Probe, ProbeError, ProbeOptions, ProbeResult, register_probe
from registry.store import DatasetRecord

log = logging.getLogger(__name__)
SIDE = 32


class LeNetAutoencoder(nn.Module):
    """Encoder after LeNet-5 (conv 5x5 -> pool -> conv 5x5 -> pool -> 120 -> 84), mirrored.

    The 84-d code and the output are linear. With a ReLU code and a sigmoid output, the
    autoencoders of sparse images (MNIST: white ink on a black background) collapsed within a
    few epochs to a constant black image (sigmoid saturated, no gradient left), so every such
    autoencoder gave the same Delta to every query; reconstructions are clipped to [0, 1] when
    Delta is measured (:func:`delta_matrix`).
    """

    def __init__(self, channels: int = 1, latent: int = 84) -> None:
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(channels, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, latent))
        self.dec = nn.Sequential(
            nn.Linear(latent, 120), nn.ReLU(), nn.Linear(120, 400), nn.ReLU(),
            nn.Unflatten(1, (16, 5, 5)), nn.Upsample(scale_factor=2),
            nn.ConvTranspose2d(16, 6, 5), nn.ReLU(), nn.Upsample(scale_factor=2),
            nn.ConvTranspose2d(6, channels, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(self.enc(x))


def _gaussian_window(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
    g = torch.exp(-(torch.arange(size, device=device) - size // 2) ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004; 11x11 Gaussian window, sigma 1.5, data range 1)."""
    a, b = torch.broadcast_tensors(a, b)
    c = a.shape[-3]
    w = _gaussian_window(device=a.device).to(a.dtype).expand(c, 1, 11, 11)
    flat_a, flat_b = a.reshape(-1, *a.shape[-3:]), b.reshape(-1, *b.shape[-3:])
    mu_a, mu_b = F.conv2d(flat_a, w, groups=c), F.conv2d(flat_b, w, groups=c)
    s_aa = F.conv2d(flat_a * flat_a, w, groups=c) - mu_a ** 2
    s_bb = F.conv2d(flat_b * flat_b, w, groups=c) - mu_b ** 2
    s_ab = F.conv2d(flat_a * flat_b, w, groups=c) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    m = ((2 * mu_a * mu_b + c1) * (2 * s_ab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (s_aa + s_bb + c2))
    return m.mean(dim=(-3, -2, -1)).reshape(a.shape[:-3])


def per_sample_loss(x: torch.Tensor, recon: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "issim":
        return 1.0 - ssim(recon, x)
    return ((recon - x) ** 2).mean(dim=(-3, -2, -1))


class GroupedConv(nn.Module):
    """K Conv2d (or ConvTranspose2d) layers as one convolution with groups=K.

    Member k owns input and output channel block k, so it sees only its own channels: the
    result equals the K separate convolutions, in one kernel call instead of K small ones.
    """

    def __init__(self, convs: list[nn.Conv2d] | list[nn.ConvTranspose2d]) -> None:
        super().__init__()
        first = convs[0]
        self.k, self.transposed = len(convs), isinstance(first, nn.ConvTranspose2d)
        self.stride, self.padding = first.stride, first.padding
        # per-group blocks lie along dim 0: Conv2d weights are (out, in, ..), transposed (in, out, ..)
        self.weight = nn.Parameter(torch.cat([c.weight.detach() for c in convs]).clone())
        self.bias = nn.Parameter(torch.cat([c.bias.detach() for c in convs]).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, K*C_in, H, W) -> (B, K*C_out, H', W')."""
        if self.transposed:
            return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                      groups=self.k)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, groups=self.k)

    def member(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's weight and bias, shaped as its standalone layer's."""
        w, b = self.weight.chunk(self.k), self.bias.chunk(self.k)
        return {"weight": w[k], "bias": b[k]}


class BatchedLinear(nn.Module):
    """K Linear layers as one batched matmul: x (K, B, in) -> (K, B, out), weight (K, out, in)."""

    def __init__(self, linears: list[nn.Linear]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in linears]).clone())
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in linears]).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))

    def member(self, k: int) -> dict[str, torch.Tensor]:
        return {"weight": self.weight[k], "bias": self.bias[k]}


class ChannelsToMembers(nn.Module):
    """Flatten: (B, K*C, H, W) -> (K, B, C*H*W), each row in the standalone (C, H, W) order."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], self.k, -1).transpose(0, 1)


class MembersToChannels(nn.Module):
    """Unflatten: (K, B, C*H*W) -> (B, K*C, H, W), channels-last for the convolutions."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h, w = self.shape
        x = x.transpose(0, 1).reshape(x.shape[1], -1, h, w)
        return x.contiguous(memory_format=torch.channels_last)


def _fleet_layer(layers: list[nn.Module]) -> nn.Module:
    """The fleet's version of one layer of K standalone autoencoders (same position in each)."""
    first = layers[0]
    if isinstance(first, (nn.Conv2d, nn.ConvTranspose2d)):
        return GroupedConv(layers)
    if isinstance(first, nn.Linear):
        return BatchedLinear(layers)
    if isinstance(first, nn.Flatten):
        return ChannelsToMembers(len(layers))
    if isinstance(first, nn.Unflatten):
        return MembersToChannels(tuple(first.unflattened_size))
    if isinstance(first, (nn.ReLU, nn.MaxPool2d, nn.Upsample)):
        return copy.deepcopy(first)  # per channel: the same on the concatenated channels
    raise TypeError(f"no fleet version of {type(first).__name__}")


class Fleet(nn.Module):
    """K LeNet autoencoders as one network: member k owns channel block k of every convolution
    (groups=K) and slice k of every linear layer (a batched matmul).

    Each member is the standalone :class:`LeNetAutoencoder` it was built from (same layers, same
    weights; :meth:`member_state` exports it back), but all K train in one pass. The loss must
    sum the members' own losses so each gets its standalone gradient; Adam is elementwise, so one
    Adam over the fleet equals K separate ones. Convolutions run channels-last: on CPU that made
    the grouped convolutions (forward + backward) about twice as fast; in the default layout
    the fleet was hardly faster than one autoencoder at a time (tests/bench/bench_simex.py).
    """

    def __init__(self, members: list[LeNetAutoencoder]) -> None:
        super().__init__()
        self.k = len(members)
        self.enc = nn.Sequential(*[_fleet_layer([m.enc[i] for m in members])
                                   for i in range(len(members[0].enc))])
        self.dec = nn.Sequential(*[_fleet_layer([m.dec[i] for m in members])
                                   for i in range(len(members[0].dec))])

    @classmethod
    def seeded(cls, k: int, channels: int, device: torch.device, seed: int) -> Fleet:
        """K freshly initialised members, drawn exactly as K standalone autoencoders would be."""
        torch.manual_seed(seed)
        return cls([LeNetAutoencoder(channels) for _ in range(k)]).to(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, K*C, H, W), member k's images in channels [k*C, (k+1)*C) -> same shape."""
        return self.dec(self.enc(x.contiguous(memory_format=torch.channels_last)))

    def forward_each(self, xs: torch.Tensor) -> torch.Tensor:
        """xs (K, B, C, H, W): autoencoder k reconstructs xs[k]."""
        k, b, c, h, w = xs.shape
        out = self(xs.transpose(0, 1).reshape(b, k * c, h, w))
        return out.reshape(b, k, c, h, w).transpose(0, 1)

    def forward_all(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W): every autoencoder reconstructs x -> (K, B, C, H, W)."""
        b, c, h, w = x.shape
        out = self(x.repeat(1, self.k, 1, 1))
        return out.reshape(b, self.k, c, h, w).transpose(0, 1)

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member k as a standalone LeNetAutoencoder state_dict (copies, detached)."""
        return {f"{name}.{key}": t.detach().clone()
                for name, layer in self.named_modules()
                if isinstance(layer, (GroupedConv, BatchedLinear))
                for key, t in layer.member(k).items()}


class SimExOptions(ProbeOptions):
    loss: Literal["mse", "issim"] = "mse"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    check_every: int = 2
    patience: int = 3
    max_per_set: int = 2000
    eval_per_set: int = 500
    grayscale: bool = True
    normalize: bool = True
    level: Literal["dataset", "class"] = "dataset"
    seed: int = 0


def _prepare(images: torch.Tensor, grayscale: bool) -> torch.Tensor:
    """uint8 (N, C, 32, 32) -> float [0, 1], 1 channel (luma) or 3."""
    x = images.float() / 255.0
    if grayscale and x.shape[1] == 3:
        x = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    if not grayscale and x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x


def references_per_query(delta: np.ndarray) -> np.ndarray:
    """Row q: the references ordered by Delta(X_q | Y_k), most similar first (the probe's
    distances to one target). What the probe's early stop watches (version 2)."""
    return np.argsort(delta, axis=1, kind="stable")


def queries_per_reference(delta: np.ndarray) -> np.ndarray:
    """Row k: the query sets ordered by Delta(X | Y_k), most similar first: the ordering of
    Hwang et al.'s Table 1, scored against each base's retraining order."""
    return np.argsort(delta, axis=0, kind="stable").T


def train_fleet(refs: list[torch.Tensor], watch: list[torch.Tensor], opts: SimExOptions,
                device: torch.device, progress=None, ordering=references_per_query,
                optimizer: type[torch.optim.Optimizer] = torch.optim.Adam
                ) -> tuple[Fleet, dict]:
    """Train one autoencoder per reference set (all at once, ``optimizer`` at ``opts.lr``).

    Every ``opts.check_every`` epochs, ``ordering(Delta of the ``watch`` sets)`` is compared
    with the last check's; training stops once it has not changed for ``opts.patience``
    checks. ``info["stable_from"]``: the epoch from which the watched ordering stayed as it
    ended (whether or not training stopped there)."""
    k, channels = len(refs), refs[0].shape[1]
    fleet = Fleet.seeded(k, channels, device, opts.seed)
    opt = optimizer(fleet.parameters(), lr=opts.lr)
    gen = torch.Generator(device="cpu").manual_seed(opts.seed)
    steps = max(len(r) for r in refs) // opts.batch_size + 1
    last, stable, stable_from = None, 0, None
    start = time.perf_counter()
    for epoch in range(opts.epochs):
        for _ in range(steps):
            batch = torch.stack([r[torch.randint(len(r), (opts.batch_size,), generator=gen)
                                   .to(r.device)] for r in refs])
            recon = fleet.forward_each(batch)
            loss = per_sample_loss(batch, recon, opts.loss).mean(dim=1).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if progress:
            progress(1)
        if (epoch + 1) % opts.check_every == 0:
            order = ordering(delta_matrix(fleet, watch, opts.loss))
            same = last is not None and np.array_equal(order, last)
            stable, last = (stable + 1 if same else 0), order
            stable_from = stable_from if same else epoch + 1
            if stable >= opts.patience:
                break
    info = {"epochs": epoch + 1, "train_seconds": time.perf_counter() - start,
            "stopped_early": epoch + 1 < opts.epochs, "stable_from": stable_from}
    return fleet, info


@torch.no_grad()
def delta_matrix(fleet: Fleet, queries: list[torch.Tensor], loss: str, chunk: int = 256
                 ) -> np.ndarray:
    """Delta(X_q | Y_k) for every query set q (rows) and autoencoder k (columns)."""
    out = []
    for x in queries:
        total = 0.0
        for s in range(0, len(x), chunk):
            xb = x[s:s + chunk]
            recon = fleet.forward_all(xb).clamp(0.0, 1.0)  # images live in [0, 1]
            total = total + per_sample_loss(xb.unsqueeze(0), recon, loss).sum(dim=1)
        out.append((total / len(x)).cpu().numpy())
    return np.stack(out)


def greedy_pairing(delta: np.ndarray) -> list[tuple[int, int]]:
    """Pair rows with columns greedily by smallest Delta, each used once (Hwang et al. 2020)."""
    d = np.array(delta, dtype=float)
    pairs = []
    for _ in range(min(d.shape)):
        i, j = np.unravel_index(np.nanargmin(d), d.shape)
        pairs.append((int(i), int(j)))
        d[i, :] = np.nan
        d[:, j] = np.nan
    return pairs


@register_probe
class SimExProbe(Probe):
    """SimEx (Hwang et al. 2020): how well autoencoders of one dataset reconstruct another."""

    smoke_options = {"epochs": 2, "check_every": 1, "max_per_set": 200, "eval_per_set": 50}

    name = "simex"
    cost = 4
    Options = SimExOptions
    symmetric = False
    version = 2  # linear code and output: version 1's autoencoders collapsed on sparse images

    def _sets(self, records: list[DatasetRecord], device: torch.device
              ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[tuple[int, str]]]:
        """Reference (training) and held-out sets: one per dataset, or one per class."""
        refs, held, owners = [], [], []
        rng = np.random.default_rng(self.opts.seed)
        for d, r in enumerate(records):
            data = load_device_data(r, (SIDE, SIDE), device)
            x = _prepare(data.images, self.opts.grayscale)
            groups = ([(r.name, np.arange(len(data.labels_np)))] if self.opts.level == "dataset"
                      else [(c, np.flatnonzero(data.labels_np == k))
                            for k, c in enumerate(data.classes)])
            for label, members in groups:
                order = rng.permutation(members)
                n_eval = min(self.opts.eval_per_set, len(order) // 5)
                if n_eval < 1:
                    raise ProbeError(f"'{r.name}' ({label}) is too small for SimEx "
                                     f"({len(order)} samples).", "Use at least 5 samples per set.")
                ev, tr = order[:n_eval], order[n_eval:n_eval + self.opts.max_per_set]
                held.append(x[torch.as_tensor(ev, device=x.device)])
                refs.append(x[torch.as_tensor(tr, device=x.device)])
                owners.append((d, str(label)))
        return refs, held, owners

    def compute(self, records: list[DatasetRecord]) -> ProbeResult:
        device = torch.device(self.context.device)
        refs, held, owners = self._sets(records, device)
        with self.context.progress("simex fleet", self.opts.epochs) as advance:
            fleet, info = train_fleet(refs, held, self.opts, device, advance)
        start = time.perf_counter()
        delta = delta_matrix(fleet, held, self.opts.loss)  # rows: query X, cols: reference Y
        info["compare_seconds"] = time.perf_counter() - start
        if self.opts.normalize:
            norms = np.array([float(r.flatten(1).norm(dim=1).mean()) for r in refs])
            delta = delta / norms[None, :]
        names = [r.name for r in records]
        if self.opts.level == "class":
            return self._class_result(names, delta, owners, info)
        # distances[i][j]: how unlike dataset j is from reference i, relative to i's own data
        d = delta.T - np.diag(delta)[:, None]
        return ProbeResult(self.name, names, d, details={
            "delta": delta.round(6).tolist(), "loss": self.opts.loss,
            "order": np.argsort(delta.T, axis=1).tolist(), **info})

    def _class_result(self, names: list[str], delta: np.ndarray,
                      owners: list[tuple[int, str]], info: dict) -> ProbeResult:
        """Class-level SimEx: inter-class Delta inside each dataset, greedy class pairing across
        datasets, and dataset distances from the mean of the class blocks."""
        ds = np.array([o[0] for o in owners])
        labels = [f"{names[d]}:{c}" for d, c in owners]
        n = len(names)
        block = np.array([[delta[np.ix_(ds == j, ds == i)].mean() for j in range(n)]
                          for i in range(n)])  # [ref dataset i][query dataset j]
        within, pairing = {}, {}
        for i in range(n):
            own = delta[np.ix_(ds == i, ds == i)]
            within[names[i]] = own.round(6).tolist()
            for j in range(n):
                if i < j:
                    sub = delta[np.ix_(ds == j, ds == i)].T  # rows: classes of i, cols: of j
                    ci = [c for d, c in owners if d == i]
                    cj = [c for d, c in owners if d == j]
                    pairing[f"{names[i]}|{names[j]}"] = [(ci[a], cj[b]) for a, b in greedy_pairing(sub)]
        d = block - np.diag(block)[:, None]
        return ProbeResult(self.name, names, d, details={
            "level": "class", "loss": self.opts.loss, "classes": labels,
            "class_delta": delta.round(6).tolist(), "within": within, "pairing": pairing, **info})
