"""Commands about result sets, the registry's transfer tables: ``bench results`` (export, import,
list, show, remove) and ``bench score``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from benchmark.cli.console import fail, handles_errors, plain_yaml, print_json, records
from benchmark.cli.options import JsonFlag, tracking_uri
from benchmark.suite.files import DEFAULT_SUITE


@handles_errors
def export_cmd(
    ctx: typer.Context,
    suite: Annotated[str, typer.Option(help="The suite whose results to export.")
                     ] = DEFAULT_SUITE,
    out: Annotated[Optional[Path], typer.Option("-o", "--out", help="Folder to write (default "
                                                "BENCH_HOME/exports/SUITE).")] = None,
    license: Annotated[str, typer.Option(help="The licence of the results (SPDX id).")
                       ] = "CC-BY-4.0",
    citation: Annotated[Optional[str], typer.Option(help="How to cite the results.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Export a suite's results as a transfer table folder (pairs, repeats, folds, scratch,
    every probe's scores, the datasets' meta-features, provenance)."""
    from benchmark import api  # torch and MLflow: loaded once the flags are known good

    folder, table = api.export_results(ctx.find_root().obj, suite, tracking_uri=tracking_uri(),
                                       out=out, license=license, citation=citation)
    doc = {"path": str(folder), "version": table.version, "rows": len(table.results),
           "methods": sorted(table.scores["method"].unique())}
    print_json(doc) if json_out else typer.echo(
        f"{suite}: {doc['rows']} rows, {len(doc['methods'])} methods -> {folder} "
        f"({doc['version'][:19]}...)")


@handles_errors
def import_cmd(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A transfer table folder, or a CSV (plain, "
                                              "cats-scans or model-zoo).")],
    name: Annotated[str, typer.Option(help="Name of the result set in the registry.")],
    fmt: Annotated[str, typer.Option("--format", help="auto, package, plain, cats-scans or "
                                                      "model-zoo.")] = "auto",
    metric: Annotated[Optional[str], typer.Option(help="The metric column of a plain CSV "
                                                       "(auc, accuracy, ...).")] = None,
    scores: Annotated[list[Path], typer.Option(help="A score CSV candidate,target,<method>... "
                                                    "(repeatable; plain CSV only).")] = [],
    attributes: Annotated[Optional[Path], typer.Option(
        help="A candidate attribute CSV candidate,kind,images|size,classes,params.")] = None,
    replace: Annotated[bool, typer.Option(help="Replace a result set of that name with "
                                               "another content.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Import a transfer table into the registry (idempotent by content hash)."""
    from benchmark import api

    outcome = api.import_results(ctx.find_root().obj, path, name, fmt=fmt, metric=metric,
                                 scores=scores, attributes=attributes, replace=replace)
    doc = {**outcome.record.summary(), "status": outcome.status}
    print_json(doc) if json_out else typer.echo(
        f"{name}: {outcome.status} ({doc['rows']} rows, {doc['targets']} targets, "
        f"{doc['candidates']} candidates, {doc['metric']}; {doc['version'][:19]}...)")


@handles_errors
def list_cmd(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """List the result sets: the imported ones and the built-in ones."""
    if ctx.invoked_subcommand is not None:
        return
    from benchmark import api

    rows = [r.summary() for r in api.result_sets(ctx.find_root().obj)]
    if json_out:
        print_json(rows)
        return
    table = Table("name", "metric", "rows", "targets", "candidates", "repeats", "origin",
                  "version")
    for r in rows:
        table.add_row(r["name"], r["metric"], str(r["rows"]), str(r["targets"]),
                      str(r["candidates"]), r["repeats_are"] or "",
                      "built-in" if r["builtin"] else "imported", r["version"][:19])
    Console().print(table)


@handles_errors
def show_cmd(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Result set.")],
             json_out: JsonFlag = False) -> None:
    """One result set: its descriptor (provenance, licence, citation, methods) and counts."""
    from benchmark import api

    record = api.result_set(ctx.find_root().obj, name)
    doc = {**record.summary(), "descriptor": record.descriptor}
    print_json(doc) if json_out else typer.echo(plain_yaml(doc))


@handles_errors
def remove_cmd(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Result set.")],
               json_out: JsonFlag = False) -> None:
    """Remove an imported result set (its folder and registry row)."""
    from benchmark import api

    record = api.remove_result_set(ctx.find_root().obj, name)
    print_json({"removed": name, "path": str(record.path)}) if json_out else \
        typer.echo(f"{name}: removed ({record.path})")


@handles_errors
def score_cmd(
    ctx: typer.Context,
    scores: Annotated[Path, typer.Argument(help="CSV candidate,target,<method>... (higher = "
                                                "predicted better).")],
    results: Annotated[Optional[str], typer.Option(help="The result set holding the truth.")
                       ] = None,
    suite: Annotated[Optional[str], typer.Option(help="Or: the suite whose store holds it.")
                     ] = None,
    include_self: Annotated[bool, typer.Option("--include-self", help="Let a target be its "
                                               "own candidate.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Judge a method's per-pair scores against a ground truth that already exists, with the
    same evaluation as the report: the way to submit a new method."""
    if (results is None) == (suite is None):
        raise fail("Give the truth with exactly one of --results NAME or --suite NAME.", 2)
    from benchmark import api

    got = api.score_file(ctx.find_root().obj, scores, results=results, suite=suite,
                         tracking_uri=tracking_uri(), include_self=include_self)
    ev = got.evaluation
    if json_out:
        print_json({"truth": got.inputs.label, "metric": got.inputs.metric,
                    "submitted": got.submitted, "evaluation": records(ev.summary),
                    "evaluation_per_target": records(ev.per_target),
                    "noise_ceiling": records(got.ceiling)})
        return
    typer.echo(f"Against {got.inputs.label} ({got.inputs.metric}, "
               f"{int(ev.summary['n_targets'].max())} targets):\n")
    typer.echo(got.text)
