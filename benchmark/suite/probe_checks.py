"""The suite's probes checked before any job runs, against the datasets and models they will
get (the plan-time checks that need the plan; :mod:`benchmark.suite.checks` holds those that
run while it is made): which datasets each probe compares, the probe network a ``suite:SOURCE``
weights option names, and each probe's own ``check``. The job graph resolves its probe jobs
with the same functions, so what is checked is what runs."""

from __future__ import annotations

from bench_core.sources import SourceModel
from benchmark.suite.plan import Plan, PretrainJob
from benchmark.suite.source_models import pretrained_models
from benchmark.suite.spec import ProbeSpec
from probes.base import PROBES, ProbeContext, card_only_record
from registry.catalog import Catalog
from registry.errors import BenchError
from registry.paths import BenchPaths


def suite_datasets(plan: Plan) -> list[str]:
    """Sources (pretrained or weight-only) and targets, in suite order, without repeats."""
    names = [s.name for s in plan.suite.sources] + [t.name for t in plan.suite.targets]
    return list(dict.fromkeys(names))


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
            models = pretrained_models(plan, paths) if cls.uses_source_models else ()
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
