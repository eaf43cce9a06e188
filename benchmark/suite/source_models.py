"""Finding the source models a probe scores, in one place for ``bench probe``, a suite's probe
jobs and the zoo of ``bench recommend``: the models a suite's plan pretrains, those of a
suite present in BENCH_HOME/models, and published models or bare weights files named by an
estimator's ``models`` option. Nothing here loads weights; a ``models:/`` name is resolved
through MLflow when it is asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench_core.sources import SourceModel
from bench_core.weights import source_model
from benchmark.suite.files import DEFAULT_SUITE, resolve_suite
from benchmark.suite.plan import Plan, make_plan
from probes.base import ProbeError
from registry.errors import BenchError
from registry.paths import BenchPaths
from registry.store import RegistryStore


def pretrained_models(plan: Plan, paths: BenchPaths) -> tuple[SourceModel, ...]:
    """The models the suite pretrains (in plan order), as probes see them."""
    size = tuple(plan.suite.finetune_defaults.image_size)
    return tuple(SourceModel(j.source, plan.suite.architecture.name,
                             str(paths.pretrained_weights(j.config_hash)), size)
                 for j in plan.pretrain)


def suite_models(suite_name: str, paths: BenchPaths) -> dict[str, SourceModel]:
    """The pretrained models of ``suite_name`` present in BENCH_HOME/models, by source."""
    hint = f"Run `bench run --suite {suite_name}` first."
    missing = ProbeError(f"Suite '{suite_name}' has no pretrained source models in "
                         f"{paths.models_dir}.", hint)
    try:
        plan = make_plan(resolve_suite(suite_name), RegistryStore(paths.registry_db))
    except BenchError:  # its datasets are not even registered: the suite never ran here
        raise missing from None
    found = {m.name: m for m in pretrained_models(plan, paths) if Path(m.weights).is_file()}
    if not found:
        raise missing
    return found


def probe_models(options: dict[str, Any], paths: BenchPaths, tracking_uri: str | None
                 ) -> dict[str, SourceModel]:
    """The models an estimator probe scores: published ones (``models`` option), each standing
    for the dataset it was pretrained on, or those the ``suite`` option's suite pretrained. A
    bare weights file (``SOURCE=PATH.safetensors``) takes that suite's architecture and
    pretraining image size. The probe's matrix has one row per dataset, so two models of one
    source cannot both be scored in one run (``bench recommend`` ranks them by name)."""
    if not options.get("models"):
        return suite_models(options.get("suite", DEFAULT_SUITE), paths)
    try:
        suite = resolve_suite(options.get("suite", DEFAULT_SUITE))
        arch, size = suite.architecture.name, tuple(suite.pretrain_defaults.image_size)
    except BenchError:  # only a bare file needs them, and then says so
        arch, size = None, None
    found: dict[str, Any] = {}
    for spec in options["models"]:
        model = source_model(spec, paths.registry_models_dir, tracking_uri, size, arch)
        if model.name in found:
            raise ProbeError(f"Two models stand for '{model.name}' ({found[model.name][0]} and "
                             f"{spec}); an estimator probe scores one model per source dataset.",
                             "Score them in separate runs, or rank them with `bench recommend "
                             "--target T`.")
        found[model.name] = (spec, model)
    return {name: model for name, (_, model) in found.items()}
