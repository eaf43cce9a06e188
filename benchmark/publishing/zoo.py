"""The published models as a zoo: a suite's pretrained models and every published model,
scored by a transferability estimator on a target's data (``bench recommend``'s second
table)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench_core.devices import resolve_device
from bench_core.sources import SourceModel
from bench_core.stores import store_uri
from bench_core.weights import source_model
from bench_core.weights_check import parameter_count
from benchmark.publishing.publish import published_models
from benchmark.suite.files import DEFAULT_SUITE, resolve_suite
from benchmark.suite.source_models import suite_models
from probes.base import PROBES, ProbeContext
from registry.errors import BenchError
from registry.paths import BenchPaths
from registry.store import RegistryStore
from registry.views import dataset_sizes


def rank_models(target: str, paths: BenchPaths, *, suite: str = DEFAULT_SUITE,
                estimator: str = "logme", tracking_uri: str | None = None,
                device: str = "auto", include_self: bool = False) -> pd.DataFrame | None:
    """The suite's pretrained models and every published model, scored by ``estimator`` on
    ``target``'s data (best first), each with its parameter count and the size of the dataset
    it was pretrained on (the static ranking of Singh et al. 2026 by either, for comparison);
    None when there is no published model or the target is not registered."""
    check_estimator(estimator)
    published = published_models(paths, tracking_uri)
    record = RegistryStore(paths.registry_db).get(target)
    if not published or record is None:
        return None
    candidates, rows = {}, {}
    try:
        for src, m in suite_models(suite, paths).items():
            if src == target and not include_self:
                continue  # as the ranking of sources: never the target's own model
            candidates[src] = m
            rows[src] = {"model": src, "kind": f"suite {resolve_suite(suite).name}",
                         "source": src}
    except BenchError:
        pass  # the suite has no pretrained models here: published ones only
    uri = store_uri(paths, tracking_uri)
    for p in published:
        candidates[p["name"]] = source_model(p["uri"], paths.registry_models_dir, uri)
        rows[p["name"]] = {"model": p["uri"], "kind": "published", "source": p["source"]}
    probe = PROBES.get(estimator)({}, ProbeContext(paths, resolve_device(device),
                                                   tracking_uri=uri))
    scores = probe.score_models(candidates, record)
    sizes = dataset_sizes(paths)
    frame = pd.DataFrame([{**rows[k], estimator: v, **_size(candidates[k], rows[k], sizes)}
                          for k, v in scores.items()])
    return frame.sort_values(estimator, ascending=False).reset_index(drop=True)


def _size(model: SourceModel, row: dict, sizes: dict[str, int]) -> dict[str, int | None]:
    """A candidate's parameter count (from its weights file's header) and its pretraining
    set's size in images (None when that dataset is unknown here)."""
    return {"parameters": parameter_count(Path(model.weights), model.arch),
            "pretraining_images": sizes.get(row["source"])}


def check_estimator(estimator: str) -> None:
    """Refuse a name that is no probe scoring models, before any work (also when nothing is
    published yet and the estimator would not run)."""
    if estimator not in model_scorers():
        raise BenchError(f"'{estimator}' is not a transferability estimator.",
                         f"Use one that scores models: {', '.join(model_scorers())}.")


def model_scorers() -> list[str]:
    """The probes that score source models on a target (estimators and feature probes)."""
    return [name for name in PROBES.names() if getattr(PROBES.get(name), "uses_source_models",
                                                       False)]
