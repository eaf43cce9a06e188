"""Result sets as evidence for meta-learning: one set's analysis inputs, and several combined
without ever averaging pairs measured under different protocols.

Each table keeps its own targets: when several sets are combined, a target becomes
``SET:TARGET`` (the same dataset measured by two papers is two targets, each judged against its
own truth), so every per-target figure, every within-target standardisation of the learned
ranker and every leave-one-target-out fit stays inside one protocol. The candidates keep their
names: a source dataset is the same dataset in every table, and its meta-features are its own.
What is pooled is only what the analysis pools for any suite: figures over targets, and
best-on-average's mean of a source over the other targets (of every table, in the tables'
metric, which must be the same).
"""

from __future__ import annotations

import pandas as pd

from benchmark.analysis.transfer_data import AnalysisInputs, inputs_from_table
from registry.catalog import Catalog
from registry.errors import BenchError
from registry.names import unknown_name_message
from registry.paths import BenchPaths
from registry.result_store import ResultStore
from registry.views import dataset_sizes, known_datasets


def result_set_inputs(name: str, paths: BenchPaths, catalog: Catalog | None = None
                      ) -> AnalysisInputs:
    """Result set ``name`` (imported or built-in) as analysis inputs; candidates the table gives
    no size for take the registry's (its cards' and registered datasets') where names match."""
    table = ResultStore(paths).load(name)
    return inputs_from_table(table, name, extra_sizes=dataset_sizes(paths, catalog))


def _keyed(inputs: AnalysisInputs) -> AnalysisInputs:
    """``inputs`` with every target renamed ``LABEL:TARGET`` (and its dataset rows and size
    copied under that key)."""
    key = {t: f"{inputs.label}:{t}" for t in inputs.pairs["target"].unique()}
    datasets = {}
    for name, table in inputs.datasets.items():
        extra = table.loc[[t for t in key if t in table.index]].rename(index=key)
        datasets[name] = pd.concat([table, extra])
    sizes = {**inputs.sizes, **{k: inputs.sizes[t] for t, k in key.items() if t in inputs.sizes}}
    return AnalysisInputs(
        label=inputs.label, pairs=inputs.pairs.assign(target=inputs.pairs["target"].map(key)),
        folds=inputs.folds.assign(target=inputs.folds["target"].map(key)),
        scores={m: s.assign(target=s["target"].map(key)).dropna(subset=["target"])
                for m, s in inputs.scores.items()},
        sizes=sizes, datasets=datasets, metric=inputs.metric, repeats_are=inputs.repeats_are,
        protocol_id=inputs.protocol_id, methods=inputs.methods)


def combine(parts: list[AnalysisInputs]) -> AnalysisInputs:
    """One evidence from several result sets (see the module docstring); a single set is
    returned as it is. Refuses sets of different metrics."""
    if len(parts) == 1:
        return parts[0]
    metrics = sorted({p.metric for p in parts})
    if len(metrics) > 1:
        raise BenchError(f"The result sets measure different metrics ({', '.join(metrics)}); "
                         "their figures cannot be pooled.",
                         "Combine result sets of one metric.")
    keyed = [_keyed(p) for p in parts]
    scores: dict[str, list[pd.DataFrame]] = {}
    for p in keyed:
        for m, s in p.scores.items():
            scores.setdefault(m, []).append(s)
    datasets = {}
    for name in ("expert", "meta"):
        frames = [p.datasets[name] for p in keyed if name in p.datasets]
        if frames:
            merged = pd.concat(frames)
            datasets[name] = merged[~merged.index.duplicated(keep="first")]
    protocols = {p.label: p.protocol_id for p in parts}
    return AnalysisInputs(
        label="+".join(p.label for p in parts),
        pairs=pd.concat([p.pairs for p in keyed], ignore_index=True),
        folds=pd.concat([p.folds for p in keyed], ignore_index=True),
        scores={m: pd.concat(f, ignore_index=True) for m, f in scores.items()},
        sizes={k: v for p in keyed for k, v in p.sizes.items()}, datasets=datasets,
        metric=metrics[0], repeats_are="; ".join(sorted({p.repeats_are for p in parts})),
        protocol_id=None, methods={**{k: v for p in parts for k, v in p.methods.items()},
                                   "_protocols": protocols})


def target_key(target: str, results: pd.DataFrame, names: list[str], catalog: Catalog,
               paths: BenchPaths) -> str:
    """The target to rank for: ``target`` as the tables name it (``SET:TARGET`` when several
    sets are combined; a plain name that one set holds is found in it), or a new dataset the
    catalog or the registry knows."""
    targets = set(results["target"])
    if target in targets:
        return target
    held = sorted(t for t in targets if t.split(":", 1)[-1] == target)
    if len(held) == 1:
        return held[0]
    if len(held) > 1:
        raise BenchError(f"Target '{target}' is in several result sets ({', '.join(held)}).",
                         "Name one of them as SET:TARGET.")
    known = known_datasets(catalog, paths)
    name = catalog.key(target) if target.lower() in catalog else target
    if name not in known:
        raise BenchError(unknown_name_message("target", target, sorted(known | targets)) +
                         f" It is no target of {', '.join(names)}, no registered dataset and "
                         "no catalog card.", "See `bench results show NAME` and `bench "
                         "datasets`; register a new one with `bench add-dataset`.")
    return name
