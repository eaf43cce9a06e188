"""A plan as a graph of jobs for any executor, with what is finished already resolved.

Keys: ``pretrain:<hash>``, ``fold:<hash>``, ``pair:<hash>``, ``probe:<hash>``. Finished work
(cached weights, FINISHED runs with the same config hash) goes into ``done`` and is not run.
Each unfinished pair gets its parent run here, in the driver (created, or an interrupted one
reopened: :func:`benchmark.engine.runs.open_parent`), so its fold runs nest below it wherever
they run; the driver closes it through the pair's inline job, or marks it FAILED when the pair
cannot finish. Probe jobs are resolved by the functions that check them at plan time
(:mod:`benchmark.suite.probe_checks`), so what a dry run checks is what runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench_core.hashing import config_hash
from bench_core.relocate import hashed_options
from bench_core.tracking import Tracker
from benchmark.engine.dispatch import TaskCall
from benchmark.engine.executors.base import Job
from benchmark.engine.runs import open_parent
from benchmark.engine.tasks import (FoldTask, JobEnv, PairOutcome, PairTask, PretrainTask,
                                    ProbeTask, fold_name, fold_outcome)
from benchmark.suite.plan import PairJob, Plan
from benchmark.suite.probe_checks import check_probe, probe_network, probe_records
from benchmark.suite.source_models import pretrained_models
from probes.base import PROBES
from registry.catalog import Catalog
from registry.progress import ProgressFactory, no_progress


@dataclass
class SuiteGraph:
    jobs: list[Job] = field(default_factory=list)
    done: dict[str, Any] = field(default_factory=dict)
    parents: dict[str, str] = field(default_factory=dict)  # pair key -> open parent run id

    def add(self, job: Job) -> None:
        self.jobs.append(job)


def build_graph(plan: Plan, env: JobEnv, tracker: Tracker, catalog: Catalog, *,
                accelerated: bool, progress: ProgressFactory = no_progress,
                grid: bool = True, probes: bool = True) -> SuiteGraph:
    """The suite's jobs: pretraining, every fold of every pair and the pairs' closing
    (``grid``), and the probes (``probes``). Weights trained earlier count as done either way."""
    g = SuiteGraph()
    gpus = 1.0 if accelerated else 0.0
    for job in plan.pretrain:
        key, path = f"pretrain:{job.config_hash}", env.paths.pretrained_weights(job.config_hash)
        if path.is_file():
            g.done[key] = str(path)
        elif grid:
            task = PretrainTask(job, plan.records[job.source])
            g.add(Job(key, f"pretrain {job.source}", "pretrain", TaskCall(env, task, progress),
                      gpus=gpus))
    for pair in plan.pairs if grid else ():
        _add_pair(g, plan, pair, env, tracker, gpus, progress)
    if probes:
        _add_probes(g, plan, env, tracker, catalog, gpus, progress)
    return g


def pair_key(pair: PairJob) -> str:
    return f"pair:{pair.config_hash}"


def fold_keys(pair: PairJob) -> tuple[str, ...]:
    return tuple(f"fold:{h}" for h in pair.fold_hashes)


def _baseline(plan: Plan, pair: PairJob) -> PairJob | None:
    """The pair whose fold AUCs are AUC(T) of Eq. 1 for ``pair`` (None: no Eq. 1)."""
    if pair.kind == "scratch":
        return None
    for other in plan.pairs:
        if other.target != pair.target or other is pair:
            continue
        if plan.suite.baseline == "scratch" and other.kind == "scratch":
            return other
        if plan.suite.baseline == "self" and other.kind == "transfer" \
                and other.source == other.target:
            return other
    return None


def _scratch(plan: Plan, pair: PairJob) -> PairJob | None:
    return next((p for p in plan.pairs if p.target == pair.target and p.kind == "scratch"), None)


def _add_pair(g: SuiteGraph, plan: Plan, pair: PairJob, env: JobEnv, tracker: Tracker,
              gpus: float, progress: ProgressFactory) -> None:
    finished = tracker.finished(pair.config_hash)
    if finished is not None:
        folds = _finished_folds(tracker, finished.info.run_id, pair.n_folds)
        g.done[pair_key(pair)] = PairOutcome(job=pair, folds=tuple(folds.values()),
                                             run_id=finished.info.run_id, reused=True,
                                             metrics=dict(finished.data.metrics))
        for i, key in enumerate(fold_keys(pair)):
            if i in folds:
                g.done[key] = folds[i]
        return
    parent = open_parent(plan, pair, env, tracker)
    g.parents[pair_key(pair)] = parent
    source_key = None
    if pair.init.startswith("pretrain:"):
        source_key = f"pretrain:{pair.init.removeprefix('pretrain:')}"
    for i, key in enumerate(fold_keys(pair)):
        fold, repeat = pair.slot(i)
        done = tracker.finished(pair.fold_hashes[i])
        if done is not None:
            g.done[key] = fold_outcome(fold, done.data.metrics, done.info.run_id, repeat)
            continue
        task = FoldTask(pair=pair, fold=i, record=plan.records[pair.target],
                        parent_run_id=parent, source_weights=source_key,
                        shift_records={s.dataset: plan.records[s.dataset]
                                       for s in pair.shifts if s.dataset})
        g.add(Job(key, f"{pair.label} {fold_name(pair, fold, repeat)}", "fold",
                  TaskCall(env, task, progress),
                  deps=(source_key,) if source_key else (), gpus=gpus))
    base, scratch = _baseline(plan, pair), _scratch(plan, pair)
    task = PairTask(pair=pair, parent_run_id=parent, fold_keys=fold_keys(pair),
                    baseline_keys=fold_keys(base) if base else (),
                    scratch_keys=fold_keys(scratch) if scratch and pair.kind == "freeze" else ())
    deps = tuple(dict.fromkeys(task.fold_keys + task.baseline_keys + task.scratch_keys))
    g.add(Job(pair_key(pair), pair.label, "pair", TaskCall(env, task), deps=deps, inline=True))


def _finished_folds(tracker: Tracker, parent_id: str, n_folds: int) -> dict[int, Any]:
    """The finished fold runs below a pair's parent run, keyed by their slot."""
    children = tracker.client.search_runs(
        [tracker.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}' and "
        "attributes.status = 'FINISHED'", max_results=5000)
    out = {}
    for r in children:
        fold, repeat = int(r.data.tags["fold"]), int(r.data.tags.get("repeat", 0))
        out[fold + repeat * n_folds] = fold_outcome(fold, r.data.metrics, r.info.run_id, repeat)
    return dict(sorted(out.items()))


