"""Task2Vec Fisher speed, side by side in one run (not a test; run by hand):

    python tests/bench/bench_fisher.py [--arch resnet10t] [--size 32] [--samples 64]
                                       [--chunk 16] [--device auto]

On the same probe network and the same inputs: (1) our per-sample Fisher, gradients in batch
by (1a) torch.func (vmap of grad) and (1b) the layers engine (one backward per chunk, per-sample
weight gradients by unfold + batched matmul), (2) the straightforward per-sample loop (one backward pass per
sample: the reference for correctness; both give the same numbers), (3) the reference
implementation's batch-mean estimate (squared gradient of each batch's mean loss: fast, but a
different quantity). Prints samples/s and the largest relative difference (1) vs (2).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from bench_core.devices import resolve_device
from bench_core.models import build_model
from probes.fisher import fisher_batch_mean, fisher_loop, fisher_per_sample


def _timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="resnet10t")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--chunk", type=int, default=16)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    net = build_model(args.arch, 10, 0.0).to(device).eval()
    x = torch.randn(args.samples, 3, args.size, args.size, device=device)
    names = [n for n, _ in net.named_parameters() if not n.startswith("fc")]
    fisher_per_sample(net, x[:4], names, chunk=4, engine="func")  # warm-up
    ours, t_ours = _timed(lambda: fisher_per_sample(
        net, x, names, chunk=args.chunk, gen=torch.Generator(device).manual_seed(0),
        engine="func"), device)
    lay, t_lay = _timed(lambda: fisher_per_sample(
        net, x, names, chunk=args.chunk, gen=torch.Generator(device).manual_seed(0),
        engine="layers"), device)
    loop, t_loop = _timed(lambda: fisher_loop(
        net, x, names, gen=torch.Generator(device).manual_seed(0)), device)
    _, t_bm = _timed(lambda: fisher_batch_mean(
        net, x, names, batch=args.chunk, gen=torch.Generator(device).manual_seed(0)), device)
    def diff(a):
        return max(float((a[n] - loop[n]).abs().max() / (loop[n].abs().max() + 1e-30))
                   for n in names)
    n = args.samples
    print(f"device {device}; {args.arch} at {args.size}x{args.size}, {n} samples, chunk {args.chunk}")
    print(f"(1a) per-sample in batch, torch.func engine: {n / t_ours:8.1f} samples/s")
    print(f"(1b) per-sample in batch, layers engine    : {n / t_lay:8.1f} samples/s")
    print(f"(2)  per-sample, Python loop               : {n / t_loop:8.1f} samples/s")
    print(f"(3)  batch-mean (reference estimate)       : {n / t_bm:8.1f} samples/s")
    print(f"(1a)/(2) = {t_loop / t_ours:.2f}   (1b)/(2) = {t_loop / t_lay:.2f}   "
          f"(1b)/(3) = {t_bm / t_lay:.2f}")
    print(f"max relative difference to the loop: (1a) {diff(ours):.1e}, (1b) {diff(lay):.1e}")


if __name__ == "__main__":
    main(sys.argv[1:])
