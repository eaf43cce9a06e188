"""Commands about datasets: ``bench add-dataset``, ``bench datasets`` (list, show, remove) and
``bench openml export``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from benchmark.cli.console import fail, handles_errors, plain_yaml, print_json
from benchmark.cli.options import JsonFlag, parse_options, parse_size
from registry.catalog import Catalog
from registry.paths import BenchPaths
from registry.progress import rich_progress
from registry.register import AddRequest, add_dataset, remove_dataset
from registry.views import list_datasets, show_dataset


@handles_errors
def add_dataset_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Catalog name or alias, or a new name.")],
    path: Annotated[Optional[Path], typer.Option(help="Folder holding the data.")] = None,
    card: Annotated[Optional[Path], typer.Option(help="A YAML dataset card.")] = None,
    format: Annotated[Optional[str], typer.Option("--format", help="Loader for --path.")] = None,
    option: Annotated[list[str], typer.Option(help="Loader option KEY=VALUE (repeatable).")] = [],
    size: Annotated[list[str], typer.Option(help="Cache size HxW (repeatable).")] = [],
    origin: Annotated[str, typer.Option(help="medical or natural (own data).")] = "medical",
    modality: Annotated[str, typer.Option(help="Imaging modality (own data).")] = "unknown",
    force: Annotated[bool, typer.Option(help="Register again even if registered.")] = False,
    workers: Annotated[int, typer.Option(help="Decoding threads (0: automatic).")] = 0,
    json_out: JsonFlag = False,
) -> None:
    """Register a dataset: validate every sample, decode it once into the cache, compute
    meta-features and record it in the registry."""
    req = AddRequest(name=name, path=path, card_file=card, format=format,
                     options=parse_options(option),
                     sizes=tuple(parse_size(s) for s in size) or None,
                     origin=origin, modality=modality, force=force, workers=workers)
    paths: BenchPaths = ctx.obj
    catalog = Catalog.load()
    result = add_dataset(req, paths, catalog, progress=rich_progress)
    view = show_dataset(result.record.name, catalog, paths)
    view["already_registered"] = result.already_registered
    if json_out:
        print_json(view)
        return
    state = "already registered" if result.already_registered else "registered"
    typer.echo(f"{view['name']}: {state}, {view['n_samples']} samples, "
               f"{len(view['classes'])} classes, cache {view['cache_dir']}")

@handles_errors
def datasets_list(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """List the catalog and the registered datasets."""
    if ctx.invoked_subcommand is not None:
        return
    rows = list_datasets(Catalog.load(), ctx.find_root().obj)
    if json_out:
        print_json(rows)
        return
    _print_table(rows)


def _print_table(rows: list[dict]) -> None:
    table = Table("name", "aliases", "origin", "modality", "task", "classes", "samples",
                  "obtain", "registered")
    for r in rows:
        table.add_row(r["name"], ",".join(r["aliases"]), r["origin"], r["modality"], r["task"],
                      str(r["classes"]), "" if r["n_samples"] is None else f"{r['n_samples']:,}",
                      r["obtain"], "yes" if r["registered"] else "")
    Console(width=160).print(table)

@handles_errors
def datasets_show(ctx: typer.Context, name: str, json_out: JsonFlag = False) -> None:
    """Card, local counts per class, meta-features and cache files of one dataset."""
    view = show_dataset(name, Catalog.load(), ctx.find_root().obj)
    if json_out:
        print_json(view)
        return
    typer.echo(plain_yaml(view))

@handles_errors
def datasets_remove(ctx: typer.Context, name: str) -> None:
    """Unregister a dataset and delete its cache."""
    catalog = Catalog.load()
    key = catalog.key(name)
    if not remove_dataset(key, ctx.find_root().obj):
        raise fail(f"'{key}' is not registered; nothing was removed. "
                   "Run `bench datasets` to see what is registered.")
    typer.echo(f"{key}: removed")

@handles_errors
def openml_export_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A registered dataset.")],
    out: Annotated[Optional[Path], typer.Option(help="Folder (default BENCH_HOME/openml-export/NAME).")] = None,
    size: Annotated[Optional[str], typer.Option(help="Cached size HxW to export (default the smallest).")] = None,
    publish: Annotated[bool, typer.Option(help="Upload with OPENML_APIKEY (online).")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Build the OpenML dataset (description, ARFF data, our meta-features) of a registered
    dataset with openml-python, write it to a folder, and with --publish upload it."""
    from registry.openml_export import export_dataset, publish_export  # openml-python: slow

    catalog = Catalog.load()
    key = catalog.key(name)
    export = export_dataset(key, ctx.find_root().obj, out, parse_size(size) if size else None)
    if publish:
        export = publish_export(export, os.environ.get("OPENML_APIKEY"))
    if json_out:
        print_json(export.as_json())
        return
    typer.echo(f"{export.name}: {export.n_instances} instances x {export.n_features} pixel "
               f"features -> {export.folder}")
    if export.openml_id is not None:
        typer.echo(f"published as OpenML dataset {export.openml_id}")
