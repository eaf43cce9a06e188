"""The ``bench`` Typer application: its sub-commands, each defined in the module named for
what it is about, registered here (so no command module imports the app)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from benchmark.cli import datasets, probe, publish, results, results_publish, run, ui
from benchmark.cli.console import setup_logging
from benchmark.cli.options import probe_help
from registry.paths import BenchPaths, resolve_home

# markdown: docstrings wrapped in the source reflow into paragraphs in every --help
app = typer.Typer(name="bench", no_args_is_help=True, add_completion=False,
                  rich_markup_mode="markdown",
                  help="Benchmark transfer learning between image datasets.")
datasets_app = typer.Typer(help="List the catalog and registered datasets; show or remove one.",
                           rich_markup_mode="markdown")
models_app = typer.Typer(help="List the published models; show one.",
                         rich_markup_mode="markdown")
openml_app = typer.Typer(help="Export a registered dataset as an OpenML dataset.",
                         rich_markup_mode="markdown")
results_app = typer.Typer(help="Result sets (transfer tables): export, import, list, show, "
                               "remove, publish.", rich_markup_mode="markdown")
app.add_typer(datasets_app, name="datasets")
app.add_typer(results_app, name="results")
app.add_typer(models_app, name="models")
app.add_typer(openml_app, name="openml")


@app.callback()
def main(ctx: typer.Context,
         verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False
         ) -> None:
    """Set up logging and resolve BENCH_HOME once for every command."""
    setup_logging(verbose)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    ctx.obj = BenchPaths(resolve_home())


def _lists(group: typer.Typer, list_cmd) -> None:
    """A group lists on its own (`bench datasets`, the design's contract) and by `list`, as
    its help says."""
    group.callback(invoke_without_command=True)(list_cmd)
    group.command("list")(list_cmd)


# `bench --help` gives one short line per command, as git does; each command's own --help the
# whole story
app.command("add-dataset", short_help="Register a dataset: validate, decode once, describe.")(
    datasets.add_dataset_cmd)
_lists(datasets_app, datasets.datasets_list)
datasets_app.command("show")(datasets.datasets_show)
datasets_app.command("remove")(datasets.datasets_remove)
openml_app.command("export")(datasets.openml_export_cmd)
app.command("run", short_help="Run a suite: pretrain, fine-tune, probe, log, report.")(
    run.run_cmd)
app.command("report", short_help="Rebuild the report of a suite or of a result set.")(
    run.report_cmd)
app.command("ui", short_help="Open the MLflow UI on the local store.")(ui.ui_cmd)
app.command("probe", short_help="Run a probe or estimator on registered datasets.",
            help=probe_help())(probe.probe_cmd)
app.command("recommend", short_help="Rank sources for a target, and say how far to trust it.")(
    probe.recommend_cmd)
app.command("publish", short_help="Publish a pretrained source (registry, timm folder, Hub).")(
    publish.publish_cmd)
_lists(models_app, publish.models_list)
models_app.command("show")(publish.models_show)
_lists(results_app, results.list_cmd)
results_app.command("export")(results.export_cmd)
results_app.command("import")(results.import_cmd)
results_app.command("show")(results.show_cmd)
results_app.command("remove")(results.remove_cmd)
results_app.command("publish")(results_publish.publish_cmd)
app.command("score", short_help="Judge a method's scores against an existing ground truth.")(
    results.score_cmd)


if __name__ == "__main__":  # python -m benchmark.cli.app, as the `bench` script
    app()
