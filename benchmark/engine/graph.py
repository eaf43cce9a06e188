"""A plan as a graph of jobs for any executor, with what is finished already resolved.

Keys: ``pretrain:<hash>``, ``fold:<hash>``, ``pair:<hash>``, ``probe:<hash>``. Finished work
(cached weights, FINISHED runs with the same config hash) goes into ``done`` and is not run.
Each unfinished pair gets its parent run here, in the driver (created, or an interrupted one
reopened), so its fold runs nest below it wherever they run; the driver closes it through the
pair's inline job, or marks it FAILED when the pair cannot finish.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlflow.entities import Param

from bench_core.hashing import config_hash
from bench_core.relocate import hashed_options
from bench_core.sources import SourceModel
from bench_core.tracking import Tracker
from benchmark.engine.dispatch import TaskCall
from benchmark.engine.executors.base import Job
from benchmark.engine.runs import log_dataset_input
from benchmark.engine.tasks import (FoldTask, JobEnv, PairOutcome, PairTask, PretrainTask,
                                    ProbeTask, fold_name, fold_outcome, settings_params)
from benchmark.suite.plan import PairJob, Plan, PretrainJob
from benchmark.suite.spec import ProbeSpec
from probes.base import ProbeContext, card_only_record
from probes.registry import PROBES
from registry.catalog import Catalog
from registry.errors import BenchError
from registry.paths import BenchPaths
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


def open_parent(plan: Plan, pair: PairJob, env: JobEnv, tracker: Tracker) -> str:
    """The pair's parent run: an interrupted one reopened, else a new one with its params,
    config and dataset input. It stays RUNNING until the pair's job closes it."""
    tags = {**tracker.base_tags(), **env.tags(kind=pair.kind, level="pair", source=pair.source,
                                               target=pair.target, config_hash=pair.config_hash,
                                               **({"k": str(pair.k)} if pair.k is not None else {}))}
    old = tracker.reopenable(pair.config_hash)
    if old is not None:
        tracker.client.update_run(old.info.run_id, status="RUNNING")
        for key, value in tags.items():
            tracker.client.set_tag(old.info.run_id, key, value)
        return old.info.run_id
    run = tracker.client.create_run(tracker.experiment_id, run_name=pair.label, tags=tags)
    run_id = run.info.run_id
    params = pair_params(plan, pair)
    tracker.client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
    tracker.client.log_text(run_id, env.suite_yaml, "config/suite.yaml")
    log_dataset_input(tracker, run_id, plan.records[pair.target], "finetune")
    return run_id


def full_params(plan: Plan, pair: PairJob) -> dict[str, str]:
    """Every setting of a pair, flattened (``train.optimizer.lr``, ...): its fold runs'."""
    return settings_params(plan.suite.architecture, plan.suite.folds, plan.suite.baseline, pair)


def pair_params(plan: Plan, pair: PairJob) -> dict[str, str]:
    """A parent run's params: what tells pairs apart in MLflow's compare view (source, target,
    kind, k, arch, config hash) and any other setting that differs between the suite's pairs;
    the settings all pairs share stay on the fold runs and in the config artifact."""
    others = [full_params(plan, p) for p in plan.pairs]
    mine = full_params(plan, pair)
    keys = sorted({k for params in others for k in params})
    differ = [k for k in keys if len({params.get(k) for params in others}) > 1
              and k not in ("source", "target", "k", "init") and k in mine]
    out = {"source": pair.source, "target": pair.target, "kind": pair.kind,
           "arch": plan.suite.architecture.name, "config_hash": pair.config_hash}
    if pair.k is not None:
        out["k"] = str(pair.k)
    return out | {k: mine[k] for k in differ}


def suite_datasets(plan: Plan) -> list[str]:
    """Sources (pretrained or weight-only) and targets, in suite order, without repeats."""
    names = [s.name for s in plan.suite.sources] + [t.name for t in plan.suite.targets]
    return list(dict.fromkeys(names))


