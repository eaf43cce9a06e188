"""The SimEx reproduction: its split, balance and early stop, the ``--paper`` preset (options,
refusal, estimate) and its path on tiny data in the real sets' IDX and amat formats."""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from probes import reproduce_simex as rs
from probes.reproduce_simex import (DEFAULT, PAPER, PAPER_DATASETS, Protocol, balanced, main,
                                    resolve, stratified_split)
from probes.simex import queries_per_reference
from registry.catalog import Catalog
from registry.paths import BenchPaths
from registry.register import AddRequest, add_dataset


def _resolve(argv: list[str]) -> Protocol:
    return resolve(rs._parser().parse_args(argv))


def test_split_is_five_to_one_within_every_class_and_follows_the_seed():
    y = torch.arange(10).repeat_interleave(60)  # balanced: 60 per class
    train, test = stratified_split(y, seed=3)
    assert sorted(torch.cat([train, test]).tolist()) == list(range(600))  # a partition
    assert torch.bincount(y[test]).tolist() == [10] * 10  # 60 / 6 of every class
    assert torch.bincount(y[train]).tolist() == [50] * 10
    again, _ = stratified_split(y, seed=3)
    other, _ = stratified_split(y, seed=4)
    assert torch.equal(train, again) and not torch.equal(train, other)


def test_balance_keeps_a_balanced_set_whole_and_cuts_the_others_per_class():
    even = torch.arange(3).repeat_interleave(4)
    assert balanced(even, 4, seed=0).tolist() == list(range(12))  # all, in their order
    uneven = torch.tensor([0] * 7 + [1] * 3 + [2] * 5)
    keep = balanced(uneven, 3, seed=0)
    assert torch.bincount(uneven[keep]).tolist() == [3, 3, 3]
    assert keep.tolist() == sorted(keep.tolist())


def test_the_default_fashion_stand_in_shares_no_picture_with_the_backgrounds():
    assert DEFAULT[-1] == "heldout-picture-crops" and "picture-crops" not in DEFAULT


def _unique_sets(k: int, n: int):
    """k datasets of n images, image i of set s filled with the value s * n + i (an id)."""
    ids = torch.arange(k * n, dtype=torch.float32).reshape(k, n)
    return [(ids[s].view(n, 1, 1, 1).expand(n, 1, 32, 32).clone(), torch.arange(n) % 2)
            for s in range(k)]


def test_early_stop_watches_the_scored_ordering_on_training_samples_only(monkeypatch):
    sets = _unique_sets(3, 60)
    train = [(x[:48], y[:48]) for x, y in sets]
    test = [(x[48:], y[48:]) for x, y in sets]
    seen = {}

    def fake_train_fleet(refs, watch, opts, device, ordering, optimizer):
        seen.update(watch=watch, ordering=ordering, optimizer=optimizer, lr=opts.lr)
        fleet = SimpleNamespace()
        return fleet, {"epochs": 1, "stable_from": 1, "train_seconds": 0.0}

    monkeypatch.setattr(rs, "_splits", lambda *a: (train, test, [2, 2, 2]))
    monkeypatch.setattr(rs, "retrain_matrix", lambda *a: (np.eye(3), 1.0, [1]))
    monkeypatch.setattr(rs, "train_fleet", fake_train_fleet)
    monkeypatch.setattr(rs, "delta_matrix", lambda fleet, sets, loss: np.arange(9.0).reshape(3, 3))
    records = [SimpleNamespace(name=f"d{i}") for i in range(3)]
    rs.run(records, Protocol(watch_per_set=20), seed=0, device=torch.device("cpu"))
    assert seen["ordering"] is queries_per_reference  # the ordering the rho scores
    for k, watched in enumerate(seen["watch"]):
        ids = set(watched[:, 0, 0, 0].tolist())
        assert len(ids) == 20 and ids <= set(train[k][0][:, 0, 0, 0].tolist())
        assert not ids & set(test[k][0][:, 0, 0, 0].tolist())  # never the test split


