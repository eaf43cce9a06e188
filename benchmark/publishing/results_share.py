"""A result set shared as a dataset: ``bench results publish``.

The folder (default ``BENCH_HOME/published-results/NAME``) is a Hugging Face dataset and a
transfer table at once:

- ``results/results.parquet``, ``scores/scores.parquet``, ``datasets/datasets.parquet``: the
  table's resources, one folder each, so that ``datasets.load_dataset(FOLDER, "scores")`` (a
  config per resource, named in the card's YAML ``configs``) or
  ``load_dataset("parquet", data_dir=FOLDER/results)`` reads one of them;
- ``README.md``: the dataset card (huggingface_hub's ``DatasetCard``): YAML header (licence,
  tags, task category, pretty name, size, configs) and the datasheet of Gebru et al.
  ("Datasheets for Datasets": motivation, composition, collection process, preprocessing, uses,
  distribution, maintenance) filled from the table's descriptor;
- ``datapackage.json``: the table's descriptor with the resources' new paths, so that
  ``bench results import FOLDER`` reads the folder back (same version, the content hash);
- with ``--openml``, ``openml/``: the table as an OpenML dataset built by openml-python (one row
  per result, target ``value``, each method's score as a ``score_<method>`` column), the
  ``description.xml`` and ``dataset.arff`` an upload sends.

A table whose licence is unknown (cats-scans': its repository has none) is refused before
anything is written. The folder is written to a temporary sibling and renamed when complete.
``--push hf:ORG/NAME`` is checked (syntax, token) before writing, then the written folder goes
to a dataset repo through the model pushes' code (:mod:`benchmark.publishing.hub`); offline
the push fails and the folder stays, ready to upload.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from huggingface_hub import DatasetCard, DatasetCardData

from benchmark.analysis.export import TOOL, package_version
from benchmark.publishing.hub import HubTarget, hub_target, reach_hub, upload
from benchmark.publishing.trained import PublishError
from registry.files import atomic_folder
from registry.openml_export import Export, build_dataset, creator, write_files
from registry.paths import BenchPaths
from registry.result_store import ResultStore
from registry.transfer_table import (DATASETS_SCHEMA, DESCRIPTOR, RESULTS_SCHEMA, SCORES_SCHEMA,
                                     SCRATCH, TransferTable, descriptor, read_table)

UNKNOWN_LICENCES = ("", "unknown", "noassertion", "none", "proprietary")
CONFIGS = {"results": "one row per candidate x target x repeat (x fold): the metric's value",
           "scores": "a method's score of a pair (higher = predicted better transfer)",
           "datasets": "one row per dataset: images, classes, expert and statistical "
                       "meta-features"}
COLUMNS = {"results": list(RESULTS_SCHEMA.columns), "scores": list(SCORES_SCHEMA.columns),
           "datasets": list(DATASETS_SCHEMA.columns)}
OPENML_NOMINAL = ("candidate", "candidate_kind", "target", "metric")
SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
         (1_000_000, "100K<n<1M"))

CARD = """---
{{ card_data }}
---

# {{ title }}
{% if description %}
{{ description }}
{% endif %}
A transfer table written by transfer-bench: the measured transfer of candidates (source
datasets{% if has_models %}, pretrained models{% endif %}) to target datasets.
The version is the SHA-256 of the content, the same wherever the table is published:
`{{ version }}`.

## Motivation

- **Purpose**: a ground truth of which candidate transfers best to which target, to judge
  transferability estimators against and to learn to rank candidates (meta-learning) without
  fine-tuning again.
- **Creators**: {{ citation or "not recorded" }}
- **Written by**: {{ tool or "transfer-bench" }}

## Composition

- **Instances**: {{ rows }} rows in `results`: {{ targets }} targets, {{ candidates }} candidates,
  {{ repeats }} repeat(s) per pair ({{ repeats_are }}){% if folds %}, {{ folds }} folds each{% endif %}.
- **Metric**: `{{ metric }}` of the candidate fine-tuned on the target.
- **Baseline**: {% if scratch %}candidate `scratch` is the target trained from scratch.
  {%- else %}none: candidates are ranked by the metric alone.{% endif %}
