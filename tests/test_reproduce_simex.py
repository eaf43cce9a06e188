"""The SimEx reproduction script runs end to end (small settings) and writes its outputs."""

from __future__ import annotations

import json

import pytest

from probes.reproduce_simex import main


@pytest.mark.slow
def test_reproduction_script_writes_table_and_figure(bench_home, tmp_path, capsys):
    out = tmp_path / "rep"
    main(["--datasets", "digits,digits-rotated,digits-noise", "--ae-epochs", "2",
          "--clf-epochs", "1", "--out", str(out)])
    res = json.loads((out / "results.json").read_text())
    assert res["datasets"] == ["digits", "digits-rotated", "digits-noise"]
    for loss in ("mse", "issim"):
        assert len(res[loss]["rho"]) == 3 and all(-1 <= r <= 1 for r in res[loss]["rho"])
        assert res[loss]["compare_seconds"] > 0
    assert len(res["retrain_accuracy"]) == 3 and res["transfer_seconds"] > 0
    assert (out / "simex_reproduction.png").is_file()
    printed = capsys.readouterr().out
    assert "Seed 003, Table 1" in printed and "rho (AEs w/ MSE)" in printed