def test_paper_preset_and_its_overrides():
    assert _resolve([]) == Protocol()
    paper = _resolve(["--paper"])
    assert paper == PAPER and paper.datasets == PAPER_DATASETS
    assert (paper.ae_optimizer, paper.ae_lr, paper.ae_epochs) == ("rmsprop", 2e-4, 50)
    assert paper.clf_converge and paper.clf_optimizer == "rmsprop"
    assert paper.patience * paper.check_every > paper.ae_epochs  # all 50 epochs run
    cut = _resolve(["--paper", "--ae-epochs", "3", "--seeds", "0,2", "--device", "cpu"])
    assert (cut.ae_epochs, cut.seeds, cut.device, cut.ae_lr) == (3, (0, 2), "cpu", 2e-4)
    catalog = Catalog.load()
    loaders = [catalog.get(n).format.loader for n in PAPER_DATASETS]
    assert loaders == ["idx", "idx", "amat", "amat", "idx"]


def test_paper_preset_refuses_unregistered_sets_and_says_how_to_register(bench_home, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--paper"])
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: The SimEx reproduction needs mnist, emnist-letters, "
                          "mnist-rotated, mnist-background-image, fashion-mnist, not registered")
    assert ("Register them first: `bench add-dataset mnist` (downloads it) or `bench "
            "add-dataset mnist --path DIR` (DIR holding the four IDX files);") in err
    assert "`bench add-dataset mnist-rotated --path DIR` (DIR holding the .amat files)" in err


