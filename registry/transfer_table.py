"""The transfer table: one documented, versioned format for transfer results, the registry's third
kind of content beside datasets and models.

A transfer table is a folder laid out as a Frictionless tabular Data Package
(https://specs.frictionlessdata.io/data-package/): ``datapackage.json`` (the descriptor: title,
licence, sources, the content hash as ``version``, a Table Schema per resource, and the
``transfer_bench`` block below) beside Parquet resources:

``results.parquet`` (required): one row per candidate x target x repeat (x fold), long form:

=================== ===========================================================================
candidate           a source dataset or a pretrained model; ``scratch`` for the baseline trained
                    on the target alone (model-zoo tables have none)
candidate_kind      ``dataset``, ``model`` or ``scratch``
target              the target dataset
repeat              0, 1, ... (independent splits, or the folds of one split: see ``repeats_are``)
fold                0, 1, ... inside a repeat; null where there are no folds
metric, value       the metric's name (``auc``, ``accuracy``, ...) and its value (finite)
candidate_images    training images of a source dataset (null where unknown)
candidate_classes   its classes (null where unknown)
candidate_params    parameters of a pretrained model (null where unknown)
config_hash         the benchmark's config hash of the pair (null for imported tables)
=================== ===========================================================================

``scores.parquet`` (optional): a method's score of a pair, long form (candidate, target, method,
score), HIGHER = predicted better transfer (distances are negated); each method described in
``transfer_bench.methods``.

``datasets.parquet`` (optional): one row per dataset (name, images, classes, the six expert
meta-features of van den Brandt et al. 2021 as ``expert_<field>``, statistical meta-features as
``meta_<name>``), so that meta-learning works on a table imported where none of its datasets is
registered.

``transfer_bench``: ``format_version``, ``metric``, ``repeats_are`` (``independent repeats`` or
``folds of one split``), ``protocol`` (suite, architecture, image size, epochs, ... : what makes
two tables' numbers comparable) and ``protocol_id`` (its hash: pairs of different protocols are
never averaged), ``citation``, ``tool`` (the writing tool and its version), ``methods``.

The version is the SHA-256 of the content: every resource in a canonical order and text form,
and the descriptor's metadata without the local name, ``version``, ``created`` and the counts
(the same table under two names has one version). Reading validates every
resource with pandera schemas and the cross-table rules; a bad table is refused with the file,
row and column (:class:`TransferTableError`), and nothing is returned half-read.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from registry.card import ExpertFeatures
from registry.errors import RegistryError
from registry.files import atomic_folder

FORMAT_VERSION = 1
DESCRIPTOR = "datapackage.json"
KINDS = ("dataset", "model", "scratch")
SCRATCH = "scratch"
RESULT_KEY = ("candidate", "target", "repeat", "fold", "metric")
SCORE_KEY = ("candidate", "target", "method")
META_FIELDS = ("NumberOfClasses", "ClassEntropy", "imbalance_ratio", "channels",
               "intensity_mean", "intensity_std", "image_contrast_mean", "edge_strength_mean",
               "intensity_entropy_bits", "native_height_max", "native_width_max")
RESOURCES = ("results", "scores", "datasets")
VOLATILE = ("version", "created", "name", "counts")  # not part of the content hash


class TransferTableError(RegistryError):
    """A transfer table that cannot be read or written as it is."""


def _finite(series: pd.Series) -> pd.Series:
    return pd.Series(np.isfinite(series.to_numpy(dtype=float)), index=series.index)


def _nonempty(series: pd.Series) -> pd.Series:
    return series.astype(str).str.strip().str.len() > 0


_NAME = [pa.Check(_nonempty, error="an empty name")]
RESULTS_SCHEMA = pa.DataFrameSchema({
    "candidate": pa.Column(str, _NAME),
    "candidate_kind": pa.Column(str, pa.Check.isin(KINDS)),
    "target": pa.Column(str, _NAME),
    "repeat": pa.Column("Int64", pa.Check.ge(0)),
    "fold": pa.Column("Int64", pa.Check.ge(0), nullable=True),
    "metric": pa.Column(str, _NAME),
    "value": pa.Column(float, pa.Check(_finite, error="a non-finite value")),
    "candidate_images": pa.Column("Int64", pa.Check.gt(0), nullable=True),
    "candidate_classes": pa.Column("Int64", pa.Check.gt(0), nullable=True),
    "candidate_params": pa.Column("Int64", pa.Check.gt(0), nullable=True),
    "config_hash": pa.Column(str, nullable=True),
}, strict=True, ordered=False, coerce=True, unique=list(RESULT_KEY), report_duplicates="all")
SCORES_SCHEMA = pa.DataFrameSchema({
    "candidate": pa.Column(str, _NAME), "target": pa.Column(str, _NAME),
    "method": pa.Column(str, _NAME),
    "score": pa.Column(float, pa.Check(_finite, error="a non-finite score")),
}, strict=True, coerce=True, unique=list(SCORE_KEY), report_duplicates="all")


def _datasets_schema() -> pa.DataFrameSchema:
    columns = {"name": pa.Column(str, _NAME, unique=True),
               "images": pa.Column("Int64", pa.Check.gt(0), nullable=True),
               "classes": pa.Column("Int64", pa.Check.gt(0), nullable=True)}
    columns |= {f"expert_{f}": pa.Column(str, nullable=True) for f in ExpertFeatures.FIELDS}
    columns |= {f"meta_{f}": pa.Column(float, nullable=True) for f in META_FIELDS}
    return pa.DataFrameSchema(columns, strict=True, coerce=True, add_missing_columns=True)


DATASETS_SCHEMA = _datasets_schema()
SCHEMAS = {"results": RESULTS_SCHEMA, "scores": SCORES_SCHEMA, "datasets": DATASETS_SCHEMA}
# the results' columns a table may leave out (added empty before validation), in schema order
OPTIONAL_COLUMNS = tuple(c for c, col in RESULTS_SCHEMA.columns.items() if col.nullable)


@dataclass(frozen=True, kw_only=True)
class TransferTable:
    """A transfer table in memory: ``results`` (required), ``scores`` and ``datasets``
    (possibly empty) and ``meta``: the descriptor's ``transfer_bench`` block plus ``title``,
    ``description``, ``licenses``, ``sources`` and ``name``."""

    results: pd.DataFrame
    scores: pd.DataFrame = field(default_factory=lambda: _empty_scores())
    datasets: pd.DataFrame = field(default_factory=lambda: _empty_datasets())
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        return str(self.meta.get("metric") or self.results["metric"].iloc[0])

    @cached_property
    def version(self) -> str:
        """The content hash, computed once per table (tables are not changed in place:
        :func:`validate` and the readers make new ones)."""
        return content_hash(self)


# --- validation ---------------------------------------------------------------------------------


def _where(frame: pd.DataFrame, index) -> str:
    """A row of a resource as a user finds it: its 1-based position and its key."""
    try:
        pos = frame.index.get_loc(index)
    except KeyError:
        return f"row {index}"
    row = frame.iloc[pos]
    keys = [k for k in ("candidate", "target", "repeat", "fold", "method", "name")
            if k in frame.columns and pd.notna(row[k])]
    return f"row {pos + 1} ({', '.join(f'{k}={row[k]}' for k in keys)})"


def _check_words(check: str, case) -> str:
    """A pandera check's failure in a user's words."""
    if check == "not_nullable":
        return "a missing value"
    if check.startswith("isin("):
        return f"{case!r} is not one of {check[5:-1]}"
    if check.startswith("coerce_dtype("):
        return f"{case!r} is not of type {check[13:-1]}"
    if check.startswith(("greater_than", "less_than")):
        return f"{case!r} is out of range ({check})"
    return f"{check}: {case!r}"


def _schema_error(name: str, frame: pd.DataFrame, err: pa.errors.SchemaErrors
                  ) -> TransferTableError:
    """The first failures of a resource in words: the file (``name``), row and column."""
    cases = err.failure_cases
    dup = cases["check"].astype(str).str.contains("unique|duplicate", regex=True)
    lines = []
    if dup.any():
        rows = sorted({int(i) for i in cases.loc[dup, "index"].dropna()})
        lines.append(f"{_where(frame, rows[0])} is duplicated by row(s) "
                     f"{', '.join(str(frame.index.get_loc(i) + 1) for i in rows[1:6])}: one "
                     "row per candidate x target x repeat x fold x metric")
    for _, case in cases[~dup].head(5).iterrows():
        column, check = case["column"], str(case["check"])
        if check == "column_in_dataframe":
            lines.append(f"column '{case['failure_case']}' is missing")
        elif check == "column_in_schema":
            lines.append(f"column '{case['failure_case']}' is not part of the format")
        elif pd.isna(case["index"]):
            lines.append(f"column '{column}': {_check_words(check, case['failure_case'])}")
        else:
            lines.append(f"{_where(frame, case['index'])}, column '{column}': "
                         f"{_check_words(check, case['failure_case'])}")
    more = f" (and {int((~dup).sum()) - 5} more)" if (~dup).sum() > 5 else ""
    return TransferTableError(f"{name} is not a valid transfer table: "
                              + "; ".join(lines) + more + ".",
                              "Fix those rows (see docs/sharing.md for the format).")


def _validated(name: str, frame: pd.DataFrame, label: str) -> pd.DataFrame:
    schema = SCHEMAS[name]
    if name == "results":
        frame = frame.assign(**{c: pd.NA for c in OPTIONAL_COLUMNS if c not in frame.columns})
    try:
        return schema.validate(frame.reset_index(drop=True), lazy=True)
    except pa.errors.SchemaErrors as err:
        raise _schema_error(label, frame.reset_index(drop=True), err) from None


def validate(table: TransferTable, labels: Mapping[str, str] | None = None) -> TransferTable:
    """``table`` with each resource validated and coerced (see the module docstring), after the
    rules across rows: one metric; scratch rows named ``scratch``; every target with at least
    two candidates other than scratch somewhere (else there is nothing to rank). ``labels``:
    what to call each resource in messages (the file a user gave; default NAME.parquet)."""
    label = {n: f"{n}.parquet" for n in RESOURCES} | dict(labels or {})
    results = _validated("results", table.results, label["results"])
    scores = (_validated("scores", table.scores, label["scores"]) if len(table.scores)
              else _empty_scores())
    datasets = (_validated("datasets", table.datasets, label["datasets"]) if len(table.datasets)
                else _empty_datasets())
    _check_rows(results, label["results"])
    return replace(table, results=results, scores=scores, datasets=datasets)


def _check_rows(results: pd.DataFrame, label: str) -> None:
    if results.empty:
        raise TransferTableError("The transfer table has no result rows.",
                                 "Give at least one candidate x target x repeat row.")
    metrics = sorted(results["metric"].unique())
    if len(metrics) > 1:
        raise TransferTableError(f"The transfer table mixes metrics {metrics}.",
                                 "Split it into one table per metric.")
    wrong = results[(results["candidate_kind"] == SCRATCH) != (results["candidate"] == SCRATCH)]
    if len(wrong):
        raise TransferTableError(f"{label} {_where(results, wrong.index[0])}: the "
                                 "scratch baseline must be candidate 'scratch' of kind 'scratch'.",
                                 "Name the baseline trained on the target alone 'scratch'.")
    ranked = results[results["candidate"] != SCRATCH].groupby("target")["candidate"].nunique()
    if ranked.empty or ranked.max() < 2:
        raise TransferTableError("Every target of the transfer table has fewer than two "
                                 "candidates: there is no ranking to learn from or judge.",
                                 "Give at least two candidates (sources or models) per target.")


# --- the content hash ---------------------------------------------------------------------------


def _canonical(frame: pd.DataFrame, key: list[str]) -> bytes:
    cols = sorted(frame.columns)
    ordered = frame[cols].sort_values([k for k in key if k in cols], kind="stable",
                                      na_position="first")
    buffer = io.StringIO()
    ordered.to_csv(buffer, index=False, float_format="%.17g", na_rep="")
    return buffer.getvalue().encode()


def content_hash(table: TransferTable) -> str:
    """``sha256:<hex>`` of the table's content (resources in canonical order and text form,
    the metadata without the local name, ``version``, ``created`` and ``counts``): the same
    table under two names has one version."""
    h = hashlib.sha256()
    for name, frame, key in (("results", table.results, list(RESULT_KEY)),
                             ("scores", table.scores, list(SCORE_KEY)),
                             ("datasets", table.datasets, ["name"])):
        h.update(name.encode())
        h.update(_canonical(frame, key) if len(frame) else b"")
    meta = {k: v for k, v in table.meta.items() if k not in VOLATILE}
    h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    return "sha256:" + h.hexdigest()


# --- the descriptor ----------------------------------------------------------------------------

_FRICTIONLESS_TYPES = {"Int64": "integer", "int64": "integer", "float64": "number",
                       "object": "string", "str": "string", "string": "string"}


def _table_schema(name: str, frame: pd.DataFrame) -> dict[str, Any]:
    fields = [{"name": c, "type": _FRICTIONLESS_TYPES.get(str(frame[c].dtype), "string")}
              for c in frame.columns]
    key = {"results": list(RESULT_KEY), "scores": list(SCORE_KEY), "datasets": ["name"]}[name]
    return {"fields": fields, "primaryKey": [k for k in key if k != "fold"]}


def descriptor(table: TransferTable) -> dict[str, Any]:
    """The Data Package descriptor of ``table`` (what ``datapackage.json`` holds)."""
    meta = dict(table.meta)
    head = {k: meta.pop(k) for k in ("name", "title", "description", "licenses", "sources")
            if k in meta}
    resources = []
    for name, frame in (("results", table.results), ("scores", table.scores),
                        ("datasets", table.datasets)):
        if len(frame):
            resources.append({"name": name, "path": f"{name}.parquet", "format": "parquet",
                              "mediatype": "application/vnd.apache.parquet",
                              "schema": _table_schema(name, frame)})
    results = table.results
    counts = {"rows": len(results), "targets": int(results["target"].nunique()),
              "candidates": int(results.loc[results["candidate"] != SCRATCH,
                                            "candidate"].nunique())}
    meta.pop("counts", None)
    return {"profile": "tabular-data-package", **head, "version": table.version,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "transfer_bench": {"format_version": FORMAT_VERSION, **meta, "counts": counts},
            "resources": resources}


def table_meta(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The ``meta`` of a TransferTable from a descriptor (the inverse of :func:`descriptor`)."""
    block = dict(doc.get("transfer_bench") or {})
    version = block.pop("format_version", None)
    if version != FORMAT_VERSION:
        raise TransferTableError(f"datapackage.json has transfer_bench.format_version "
                                 f"{version!r}; this tool reads version {FORMAT_VERSION}.",
                                 "Export the table again with this version of transfer-bench.")
    head = {k: doc[k] for k in ("name", "title", "description", "licenses", "sources")
            if k in doc}
    return {**head, **block}


