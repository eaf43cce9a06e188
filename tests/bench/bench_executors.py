"""The same small grid through every executor, side by side in one run (not a test; by hand):

    python tests/bench/bench_executors.py [--executors local,ray,slurm-local] [--epochs 3]
                                          [--size 32] [--slots 2] [--gpus 1,2,4,8]

Each executor gets a fresh BENCH_HOME with the datasets registered beforehand (registration is
not timed) and runs the whole grid: pretraining, every fold, the pairs, no probes. Prints per
executor: wall time and its ratio to local, jobs per minute, the work (sum of the jobs' own
times where they ran) and the overhead per job, (wall - work / slots) / jobs. Ray and submitit
both get ``--slots`` parallel jobs (Ray starts with ``num_cpus=slots``, one CPU per job;
submitit's array parallelism is ``slots``), so the formula holds on any machine. Then, from the
local run's per-job times, the wall time a greedy scheduler would reach with N workers (one GPU
each), dependencies honoured: what to expect from N GPUs before engine overhead.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmark import api
from registry.paths import BenchPaths


def suite(epochs: int, size: int) -> dict:
    train = {"image_size": [size, size], "batch_size": 64, "epochs": epochs}
    return {"name": "bench-exec", "architecture": {"name": "resnet10t", "drop_rate": 0.5},
            "folds": {"n": 2, "val_fraction": 0.5, "seed": 0},
            "pretrain_defaults": train, "finetune_defaults": train,
            "sources": [{"name": "digits"}, {"name": "texture-patches"}],
            "targets": [{"name": "lfw-faces"}, {"name": "histology-dab"}], "probes": []}


def run_one(executor: str, suite_file: Path, root: Path, slots: int) -> dict:
    paths = BenchPaths(root / executor)
    plan = api.plan_suite(suite_file, paths)  # registers the datasets: not timed
    engine = {"local": {"cpus_per_job": 1}, "ray": {"cpus_per_job": 1, "num_cpus": slots},
              "slurm-local": {"cpus_per_job": 1, "array_parallelism": slots}}[executor]
    options = api.RunOptions(executor=executor, executor_options=engine, device="auto",
                             system_metrics=False)
    start = time.perf_counter()
    result = api.run_suite(plan, paths, options, with_probes=False, with_report=False)
    wall = time.perf_counter() - start
    work = sum(o.seconds for o in result.outcomes)
    n, used = len(result.outcomes), 1 if executor == "local" else slots
    return {"executor": executor, "jobs": n, "wall": wall, "work": work, "slots": used,
            "overhead": (wall - work / used) / n, "outcomes": result.outcomes, "plan": plan}


def makespan(outcomes, deps: dict[str, tuple[str, ...]], workers: int) -> float:
    """Greedy list scheduling of the measured jobs on ``workers`` (inline jobs take no worker)."""
    seconds = {o.key: o.seconds for o in outcomes}
    inline = {o.key for o in outcomes if o.kind == "pair"}
    finish: dict[str, float] = {}
    free = [0.0] * workers
    pending = [o.key for o in outcomes]
    while pending:
        ready = [k for k in pending if all(d in finish or d not in seconds for d in deps[k])]
        for key in ready:
            at = max([finish[d] for d in deps[key] if d in finish] or [0.0])
            if key in inline:
                finish[key] = at + seconds[key]
            else:
                w = min(range(workers), key=lambda i: max(free[i], at))
                finish[key] = max(free[w], at) + seconds[key]
                free[w] = finish[key]
            pending.remove(key)
    return max(finish.values())


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--executors", default="local,ray,slurm-local")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--slots", type=int, default=2, help="parallel jobs of Ray / submitit")
    p.add_argument("--gpus", default="1,2,4,8")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        suite_file = root / "bench-exec.yaml"
        suite_file.write_text(yaml.safe_dump(suite(args.epochs, args.size)))
        rows = [run_one(name, suite_file, root, args.slots) for name in args.executors.split(",")]
    base = next((r for r in rows if r["executor"] == "local"), rows[0])
    print(f"\n{base['jobs']} jobs (resnet10t, {args.size}x{args.size}, {args.epochs} epochs; "
          f"parallel slots: Ray/submitit {args.slots})\n")
    print("| executor | wall s | wall / local | jobs/min | work s | overhead per job s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['executor']} | {r['wall']:.1f} | {r['wall'] / base['wall']:.2f} | "
              f"{60 * r['jobs'] / r['wall']:.1f} | {r['work']:.1f} | {r['overhead']:.2f} |")
    deps = _deps(base["plan"])
    print("\nExpected wall time with N workers (greedy schedule of the local per-job times):\n")
    print("| workers | wall s | speed-up |")
    print("|---|---|---|")
    one = makespan(base["outcomes"], deps, 1)
    for n in (int(x) for x in args.gpus.split(",")):
        t = makespan(base["outcomes"], deps, n)
        print(f"| {n} | {t:.1f} | {one / t:.2f}x |")


def _deps(plan) -> dict[str, tuple[str, ...]]:
    """Each job's dependencies, keyed as benchmark.graph keys them."""
    from benchmark.engine.graph import fold_keys, pair_key

    out: dict[str, tuple[str, ...]] = {f"pretrain:{j.config_hash}": () for j in plan.pretrain}
    for pair in plan.pairs:
        src = (f"pretrain:{pair.init.removeprefix('pretrain:')}",) \
            if pair.init.startswith("pretrain:") else ()
        for key in fold_keys(pair):
            out[key] = src
        out[pair_key(pair)] = fold_keys(pair)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
