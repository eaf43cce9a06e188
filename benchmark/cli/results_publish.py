"""``bench results publish``: share a result set as a Hugging Face dataset folder (optionally
pushed to the Hub) and, with --openml, as an OpenML dataset's files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from benchmark.cli.console import handles_errors, print_json
from benchmark.cli.options import JsonFlag


@handles_errors
def publish_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The result set to publish.")],
    out: Annotated[Optional[Path], typer.Option(help="Folder to write (default "
                                                     "BENCH_HOME/published-results/NAME).")
                   ] = None,
    push: Annotated[Optional[str], typer.Option(help="Also upload to the dataset repo "
                                                     "hf:ORG/NAME (HF_TOKEN).")] = None,
    openml: Annotated[bool, typer.Option("--openml", help="Also write the table as an OpenML "
                                                          "dataset (openml/ in the folder).")
                      ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Publish a result set: a Hugging Face dataset folder (Parquet per resource, a dataset
    card with the datasheet, the Data Package descriptor), optionally pushed to the Hub and
    written as an OpenML dataset. A table of unknown licence is refused."""
    from benchmark import api  # the library: loaded once the flags are known good

    pub = api.publish_results(name, ctx.find_root().obj, out=out, push=push, openml=openml,
                              environ=dict(os.environ))
    if json_out:
        print_json(pub.as_json())
        return
    configs = ", ".join(f"{k} ({n} rows)" for k, n in pub.configs.items())
    typer.echo(f"{name}: published -> {pub.folder} ({pub.version[:19]}..., "
               f"{'; '.join(pub.licence)})")
    typer.echo(f"Hugging Face dataset: {configs}; datasets.load_dataset('{pub.folder}', "
               "'results')")
    if pub.openml is not None:
        typer.echo(f"OpenML dataset: {pub.openml.n_instances} instances x "
                   f"{pub.openml.n_features} features + target 'value' -> {pub.openml.folder}")
    if pub.pushed:
        typer.echo(f"pushed: {pub.pushed}")
