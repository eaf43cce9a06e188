"""The GPU check script runs its whole path on a CPU at tiny sizes, so a GPU machine that is
lent later can run it in one command (tests/bench/gpu_check.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "bench"))


@pytest.mark.slow
def test_the_gpu_check_runs_on_a_cpu_at_tiny_sizes(tmp_path, bench_home):
    import gpu_check

    doc = gpu_check.main(["--device", "cpu", "--tiny", "--out", str(tmp_path / "out")])
    s = doc["slice"]
    assert s["folds"] == 6  # scratch, imagenet and isic2018 -> chest, 2 folds each
    assert s["pretrain_images_per_s"] > 0 and s["finetune_images_per_s"] > 0
    assert s["fold_overhead"] >= 1.0  # a fold job takes at least its training steps
    g = doc["grid"]
    assert g["total_hours"] == pytest.approx(g["pretrain_hours"] + g["finetune_hours"])
    assert g["total_hours"] > 0 and g["speedup_needed"] >= 1.0
    saved = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert saved["grid"]["total_hours"] == pytest.approx(g["total_hours"])
    assert "device-hours" in (tmp_path / "out" / "gpu_check.md").read_text()