def source_models(plan: Plan, paths: BenchPaths) -> tuple[SourceModel, ...]:
    """The models the suite pretrains (in plan order), as probes see them."""
    size = tuple(plan.suite.finetune_defaults.image_size)
    return tuple(SourceModel(j.source, plan.suite.architecture.name,
                             str(paths.pretrained_weights(j.config_hash)), size)
                 for j in plan.pretrain)


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
        models = source_models(plan, env.paths) if cls.uses_source_models else ()
        check_probe(cls, spec, records, models, env.paths)
        deps = tuple(f"pretrain:{j.config_hash}" for j in plan.pretrain) if models else ()
        deps += (f"pretrain:{network.config_hash}",) if network else ()
        task = ProbeTask(spec, tuple(records), h, models)
        g.add(Job(key, f"probe {spec.method}", "probe", TaskCall(env, task, progress),
                  deps=deps, gpus=gpus if cls.needs_data else 0.0))


def probe_records(plan: Plan, cls: type, catalog: Catalog) -> list:
    """The datasets a probe of the suite compares: the registered ones, and the catalog cards
    of weight-only sources for probes that need no data."""
    records = []
    for name in suite_datasets(plan):
        if name in plan.records:
            records.append(plan.records[name])
        elif not cls.needs_data and name in catalog.cards:
            records.append(card_only_record(catalog.cards[name].model_dump(mode="json")))
    return records


def check_probe(cls: type, spec: ProbeSpec, records: list, models: tuple[SourceModel, ...],
                paths: BenchPaths) -> None:
    """What the probe would fail on with these datasets, now (before any job runs)."""
    context = ProbeContext(paths, source_models={m.name: m for m in models})
    cls(dict(spec.options), context).check(records)


def check_probes(plan: Plan, paths: BenchPaths, catalog: Catalog) -> None:
    """Every probe of the suite checked against its datasets (a dry run does this too)."""
    for spec in plan.suite.probes:
        cls = PROBES.get(spec.method)
        records = probe_records(plan, cls, catalog)
        if len(records) >= 2:
            if cls.wants_probe_network(spec.options):
                spec, _ = probe_network(plan, spec, paths)  # its network is in the suite
            models = source_models(plan, paths) if cls.uses_source_models else ()
            check_probe(cls, spec, records, models, paths)


def probe_network(plan: Plan, spec: ProbeSpec, paths: BenchPaths
                  ) -> tuple[ProbeSpec, PretrainJob | None]:
    """``spec`` with its ``weights`` option resolved: ``suite:SOURCE`` (the default when no
    weights are given: the suite's first pretrained source) becomes the file of that source's
    pretrained network, or a weight-only source's own weights (``suite:imagenet``: the file
    given to --imagenet-weights), with the suite's architecture; any other spec stays as
    given."""
    weights = spec.options.get("weights") or "suite:" + (plan.pretrain[0].source
                                                          if plan.pretrain else "")
    if not weights.startswith("suite:"):
        return spec, None
    name = weights.removeprefix("suite:")
    given = next((s.weights for s in plan.suite.sources if s.name == name and s.weights), None)
    if given is not None:
        return ProbeSpec(method=spec.method, options={**spec.options, "weights": given,
                                                      "arch": plan.suite.architecture.name}), None
    job = next((j for j in plan.pretrain if j.source == name), None)
    if job is None:
        raise BenchError(
            f"Probe '{spec.method}' needs a probe network, and the suite pretrains "
            + (f"no source '{name}'." if name else "no source to use."),
            f"Set probes.{spec.method}.options.weights to suite:SOURCE (one of "
            f"{', '.join(j.source for j in plan.pretrain) or 'none'}), to published weights "
            "(models:/NAME@ALIAS, file:PATH), or to 'random' to ask for a random network.")
    options = {**spec.options, "weights": f"file:{paths.pretrained_weights(job.config_hash)}",
               "arch": plan.suite.architecture.name}
    return ProbeSpec(method=spec.method, options=options), job