- **Configs** (`datasets.load_dataset(REPO, CONFIG)`, split `train`):
{% for c in configs %}  - `{{ c.name }}` ({{ c.rows }} rows): {{ c.what }}; columns {{ c.columns }}
{% endfor -%}
{% if methods %}- **Method scores** (higher = predicted better transfer):
{% for m, d in methods.items() %}  - `{{ m }}`: {{ d }}
{% endfor %}{% endif -%}
- **Missing values**: null where a fact is unknown (a candidate's images, classes, parameters).
- **Personal or confidential data**: none; numbers about datasets and models only.

## Collection process

{% for k, v in protocol.items() %}- **{{ k }}**: {{ v }}
{% else %}- The protocol was not recorded.
{% endfor -%}
- **Protocol id**: `{{ protocol_id or "none" }}` (tables with other ids were measured
  differently: never average them together).
{% for s in sources %}- **Source**: {{ s.title or "" }} {{ s.path or "" }}
{% endfor -%}
- **Created**: {{ created or "not recorded" }}

## Preprocessing

Validated by transfer-bench's schemas: one row per candidate x target x repeat x fold, finite
values, one metric, at least two candidates per target. Distances are negated into scores
(higher = better). Publishing changes no value: the Parquet files hold the table's resources.

## Uses

- Load: `datasets.load_dataset("{{ where }}", "results")`, or read the Parquet files.
- With transfer-bench: `bench results import FOLDER --name NAME`, then
  `bench score MY_SCORES.csv --results NAME` (judge a method) or `bench report --results NAME`.
- Not for: averaging with tables of another protocol id; claims beyond these targets.

## Distribution

- **Licence**: {{ licence }}
- **Files**: {% for c in configs %}`{{ c.name }}/{{ c.name }}.parquet`, {% endfor %}`datapackage.json`
  (the Frictionless Data Package descriptor: schemas, provenance, the same version).

## Maintenance

A changed table is a new version (another content hash); corrections are published as a new
version under the same name; `datapackage.json` holds the version and the provenance.

## Citation

```
{{ citation or "not recorded" }}
```
"""


@dataclass(frozen=True)
class PublishedResults:
    """A published result set: its folder, files, OpenML export and Hub repo (if pushed)."""

    name: str
    version: str
    folder: Path
    licence: list[str]
    configs: dict[str, int]
    openml: Export | None = None
    pushed: str | None = None

    def as_json(self) -> dict[str, Any]:
        files = sorted(str(p.relative_to(self.folder)) for p in self.folder.rglob("*")
                       if p.is_file())
        return {"name": self.name, "version": self.version, "folder": str(self.folder),
                "licence": self.licence, "configs": self.configs, "files": files,
                "openml": self.openml.as_json() if self.openml else None,
                "pushed": self.pushed}


def publish_results(name: str, paths: BenchPaths, *, out: Path | None = None,
                    push: str | None = None, openml: bool = False,
                    environ: Mapping[str, str] | None = None) -> PublishedResults:
    """Write result set ``name`` as a Hugging Face dataset folder (and with ``openml`` its
    OpenML files) to ``out`` (default BENCH_HOME/published-results/NAME, replaced when the new
    one is complete); with ``push`` upload it to that dataset repo. Refusals (unknown name,
    unknown licence, a bad ``push``, no token) come before anything is written; a push that
    fails leaves the written folder."""
    environ = dict(environ or {})
    record = ResultStore(paths).get(name)
    table = read_table(record.path)
    created = record.descriptor.get("created")
    licences = shareable_licences(table, name)
    folder = Path(out or paths.home / "published-results" / name).expanduser()
    _fresh(folder, record.path)
    target = hub_target(push, environ, f"Nothing was written; the folder would be {folder}.") \
        if push else None
    export = openml_export(table, name, folder / "openml") if openml else None
    frames = _frames(table)
    with atomic_folder(folder) as tmp:
        for res, frame in frames.items():
            (tmp / res).mkdir()
            frame.to_parquet(tmp / res / f"{res}.parquet", index=False)
        (tmp / DESCRIPTOR).write_text(json.dumps(_descriptor(table, created), indent=2,
                                                 default=str))
        (tmp / "README.md").write_text(dataset_card(table, frames, target, created))
        if export is not None:
            (tmp / "openml").mkdir()
            write_files(export.dataset, tmp / "openml")
    pushed = _push(folder, target, frames, environ) if target else None
    return PublishedResults(name, table.version, folder, licences,
                            {k: len(v) for k, v in frames.items()}, export, pushed)


def shareable_licences(table: TransferTable, name: str) -> list[str]:
    """The names of ``table``'s licences; a table without one, or with an unknown one, is
    refused: publishing copies its rows to a public place, which only their owner may allow."""
    licences = _licences(table)
    unknown = [lic for lic in licences if str(lic.get("name") or "").strip().lower()
               in UNKNOWN_LICENCES]
    if licences and not unknown:
        return [str(lic["name"]) for lic in licences]
    said = (f"licence '{unknown[0].get('name') or ''}'"
            + (f" ({unknown[0]['title']})" if unknown[0].get("title") else "")) if unknown \
        else "no licence"
    raise PublishError(
        f"Result set '{name}' has {said}: it cannot be published, since publishing "
        "redistributes its numbers and only their owner may allow that.",
        "Keep it for your own analysis. If you hold the rights, set `licenses` in a copy of its "
        "folder's datapackage.json (an SPDX id such as CC-BY-4.0; delete `version`, which "
        f"changes with it), import the copy with `bench results import COPY --name {name} "
        "--replace`, and publish again.")


def _licences(table: TransferTable) -> list[Mapping[str, Any]]:
    """The descriptor's ``licenses`` as Frictionless objects (a bare string is a name)."""
    return [lic if isinstance(lic, Mapping) else {"name": str(lic)}
            for lic in table.meta.get("licenses") or []]


def _fresh(folder: Path, record_path: Path) -> None:
    """Refuse to replace a folder that is not an earlier publish (it is replaced whole)."""
    ours = {"README.md", DESCRIPTOR, "openml", *CONFIGS}
    theirs = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if folder.exists() and (not folder.is_dir() or set(theirs) - ours
                            or folder.resolve() == record_path.resolve()):
        raise PublishError(f"{folder} exists and is not a folder `bench results publish` wrote "
                           f"(it holds {', '.join(theirs[:5]) or 'a file'}); publishing replaces "
                           "the whole folder.", "Give --out a new or empty folder.")


def _frames(table: TransferTable) -> dict[str, pd.DataFrame]:
    """The non-empty resources, columns in the format's order."""
    out = {}
    for res in CONFIGS:
        frame = getattr(table, res)
        if len(frame):
            order = [c for c in COLUMNS[res] if c in frame.columns]
            out[res] = frame[order + [c for c in frame.columns if c not in order]]
    return out


def _descriptor(table: TransferTable, created: str | None) -> dict[str, Any]:
    """The table's descriptor with the resources in their folders and its first date."""
    doc = {**descriptor(table), **({"created": created} if created else {})}
    for res in doc["resources"]:
        res["path"] = f"{res['name']}/{res['name']}.parquet"
    return doc


def _methods(table: TransferTable) -> dict[str, str]:
    """Each scored method and its description (from the descriptor's ``methods``)."""
    said = table.meta.get("methods") or {}
    described = {m: d.get("description") if isinstance(d, Mapping) else d
                 for m, d in said.items()}
    return {m: str(described.get(m) or "no description given")
            for m in sorted(table.scores["method"].unique())}


def _hub_licence(names: list[str]) -> dict[str, Any]:
    """The Hub's ``license`` field: SPDX ids lowercased (cc-by-4.0, mit), else ``other``
    with ``license_name``."""
    ids = [n.lower() for n in names]
    if all(re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", i) for i in ids):
        return {"license": ids[0] if len(ids) == 1 else ids}
    return {"license": "other", "license_name": "; ".join(names)}


def dataset_card(table: TransferTable, frames: Mapping[str, pd.DataFrame],
                 target: HubTarget | None = None, created: str | None = None) -> str:
    """The README.md of the folder: YAML header and datasheet from ``table``'s descriptor
    (``created``: when the table was made; ``target``: the repo it goes to)."""
    doc, meta, results = _descriptor(table, created), table.meta, table.results
    licences = _licences(table)
    size = next((label for bound, label in SIZES if len(results) < bound), "1M<n<10M")
    data = DatasetCardData(
        **_hub_licence([str(lic.get("name")) for lic in licences]),
        pretty_name=meta.get("title") or f"transfer-bench result set {meta.get('name')}",
        task_categories=["tabular-regression"], size_categories=size,
        tags=["transfer-learning", "transferability", "meta-learning", "transfer-bench"],
        configs=[{"config_name": res, "data_files": [{"split": "train",
                                                      "path": f"{res}/*.parquet"}],
                  **({"default": True} if res == "results" else {})} for res in frames])
    counts = doc["transfer_bench"]["counts"]
    card = DatasetCard.from_template(
        data, template_str=CARD, title=data.pretty_name, description=meta.get("description"),
        version=table.version, citation=meta.get("citation"), tool=meta.get("tool"),
        has_models=(results["candidate_kind"] == "model").any(), rows=counts["rows"],
        targets=counts["targets"], candidates=counts["candidates"],
        repeats=int(results["repeat"].nunique()), folds=int(results["fold"].nunique()),
        repeats_are=meta.get("repeats_are", "independent repeats"), metric=table.metric,
        scratch=(results["candidate"] == SCRATCH).any(), methods=_methods(table),
        configs=[{"name": res, "rows": len(f), "what": CONFIGS[res],
                  "columns": ", ".join(f"`{c}`" for c in f.columns)}
                 for res, f in frames.items()],
        protocol=meta.get("protocol") or {}, protocol_id=meta.get("protocol_id"),
        sources=doc.get("sources") or [], created=doc.get("created"),
        where=target.repo_id if target else "FOLDER or ORG/NAME",
        licence="; ".join(f"{lic.get('name')}" + (f" ({lic['path']})" if lic.get("path")
                                                  else "") for lic in licences))
    return str(card).rstrip("\n") + "\n"


# --- OpenML ------------------------------------------------------------------------------------


def _ascii(text: str) -> str:
    """``text`` in basic Latin, as OpenML's XML schema wants (accents dropped, x for ×)."""
    text = text.replace("\u00d7", "x").replace("\u2013", "-").replace("\u2014", "-")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def openml_frame(table: TransferTable) -> pd.DataFrame:
    """One row per result with each method's score of its pair as ``score_<method>``;
    names nominal, integers with missing values as objects (None is ARFF's ``?``), columns
    empty in this table dropped."""
    frame = _frames(table)["results"].copy()
    if len(table.scores):
        wide = table.scores.pivot(index=["candidate", "target"], columns="method",
                                  values="score")
        wide.columns = [f"score_{m}" for m in wide.columns]
        frame = frame.merge(wide.reset_index(), on=["candidate", "target"], how="left")
    frame = frame.dropna(axis=1, how="all")
    for column in frame.columns:
        if column in OPENML_NOMINAL:
            frame[column] = pd.Categorical(frame[column].astype(str))
        elif str(frame[column].dtype) == "Int64":
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
        elif not pd.api.types.is_float_dtype(frame[column]):
            frame[column] = frame[column].astype(object)
    return frame


def openml_export(table: TransferTable, name: str, folder: Path) -> Export:
    """``table`` as an OpenMLDataset (target ``value``), with ``folder`` where its files go."""
    meta, frame = table.meta, openml_frame(table)
    methods = _methods(table)
    description = "\n\n".join(filter(None, [
        meta.get("title"), meta.get("description"),
        "Transfer results exported by transfer-bench: one row per candidate x target x repeat "
        f"(x fold); the target attribute 'value' is the {table.metric} of the candidate (a "
        "source dataset, a pretrained model, or 'scratch': the target trained alone) "
        f"fine-tuned on the target. Repeats are {meta.get('repeats_are', 'independent')}.",
        "score_<method>: each method's predicted transferability of the pair (higher = "
        "better): " + json.dumps(methods) if methods else "",
        "Protocol: " + json.dumps(meta["protocol"], default=str) if meta.get("protocol") else "",
        f"Version (SHA-256 of the content): {table.version}.",
        "The datasets' meta-features are in the Hugging Face dataset's 'datasets' config "
        "(datasets/datasets.parquet)." if len(table.datasets) else ""]))
    sources = [s.get("path") for s in (meta.get("sources") or []) if isinstance(s, Mapping)]
    citation = _ascii(meta.get("citation") or f"transfer-bench result set '{name}'")
    dataset = build_dataset(
        "Report this with the result set's datapackage.json.", name=f"{name}-transfer-results",
        description=_ascii(description), creator=creator({"citation": citation}),
        contributor="transfer-bench export", collection_date=None, language="English",
        licence=", ".join(str(lic.get("name")) for lic in _licences(table)),
        attributes="auto", data=frame, default_target_attribute="value",
        ignore_attribute=[c for c in ("config_hash",) if c in frame.columns] or None,
        citation=citation, original_data_url=next(iter(sources), None), paper_url=None,
        row_id_attribute=None, version_label=table.version, update_comment=None)
    return Export(name, folder, len(frame), frame.shape[1] - 1, dataset)


# --- the push ----------------------------------------------------------------------------------


def _push(folder: Path, target: HubTarget, frames: Mapping[str, pd.DataFrame],
          environ: Mapping[str, str]) -> str:
    """Upload the written ``folder`` to ``target`` as a dataset repo (the model pushes' path);
    returns the repo's address."""
    kept = f"The folder is written: {folder}."
    later = f"upload it later with `hf upload {target.repo_id} {folder} --repo-type dataset`"
    reach_hub(target, environ, offline=f"{kept} Unset HF_HUB_OFFLINE and publish again, or {later}.",
              unreachable=f"{kept} Publish again with --push when online, or {later}.")
    repo_id = upload(folder, target, repo_type="dataset",
                     library=(TOOL, package_version() or "unknown"),
                     files=["README.md", DESCRIPTOR, *(f"{res}/*.parquet" for res in frames)],
                     retry="publish again with --push")
    return f"{target.endpoint}/datasets/{repo_id}"
