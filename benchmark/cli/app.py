"""The ``bench`` Typer application: its sub-commands, each defined in the module named for
what it is about, registered here (so no command module imports the app)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from benchmark.cli import datasets, probe, publish, results, results_publish, run, ui
from benchmark.cli.console import setup_logging
from registry.paths import BenchPaths, resolve_home

app = typer.Typer(name="bench", no_args_is_help=True, add_completion=False,
                  help="Benchmark transfer learning between image datasets.")
datasets_app = typer.Typer(help="List the catalog and registered datasets; show one.")
models_app = typer.Typer(help="List the published models; show one.")
openml_app = typer.Typer(help="OpenML: export a registered dataset as an OpenML dataset.")
results_app = typer.Typer(help="Result sets (transfer tables): export, import, list, show, "
                               "remove, publish.")
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


app.command("add-dataset")(datasets.add_dataset_cmd)
datasets_app.callback(invoke_without_command=True)(datasets.datasets_list)
datasets_app.command("show")(datasets.datasets_show)
datasets_app.command("remove")(datasets.datasets_remove)
openml_app.command("export")(datasets.openml_export_cmd)
app.command("run")(run.run_cmd)
app.command("report")(run.report_cmd)
app.command("ui")(ui.ui_cmd)
app.command("probe")(probe.probe_cmd)
app.command("recommend")(probe.recommend_cmd)
app.command("publish")(publish.publish_cmd)
models_app.callback(invoke_without_command=True)(publish.models_list)
models_app.command("show")(publish.models_show)
results_app.callback(invoke_without_command=True)(results.list_cmd)
results_app.command("export")(results.export_cmd)
results_app.command("import")(results.import_cmd)
results_app.command("show")(results.show_cmd)
results_app.command("remove")(results.remove_cmd)
results_app.command("publish")(results_publish.publish_cmd)
app.command("score")(results.score_cmd)


if __name__ == "__main__":  # python -m benchmark.cli.app, as the `bench` script
    app()