def test_estimate_counts_the_protocols_steps():
    steps = {"mse": 0.1, "issim": 0.2, "clf": 0.01, "head": 0.005}
    fixed = Protocol(ae_epochs=10, clf_epochs=4, seeds=(0, 1))
    low, high = rs.estimate_seconds([640, 640], fixed, steps)
    ae = 10 * (640 // 64 + 1) * 0.3
    clf = 4 * 20 * (0.01 + 2 * 0.005)  # 20 batches over both sets; 2 retrainings per batch
    assert low == high == pytest.approx(2 * (ae + clf))
    low, high = rs.estimate_seconds([640, 640], PAPER, steps)  # converging: 7-14 (+3) epochs
    assert (high - low) == pytest.approx(7 * 20 * (0.01 + 2 * 0.005))


def _idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


def _images(labels: np.ndarray, shift: int, rng) -> np.ndarray:
    """Noise with a bright bar whose row follows the label (learnable), shifted per dataset."""
    out = rng.integers(0, 80, (len(labels), 28, 28))
    for i, label in enumerate(labels):
        out[i, (2 * label + shift) % 26: (2 * label + shift) % 26 + 3, 4:24] = 255
    return out


def _write_real_formats(root: Path, per_class: int, rng) -> dict[str, Path]:
    """The five paper sets as tiny copies in their real formats and file names (from the
    cards): IDX for MNIST, Fashion-MNIST and EMNIST letters (26 classes, labels 1-26, stored
    transposed), amat (784 pixels in [0, 1] then the label) for the Larochelle variants."""
    catalog, roots = Catalog.load(), {}
    for shift, name in enumerate(PAPER_DATASETS):
        card, roots[name] = catalog.get(name), root / name
        n_classes = len(card.classes)
        labels = np.tile(np.arange(n_classes), per_class)
        halves = np.array_split(rng.permutation(len(labels)), 2)
        if card.format.loader == "idx":
            offset = card.format.options.get("label_offset", 0)
            for (images, targets), half in zip(card.format.options["pairs"], halves):
                _idx(roots[name] / images, _images(labels[half], 5 * shift, rng))
                _idx(roots[name] / targets, labels[half] + offset)
        else:
            for file, half in zip(card.format.options["files"], halves):
                pixels = _images(labels[half], 5 * shift, rng).reshape(len(half), 784) / 255
                rows = np.column_stack([pixels.round(4), labels[half]])
                roots[name].mkdir(parents=True, exist_ok=True)
                np.savetxt(roots[name] / file, rows, fmt="%.4g")
    return roots


@pytest.mark.slow
def test_paper_path_runs_on_tiny_data_in_the_real_formats(bench_home, tmp_path, capsys,
                                                          monkeypatch):
    catalog = Catalog.load()
    for name, root in _write_real_formats(tmp_path, 12, np.random.default_rng(0)).items():
        add_dataset(AddRequest(name, path=root), BenchPaths(bench_home), catalog)
    timed = {"mse": 0.05, "issim": 0.1, "clf": 0.002, "head": 0.001}  # steps are timed above
    monkeypatch.setattr(rs, "step_seconds", lambda k, proto, device: timed)
    out = tmp_path / "paper"
    main(["--paper", "--ae-epochs", "1", "--clf-epochs", "3", "--device", "cpu",
          "--out", str(out)])
    res = json.loads((out / "results.json").read_text())
    assert res["datasets"] == list(PAPER_DATASETS)
    assert res["protocol"]["ae_optimizer"] == "rmsprop" and res["protocol"]["ae_lr"] == 2e-4
    run = res["runs"][0]
    assert run["train_per_set"] == [100] * 5 and run["test_per_set"] == [20] * 5  # A-J only
    assert all(1 <= e <= 3 for e in run["clf_epochs"]) and len(run["clf_epochs"]) == 5 + 25
    assert all(-1 <= r <= 1 for r in res["mse"]["rho"] + res["issim"]["rho"])  # none NaN
    printed = capsys.readouterr().out
    assert "Estimated training time (1 seed(s), 5 datasets of 12 images per class" in printed
    assert "GPU about" in printed and "Ours -> paper: mnist -> MNIST" in printed


@pytest.mark.slow
def test_step_seconds_times_each_kind_of_step():
    steps = rs.step_seconds(2, PAPER, torch.device("cpu"))
    assert set(steps) == {"mse", "issim", "clf", "head"} and min(steps.values()) > 0


@pytest.mark.slow
def test_reproduction_script_writes_table_and_figure(bench_home, tmp_path, capsys):
    out = tmp_path / "rep"
    main(["--datasets", "digits,digits-rotated,digits-noise", "--ae-epochs", "2",
          "--clf-epochs", "1", "--seeds", "0,1", "--out", str(out)])
    res = json.loads((out / "results.json").read_text())
    assert res["datasets"] == ["digits", "digits-rotated", "digits-noise"]
    assert res["seeds"] == [0, 1] and len(res["runs"]) == 2
    for loss in ("mse", "issim"):
        per_seed = [r[loss]["rho"] for r in res["runs"]]
        assert len(res[loss]["rho"]) == 3 and all(-1 <= r <= 1 for r in res[loss]["rho"])
        for b in range(3):  # the reported figure is the mean of the seeds' rho
            assert res[loss]["rho"][b] == pytest.approx((per_seed[0][b] + per_seed[1][b]) / 2)
            assert res[loss]["rho_min"][b] == min(per_seed[0][b], per_seed[1][b])
        assert res[loss]["compare_seconds"] > 0
    assert len(res["runs"][0]["retrain_accuracy"]) == 3 and res["transfer_seconds"] > 0
    assert (out / "simex_reproduction.png").is_file()
    printed = capsys.readouterr().out
    assert "Seed 003, Table 1" in printed and "rho (AEs w/ MSE)" in printed


def test_protocol_is_what_the_cli_resolves_into():
    args = argparse.Namespace(paper=False, datasets="a, b", seeds=None, ae_epochs=None,
                              clf_epochs=2, patience=None, device=None)
    assert resolve(args) == Protocol(datasets=("a", "b"), clf_epochs=2)
