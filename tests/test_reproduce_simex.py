"""The SimEx reproduction script runs end to end (small settings) and writes its outputs."""

from __future__ import annotations

import json

import pytest
import torch

from probes.reproduce_simex import main, stratified_split


def test_split_is_five_to_one_within_every_class_and_follows_the_seed():
    y = torch.arange(10).repeat_interleave(60)  # balanced: 60 per class
    train, test = stratified_split(y, seed=3)
    assert sorted(torch.cat([train, test]).tolist()) == list(range(600))  # a partition
    assert torch.bincount(y[test]).tolist() == [10] * 10  # 60 / 6 of every class
    assert torch.bincount(y[train]).tolist() == [50] * 10
    again, _ = stratified_split(y, seed=3)
    other, _ = stratified_split(y, seed=4)
    assert torch.equal(train, again) and not torch.equal(train, other)


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
