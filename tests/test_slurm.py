"""The Slurm executor against a recording ``sbatch``: ready jobs go out as job arrays that Slurm
throttles, card-only probes ask for no GPU, and a run without GPUs says it trains on CPU."""

from __future__ import annotations

import os
from pathlib import Path


def _record_sbatch(tmp_path: Path, monkeypatch) -> Path:
    """An sbatch on PATH that keeps each submission script and answers as Slurm does (and
    an srun that must not be called: submitit looks for it)."""
    bin_dir, seen = tmp_path / "bin", tmp_path / "sbatch-scripts"
    bin_dir.mkdir()
    seen.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\necho 'srun must not be called' >&2\nexit 3\n")
    (bin_dir / "srun").chmod(0o755)
    (bin_dir / "sbatch").write_text(
        "#!/bin/sh\n"
        f'n=$(ls "{seen}" | wc -l)\n'
        f'cp "$1" "{seen}/$n.sh"\n'
        'echo "Submitted batch job $((1000 + n))"\n')
    (bin_dir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return seen


def test_slurm_submits_the_ready_jobs_as_arrays_slurm_throttles(tmp_path, monkeypatch):
    """Five ready jobs, three wanting a GPU: two sbatch calls, each one array whose
    ``%P`` is --array-parallelism; the card-only ones ask for no GPU. The driver itself keeps
    no cap for Slurm (only for slurm-local, whose executor has no arrays)."""
    from benchmark.engine.executors import ExecutorContext, make_executor
    from benchmark.engine.executors.base import Job
    from benchmark.engine.executors.slurm import _SubmititEngine

    seen = _record_sbatch(tmp_path, monkeypatch)
    ex = make_executor("slurm", ExecutorContext(folder=tmp_path / "submitit"), partition="gpu",
                       gpus_per_job=1, array_parallelism=2)
    local = make_executor("slurm-local", ExecutorContext(folder=tmp_path / "local"),
                          array_parallelism=2)
    assert (ex.slots, local.slots) == (None, 2)
    jobs = [Job(f"k{i}", f"job {i}", "fold" if i < 3 else "probe", call=len,
                gpus=1.0 if i < 3 else 0.0) for i in range(5)]
    handles = _SubmititEngine(ex).submit([(j, []) for j in jobs])
    assert [h.job_id for h in handles] == ["1000_0", "1000_1", "1000_2", "1001_0", "1001_1"]
    gpu, cpu = (s.read_text() for s in sorted(seen.iterdir()))
    assert "#SBATCH --array=0-2%2" in gpu and "#SBATCH --gpus-per-node=1" in gpu
    assert "#SBATCH --array=0-1%2" in cpu and "gpus" not in cpu
    assert "#SBATCH --partition=gpu" in gpu and "#SBATCH --partition=gpu" in cpu


def test_slurm_without_gpus_warns_that_jobs_train_on_cpu(tmp_path, monkeypatch, caplog):
    import logging

    from benchmark.engine.executors import ExecutorContext, make_executor
    from benchmark.engine.executors.base import Job

    _record_sbatch(tmp_path, monkeypatch)
    ex = make_executor("slurm", ExecutorContext(folder=tmp_path / "submitit"))
    with caplog.at_level(logging.WARNING, logger="benchmark.engine.executors.slurm"):
        ex._warn_without_gpus([Job("p", "probe", "probe", call=len)])
        assert not caplog.records  # nothing wanted a GPU: no warning
        ex._warn_without_gpus([Job("f", "fold", "fold", call=len, gpus=1.0)])
    (record,) = caplog.records
    assert "without --gpus-per-job" in record.message and "train on CPU" in record.message
