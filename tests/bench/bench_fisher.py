"""Task2Vec Fisher speed, side by side in one run (not a test; run by hand):

    python tests/bench/bench_fisher.py [--arch resnet18] [--size 64] [--samples 128]
                                       [--subset 64] [--draws 10000] [--device auto]

Same probe network (eval mode), same inputs, same draws for every estimator:

(A) engines, ``--samples`` distinct images, one Monte Carlo target each: our per-sample Fisher
    by the norms engine (per-filter squared gradient norms, one forward and one backward per
    chunk, targets drawn in that forward), by torch.func (vmap of grad), by the per-sample loop (one
    backward per sample), and the reference's batch-mean estimate (squared gradient of each
    batch's mean loss, batches of 64: a different quantity). samples/s and ratios.
(B) the Task2Vec setting: ``--draws`` class-balanced draws with replacement from a subset of
    ``--subset`` images, as the probe does (the reference draws 10,000). Ours counts repeated
    (image, sampled class) pairs once with their weight (the same estimate); the loop and the
    batch-mean go through every draw (the loop is timed on 200 draws). Draws/s and ratios.

Also prints the largest relative difference between the engines (per filter).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from bench_core.devices import resolve_device
from bench_core.models import build_model
from probes.fisher import (Pairs, draw_targets, fisher_batch_mean, fisher_func, fisher_loop,
                           per_filter)
from probes.fisher_norms import fisher_norms
from probes.task2vec import balanced_draws, embedding_keys


def _timed(fn, device, repeats: int = 2):
    """The result and the best of ``repeats`` wall times (the first run also warms up)."""
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return out, best


def _ours(net, x, keys, draws, seed):
    if draws is None:  # each sample once: targets drawn inside the engine's forward pass
        return fisher_norms(net, x, keys, gen=torch.Generator().manual_seed(seed)), None
    pairs = draw_targets(net, x, "montecarlo", draws, torch.Generator().manual_seed(seed))
    return fisher_norms(net, x, keys, pairs), pairs


def _worst(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max() / (b[k].abs().max() + 1e-30)) for k in b)


def engines(net, x, keys, device) -> None:
    n = len(x)
    (ours, _), t_ours = _timed(lambda: _ours(net, x, keys, None, 0), device)
    pairs = draw_targets(net, x, "montecarlo", gen=torch.Generator().manual_seed(0))  # the same
    func, t_func = _timed(lambda: per_filter(fisher_func(net, x, keys, pairs, 16)), device, 1)
    few = Pairs(pairs.index[:32], pairs.target[:32], pairs.weight[:32])
    _, t_loop = _timed(lambda: fisher_loop(net, x, keys, few), device, 1)
    _, t_bm = _timed(lambda: fisher_batch_mean(net, x, keys, None, 64,
                                               torch.Generator().manual_seed(0)), device)
    loop_rate = len(few) / t_loop
    print(f"(A) engines, {n} distinct samples")
    print(f"    per-sample, norms engine : {n / t_ours:8.1f} samples/s")
    print(f"    per-sample, torch.func   : {n / t_func:8.1f} samples/s")
    print(f"    per-sample, Python loop  : {loop_rate:8.1f} samples/s")
    print(f"    batch-mean (reference)   : {n / t_bm:8.1f} samples/s")
    print(f"    norms / batch-mean = {t_bm / t_ours:.2f}   norms / loop = "
          f"{n / t_ours / loop_rate:.1f}   norms / func = {t_func / t_ours:.2f}")
    print(f"    max relative difference, norms vs torch.func (per filter): {_worst(ours, func):.1e}")


def task2vec_setting(net, x, keys, n_classes, draws_n, device) -> None:
    labels = torch.arange(len(x)) % n_classes
    gen = torch.Generator().manual_seed(1)
    draws = balanced_draws(labels.numpy(), n_classes, draws_n, gen)
    (_, pairs), t_ours = _timed(lambda: _ours(net, x, keys, draws, 2), device, 1)
    _, t_bm = _timed(lambda: fisher_batch_mean(net, x, keys, draws, 64,
                                               torch.Generator().manual_seed(0)), device, 1)
    sample = draw_targets(net, x, "montecarlo", draws[:200], torch.Generator().manual_seed(3))
    one_each = Pairs(torch.repeat_interleave(sample.index, (sample.weight * 200).round().long()),
                     torch.repeat_interleave(sample.target, (sample.weight * 200).round().long()),
                     torch.full((200,), 1 / 200))
    _, t_loop = _timed(lambda: fisher_loop(net, x, keys, one_each), device, 1)
    rate_ours, rate_bm, rate_loop = draws_n / t_ours, draws_n / t_bm, 200 / t_loop
    print(f"(B) Task2Vec setting: {draws_n} class-balanced draws from {len(x)} images, "
          f"{n_classes} classes -> {len(pairs)} distinct (image, class) pairs")
    print(f"    per-sample, ours (pairs + norms) : {rate_ours:9.1f} draws/s ({t_ours:.1f} s)")
    print(f"    per-sample, Python loop          : {rate_loop:9.1f} draws/s")
    print(f"    batch-mean (reference)           : {rate_bm:9.1f} draws/s ({t_bm:.1f} s)")
    print(f"    ours / batch-mean = {rate_ours / rate_bm:.1f}   ours / loop = "
          f"{rate_ours / rate_loop:.1f}")


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--samples", type=int, default=128)
    p.add_argument("--subset", type=int, default=64)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--draws", type=int, default=10000)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    net = build_model(args.arch, args.classes, 0.0).to(device).eval()
    keys = embedding_keys(net, biases=False)
    x = torch.randn(max(args.samples, args.subset), 3, args.size, args.size, device=device)
    _ours(net, x[:8], keys, None, 0)  # warm-up
    print(f"device {device}; {args.arch} at {args.size}x{args.size}; Fisher of the "
          f"{len(keys)} conv/BatchNorm weights of the embedding")
    engines(net, x[:args.samples], keys, device)
    task2vec_setting(net, x[:args.subset], keys, args.classes, args.draws, device)


if __name__ == "__main__":
    main(sys.argv[1:])
