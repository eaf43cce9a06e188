"""``bench publish`` and ``bench models``: share a trained model; list and show the published
ones."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from benchmark.cli.console import fail, handles_errors, plain_yaml, print_json
from benchmark.cli.options import JsonFlag, tracking_uri
from benchmark.suite.files import DEFAULT_SUITE
from registry.names import unknown_name_message


@handles_errors
def publish_cmd(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(
        help="The pretrained source dataset to publish (of a fold run: its source).")],
    suite: Annotated[str, typer.Option(help="The suite that pretrained it.")] = DEFAULT_SUITE,
    run: Annotated[Optional[str], typer.Option(
        help="A run id instead: a pretraining, or a fine-tuning fold run of a suite with "
             "keep_models: true (its fine-tuned model).")] = None,
    push: Annotated[Optional[str], typer.Option(help="Also upload to hf:ORG/REPO (HF_TOKEN).")] = None,
    alias: Annotated[str, typer.Option(help="Registry alias for this version.")] = "published",
    out: Annotated[Optional[Path], typer.Option(help="Folder to write (default "
                                                     "BENCH_HOME/published/NAME).")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Publish a pretrained source (or, with --run, a kept fine-tuned fold model): MLflow Model
    Registry version, a timm / Hugging Face folder with its model card, optionally the Hugging
    Face Hub."""
    from benchmark import api  # torch and MLflow: loaded once the flags are known good

    with contextlib.redirect_stdout(sys.stderr):
        pub = api.publish_model(source, ctx.find_root().obj, suite=suite, run_id=run, push=push,
                                alias=alias, out=out, tracking_uri=tracking_uri(),
                                environ=dict(os.environ))
    if json_out:
        print_json(pub.as_json())
        return
    typer.echo(f"{pub.name} version {pub.version} (@{pub.alias}): models:/{pub.name}@{pub.alias}")
    typer.echo(f"folder: {pub.folder}   (timm.create_model('local-dir:{pub.folder}', "
               "pretrained=True))")
    if pub.pushed:
        typer.echo(f"pushed: {pub.pushed}")


@handles_errors
def models_list(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """The published models: registry name, version, alias, source, suite, metrics, folder."""
    if ctx.invoked_subcommand is not None:
        return
    from benchmark import api  # MLflow: loaded once the flags are known good

    rows = api.published_models(ctx.find_root().obj, tracking_uri())
    if json_out:
        print_json(rows)
        return
    if not rows:
        typer.echo("No published models. Publish one with `bench publish SOURCE --suite S`.")
    for r in rows:
        aucs = ", ".join(f"{k.split('.', 1)[1]} {v:.4f}" for k, v in r["metrics"].items()
                         if k.startswith("auc_mean."))
        typer.echo(f"{r['name']}  v{r['version']} {','.join('@' + a for a in r['aliases'])}  "
                   f"source {r['source']}  suite {r['suite']}  {r['arch']}  AUC: {aucs or '-'}  "
                   f"{r['folder']}")


@handles_errors
def models_show(ctx: typer.Context, name: str, json_out: JsonFlag = False) -> None:
    """One published model: its registry facts and its model card."""
    from benchmark import api  # MLflow: loaded once the flags are known good

    rows = {r["name"]: r for r in api.published_models(ctx.find_root().obj, tracking_uri())}
    if name not in rows:
        raise fail(unknown_name_message("published model", name, sorted(rows)) +
                   " List them with `bench models`.")
    row = rows[name]
    card = Path(row["folder"] or "") / "README.md"
    row["card"] = card.read_text() if card.is_file() else None
    if json_out:
        print_json(row)
        return
    typer.echo(plain_yaml({k: v for k, v in row.items() if k != "card"}))
    if row["card"]:
        typer.echo(row["card"])