# --- reading and writing ------------------------------------------------------------------------


def read_table(path: Path) -> TransferTable:
    """Read and validate the transfer table in folder ``path`` (see the module docstring)."""
    path = Path(path)
    doc_path = path / DESCRIPTOR
    try:
        doc = json.loads(doc_path.read_text())
    except FileNotFoundError:
        raise TransferTableError(f"{path} is no transfer table: it has no {DESCRIPTOR}.",
                                 "Give the folder `bench results export` wrote, or a plain CSV "
                                 "(see docs/sharing.md).") from None
    except json.JSONDecodeError as err:
        raise TransferTableError(f"{doc_path} is not valid JSON: {err}.",
                                 "Fix or re-export the descriptor.") from None
    frames = {}
    for res in doc.get("resources", []):
        if res.get("name") not in RESOURCES:
            continue
        try:
            frames[res["name"]] = pd.read_parquet(path / res["path"])
        except (OSError, ValueError) as err:
            raise TransferTableError(f"Cannot read {path / res['path']}: {err}.",
                                     "Re-export the table; the file is damaged or missing.") \
                from None
    if "results" not in frames:
        raise TransferTableError(f"{doc_path} lists no 'results' resource.",
                                 "A transfer table needs results.parquet.")
    table = validate(TransferTable(results=frames["results"],
                                   scores=frames.get("scores", _empty_scores()),
                                   datasets=frames.get("datasets", _empty_datasets()),
                                   meta=table_meta(doc)))
    if doc.get("version") and doc["version"] != table.version:
        raise TransferTableError(f"{doc_path} says version {doc['version']} but the content "
                                 f"hashes to {table.version}: the files were changed after "
                                 "export.", "Re-export the table, or restore its files.")
    return table


