"""SimEx fleet speed, side by side in one run (not a test; run by hand):

    python tests/bench/bench_simex.py [--k 6] [--steps 60] [--batch 64] [--device auto]

K autoencoders trained for the same number of steps on the same batches: (a) as one batched
fleet (stacked parameters, vmap), (b) one autoencoder at a time (K models, K optimisers).
Also times evaluation of one query batch by all K. Prints steps/s and the ratios.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from bench_core.devices import resolve_device
from probes.simex import Fleet, LeNetAutoencoder, per_sample_loss


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--k", type=int, default=6)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    data = torch.rand(args.k, args.batch * 4, 1, 32, 32, device=device)
    batches = [data[:, (s % 4) * args.batch:(s % 4 + 1) * args.batch] for s in range(args.steps)]

    fleet = Fleet(args.k, 1, device, seed=0)
    opt = torch.optim.Adam(list(fleet.params.values()), lr=1e-3)
    _sync(device)
    start = time.perf_counter()
    for xb in batches:
        loss = per_sample_loss(xb, fleet.forward_each(xb), "mse").mean(1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    t_fleet = time.perf_counter() - start

    models = [LeNetAutoencoder(1).to(device) for _ in range(args.k)]
    opts = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in models]
    _sync(device)
    start = time.perf_counter()
    for xb in batches:
        for k, (m, o) in enumerate(zip(models, opts)):
            loss = per_sample_loss(xb[k], m(xb[k]), "mse").mean()
            o.zero_grad(set_to_none=True)
            loss.backward()
            o.step()
    _sync(device)
    t_single = time.perf_counter() - start

    q = data[0, :args.batch]
    with torch.no_grad():
        _sync(device)
        start = time.perf_counter()
        for _ in range(10):
            fleet.forward_all(q)
        _sync(device)
        e_fleet = (time.perf_counter() - start) / 10
        start = time.perf_counter()
        for _ in range(10):
            [m(q) for m in models]
        _sync(device)
        e_single = (time.perf_counter() - start) / 10
    print(f"device {device}; {args.k} autoencoders, {args.steps} steps of batch {args.batch}")
    print(f"(a) training, batched fleet   : {args.steps / t_fleet:7.2f} steps/s (all {args.k})")
    print(f"(b) training, one at a time   : {args.steps / t_single:7.2f} steps/s (all {args.k})")
    print(f"evaluation of one query batch : fleet {e_fleet * 1000:.1f} ms, one at a time "
          f"{e_single * 1000:.1f} ms")
    print(f"(a)/(b) = {t_single / t_fleet:.2f}   evaluation ratio = {e_single / e_fleet:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
