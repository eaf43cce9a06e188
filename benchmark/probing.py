"""The suite's probes, run over its datasets after the transfer grid and logged to MLflow in
the suite's experiment (``level=probe``), skipped when a finished run with the same config hash
(method, options, dataset fingerprints) exists."""

from __future__ import annotations

import logging

from benchmark.config import config_hash
from benchmark.plan import Plan
from benchmark.runner import RunContext
from probes.base import ProbeContext, card_only_record
from probes.logging import log_probe
from probes.registry import PROBES
from registry.catalog import Catalog

log = logging.getLogger(__name__)


def suite_datasets(plan: Plan) -> list[str]:
    """Sources (pretrained or weight-only) and targets, in suite order, without repeats."""
    names = [s.name for s in plan.suite.sources] + [t.name for t in plan.suite.targets]
    return list(dict.fromkeys(names))


def run_probes(plan: Plan, ctx: RunContext, catalog: Catalog) -> list[str]:
    """Compute and log every probe of the suite; return the methods that ran or were reused."""
    done = []
    for spec in plan.suite.probes:
        probe = PROBES.get(spec.method)(dict(spec.options),
                                        ProbeContext(ctx.paths, ctx.device, ctx.progress))
        records = []
        for name in suite_datasets(plan):
            if name in plan.records:
                records.append(plan.records[name])
            elif not probe.needs_data and name in catalog.cards:
                records.append(card_only_record(catalog.cards[name].model_dump(mode="json")))
        if len(records) < 2:
            log.warning("probe %s: fewer than two datasets it can use; skipped", spec.method)
            continue
        h = config_hash({"probe": spec.method, "options": spec.options,
                         "data": [(r.name, r.fingerprint) for r in records]})
        if ctx.tracker.finished(h) is None:
            ctx.tracker.fail_stale(h)
            result = probe.compute(records)
            log_probe(ctx.tracker, result, dict(spec.options),
                      {"suite": plan.suite.name, "config_hash": h})
        else:
            log.info("probe %s: finished earlier, skipped", spec.method)
        done.append(spec.method)
    return done