def _add_probes(g: SuiteGraph, plan: Plan, env: JobEnv, tracker: Tracker, catalog: Catalog,
                gpus: float, progress: ProgressFactory) -> None:
    """A job per probe of the suite (done where a finished run exists). Probes that score the
    suite's source models wait for their pretraining."""
    for spec in plan.suite.probes:
        cls = PROBES.get(spec.method)
        records = probe_records(plan, cls, catalog)
        if len(records) < 2:
            continue
        spec, network = probe_network(plan, spec, env.paths) \
            if cls.wants_probe_network(spec.options) else (spec, None)
        h = config_hash({"probe": spec.method, "options": hashed_options(env.paths, spec.options),
                         "data": [(r.name, r.fingerprint) for r in records],
                         **({"version": cls.version} if cls.version > 1 else {})})
        key = f"probe:{h}"
        done = tracker.finished(h)
        if done is not None:
            g.done[key] = done.info.run_id
            continue
        models = pretrained_models(plan, env.paths) if cls.uses_source_models else ()
        check_probe(cls, spec, records, models, env.paths)
        deps = tuple(f"pretrain:{j.config_hash}" for j in plan.pretrain) if models else ()
        deps += (f"pretrain:{network.config_hash}",) if network else ()
        task = ProbeTask(spec, tuple(records), h, models)
        g.add(Job(key, f"probe {spec.method}", "probe", TaskCall(env, task, progress),
                  deps=deps, gpus=gpus if cls.needs_data else 0.0))
