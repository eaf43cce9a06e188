"""OTDD exact vs sliced, side by side in one run (not a test; run by hand):

    python tests/bench/bench_otdd.py [--sizes 100,200,400,800,1600] [--projections 500]
                                     [--datasets digits,...] [--features pixels] [--device auto]

The embedded datasets are registered into a temporary BENCH_HOME (seconds, offline). For each
sample count n (per dataset, stratified, the probe's own subsample), the same features go
through (a) the exact OTDD (Gaussian label costs, POT's exact solver) and (b) the sliced one
(``--projections`` directions), over every pair of datasets. Prints per n: wall time of each
over all pairs (features loaded once beforehand, not timed; a small pair through both first,
as warm-up; the sliced time, the best of two runs, includes projecting each dataset), their
ratio, the growth of each per doubling of n, the Spearman rank
agreement of the off-diagonal distances, and the median ratio of sliced to exact distance.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from bench_core.devices import resolve_device
from probes.base import ProbeContext
from probes.otdd import OTDDProbe  # noqa: E402
from probes.otdd_costs import (Labelled, dataset_distance, sliced_cost_of_points,  # noqa: E402
                               sliced_points)
from registry.catalog import Catalog
from registry.paths import BenchPaths
from registry.register import AddRequest, add_dataset
from registry.store import RegistryStore

DATASETS = "digits,digits-noise,digits-rotated,digits-background,font-letters,picture-crops"


def _records(home: Path, names: list[str]) -> tuple[BenchPaths, list]:
    paths, catalog = BenchPaths(home), Catalog.load()
    for name in names:
        add_dataset(AddRequest(name), paths, catalog)
    store = RegistryStore(paths.registry_db)
    return paths, [store.get(n) for n in names]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _matrices(samples: list, probe: OTDDProbe, sliced_probe: OTDDProbe, device: torch.device
              ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Exact and sliced distance matrices over every pair, and the wall time of each."""
    k = len(samples)
    exact, sliced = np.zeros((k, k)), np.zeros((k, k))
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    _sync(device)
    start = time.perf_counter()
    for i, j in pairs:
        exact[i, j] = exact[j, i] = dataset_distance(samples[i], samples[j], probe.opts)
    _sync(device)
    t_exact = time.perf_counter() - start
    t_sliced = float("inf")
    for _ in range(2):  # best of two: the sliced run is short, so timer noise weighs more
        start = time.perf_counter()
        z = [sliced_points(s, sliced_probe.opts) for s in samples]
        dim = samples[0].x.shape[1]
        for i, j in pairs:
            sliced[i, j] = sliced[j, i] = sliced_cost_of_points(z[i], z[j], dim,
                                                                sliced_probe.opts) ** 0.5
        _sync(device)
        t_sliced = min(t_sliced, time.perf_counter() - start)
    return exact, sliced, t_exact, t_sliced


def _warm_up(samples: list, probe: OTDDProbe, sliced_probe: OTDDProbe) -> None:
    """One small pair through both, so that first-call costs (library loading, kernel
    selection) stay out of the first row."""
    small = [Labelled.of(s.x[:40], s.y[:40]) for s in samples[:2]]
    dataset_distance(small[0], small[1], probe.opts)
    dataset_distance(small[0], small[1], sliced_probe.opts)


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="100,200,400,800,1600")
    p.add_argument("--projections", type=int, default=500)
    p.add_argument("--datasets", default=DATASETS)
    p.add_argument("--features", default="pixels", choices=["pixels", "embedding"])
    p.add_argument("--arch", default="resnet10t")  # embedding: a seeded random network
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    device, names = resolve_device(args.device), args.datasets.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    extra = {"features": "embedding", "weights": "random", "arch": args.arch} \
        if args.features == "embedding" else {}
    print(f"device {device}, {torch.get_num_threads()} threads; {len(names)} datasets "
          f"({', '.join(names)}), {args.features}; sliced: {args.projections} directions")
    print(f"{'n':>6} {'pairs':>5} {'exact s':>9} {'sliced s':>9} {'exact/sliced':>12} "
          f"{'exact x/2n':>10} {'sliced x/2n':>11} {'Spearman':>8} {'sliced/exact':>12}")
    with tempfile.TemporaryDirectory() as home:
        paths, records = _records(Path(home), names)
        previous = None
        for n in sizes:
            ctx = ProbeContext(paths, device=device)
            probe = OTDDProbe({**extra, "max_samples": n}, ctx)
            sliced_probe = OTDDProbe({**extra, "max_samples": n, "method": "sliced",
                                      "n_projections": args.projections}, ctx)
            samples, _ = probe.samples(records)
            if previous is None:
                _warm_up(samples, probe, sliced_probe)
            exact, sliced, t_e, t_s = _matrices(samples, probe, sliced_probe, device)
            upper = np.triu_indices(len(names), 1)
            rho = spearmanr(exact[upper], sliced[upper])[0]
            grow = (f"{t_e / previous[0]:10.2f} {t_s / previous[1]:11.2f}" if previous
                    else f"{'':>10} {'':>11}")
            print(f"{n:6d} {len(upper[0]):5d} {t_e:9.2f} {t_s:9.3f} {t_e / t_s:12.1f} {grow} "
                  f"{rho:8.3f} {np.median(sliced[upper] / exact[upper]):12.3f}", flush=True)
            previous = (t_e, t_s)
    print("x/2n: time ratio to the previous row (per doubling of n when sizes double)")


if __name__ == "__main__":
    main(sys.argv[1:])