def _empty_scores() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in SCORE_KEY}).assign(
        score=pd.Series(dtype=float))


def _empty_datasets() -> pd.DataFrame:
    return pd.DataFrame({"name": pd.Series(dtype=object)})


def write_files(table: TransferTable, folder: Path) -> dict[str, Any]:
    """Write validated ``table``'s Parquet resources and descriptor into the existing ``folder``;
    returns the descriptor written."""
    for name, frame in (("results", table.results), ("scores", table.scores),
                        ("datasets", table.datasets)):
        if len(frame):
            frame.to_parquet(folder / f"{name}.parquet", index=False)
    doc = descriptor(table)
    (folder / DESCRIPTOR).write_text(json.dumps(doc, indent=2, default=str))
    return doc


def write_table(table: TransferTable, path: Path) -> Path:
    """Validate ``table`` and write it to folder ``path`` atomically (a temporary folder beside
    it, renamed when complete; an existing folder is replaced only then). Returns ``path``."""
    table = validate(table)
    path = Path(path)
    with atomic_folder(path) as tmp:
        write_files(table, tmp)
    return path


def protocol_id(protocol: Mapping[str, Any]) -> str:
    """A short hash of a protocol: tables with equal ids were measured the same way."""
    text = json.dumps({k: v for k, v in protocol.items() if v is not None}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]

