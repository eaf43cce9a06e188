"""``bench run`` and ``bench report``: a suite planned, run on an executor, reported."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from benchmark.cli.console import fail, handles_errors, plain_yaml, print_json, records
from benchmark.cli.options import (JsonFlag, dataset_names, extension_help, parse_options,
                                   tracking_uri)
from benchmark.engine.executors.base import EXECUTORS, check_installed, executor_options
from benchmark.suite.files import DEFAULT_SUITE
from benchmark.suite.prepare import plan_suite
from registry.catalog import Catalog
from registry.paths import BenchPaths
from registry.progress import RichBoard, rich_progress


def _engine_options(name: str, extra: dict[str, Any], **flags: Any) -> dict[str, Any]:
    """The engine flags that were given (and ``--engine-option``s), checked against the
    options the executor's constructor takes."""
    given = {k: v for k, v in flags.items() if v is not None}
    taken = set(executor_options(name)) if name in EXECUTORS else set(given) | set(extra)
    wrong = sorted(set(given) - taken)
    if wrong:
        flags_ = ", ".join("--" + w.replace("_", "-") for w in wrong)
        raise fail(f"{flags_} do(es) not apply to --executor {name}.", 2)
    unknown = sorted(set(extra) - taken)
    if unknown:
        raise fail(f"--engine-option {', '.join(unknown)}: not an option of --executor {name} "
                   f"(it takes {', '.join(sorted(taken)) or 'none'}).", 2)
    return given | extra


@handles_errors
def run_cmd(
    ctx: typer.Context,
    suite: Annotated[str, typer.Option(help="Built-in suite name or a suite YAML file.")] = DEFAULT_SUITE,
    sources: Annotated[Optional[str], typer.Option(help="Comma-separated subset of sources.")] = None,
    targets: Annotated[Optional[str], typer.Option(help="Comma-separated subset of targets.")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override KEY.PATH=VALUE (YAML).")] = [],
    imagenet_weights: Annotated[Optional[Path], typer.Option(help="ImageNet weights file.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    executor: Annotated[str, typer.Option(
        help=f"Where jobs run: {extension_help(EXECUTORS.extensions())}.")] = "local",
    address: Annotated[Optional[str], typer.Option(
        help="Ray: cluster address (auto, ray://HOST:10001); default a local instance.")] = None,
    num_cpus: Annotated[Optional[int], typer.Option(
        help="Ray: CPUs of the local instance it starts (default every core; not with "
             "--address).")] = None,
    partition: Annotated[Optional[str], typer.Option(help="Slurm partition.")] = None,
    gpus_per_job: Annotated[Optional[int], typer.Option(help="GPUs per job (Ray, Slurm).")] = None,
    cpus_per_job: Annotated[Optional[int], typer.Option(
        help="CPU threads per job (default: local every core, Ray 1, Slurm 1).")] = None,
    array_parallelism: Annotated[Optional[int], typer.Option(
        help="Slurm: tasks of each job array running at once (slurm-local: jobs at once).")] = None,
    max_retries: Annotated[Optional[int], typer.Option(help="Ray: retries per task.")] = None,
    engine_option: Annotated[list[str], typer.Option(
        help="Any other option of the chosen executor, KEY=VALUE (YAML; e.g. timeout_min=120 "
             "or mem_gb=32 for Slurm; the executor's keywords, see docs/scaling.md).")] = [],
    out: Annotated[Optional[Path], typer.Option(help="Report folder.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Plan and validate only.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Run a benchmark suite: pretrain sources, fine-tune every source on every target per fold,
    train the baselines, run the probes, log everything to MLflow, write the report."""
    paths: BenchPaths = ctx.find_root().obj
    catalog = Catalog.load()
    engine = _engine_options(executor, parse_options(engine_option, "--engine-option"),
                             address=address, partition=partition, gpus_per_job=gpus_per_job,
                             cpus_per_job=cpus_per_job, array_parallelism=array_parallelism,
                             max_retries=max_retries, num_cpus=num_cpus)
    if not dry_run:  # a missing extra fails before the plan registers or downloads anything
        check_installed(executor)
    overrides = list(parse_options(set_, "--set").items())
    if imagenet_weights is not None:
        overrides.append(("sources.imagenet.weights", f"file:{imagenet_weights.expanduser()}"))
    plan = plan_suite(suite, paths, overrides=overrides, sources=dataset_names(sources, catalog),
                      targets=dataset_names(targets, catalog), catalog=catalog,
                      progress=rich_progress, tracking_uri=tracking_uri())
    from benchmark import api  # torch and MLflow: loaded once the plan is known good

    if dry_run:
        summary = api.plan_status(plan, paths, tracking_uri())
        if json_out:
            print_json(summary)
        else:
            typer.echo(plain_yaml(summary))
        return
    with RichBoard() as board, contextlib.redirect_stdout(sys.stderr):  # MLflow prints links
        options = api.RunOptions(executor=executor, executor_options=engine, device=device,
                                 tracking_uri=tracking_uri(), out=out, progress=board.factory)
        result = api.run_suite(plan, paths, options, catalog=catalog)
    _print_run(result, json_out)


def report_doc(report) -> dict[str, Any]:
    """A report as JSON: its files, results, correlations, the evaluation of every method
    (per method with 95 % intervals and paired verdicts, ``evaluation``; per target,
    ``evaluation_per_target``), the noise ceiling, fidelity, the figures without the largest
    source, the distribution shift (keys with null where the suite has none)."""
    a = report.assessment

    def frame(f):
        return None if f is None else records(f)

    return {"report": {k: str(v) for k, v in report.files.items()},
            "results": records(report.table), "correlations": frame(report.correlations),
            "evaluation": frame(report.summary), "evaluation_per_target":
            frame(report.evaluation), "noise_ceiling": frame(a.ceiling) if a else None,
            "fidelity": frame(a.fidelity) if a else None,
            "without_largest": frame(a.without_largest) if a else None,
            "shift": None if report.shift_lines is None else
            {"lines": records(report.shift_lines), "sources": records(report.shift_sources)}}


def _print_run(result, json_out: bool) -> None:
    report = result.report
    doc = {"suite": result.suite, "tracking_uri": result.tracking_uri,
           "experiment_id": result.experiment_id, "executor": result.executor,
           "device": result.device, "jobs_run": len(result.outcomes),
           "jobs_reused": result.reused, "seconds": round(result.seconds, 1),
           "report_run_id": report.run_id, **report_doc(report)}
    if json_out:
        print_json(doc)
        return
    typer.echo(report.files["markdown"].read_text())
    if "correlations_markdown" in report.files:
        typer.echo("Transferability vs probe distance:\n")
        typer.echo(report.files["correlations_markdown"].read_text())
    if "evaluation_markdown" in report.files:
        typer.echo(report.files["evaluation_markdown"].read_text())
    if "shift_markdown" in report.files:
        typer.echo(report.files["shift_markdown"].read_text())
    typer.echo(f"report: {report.files['markdown'].parent}   MLflow: {result.tracking_uri} "
               f"(bench ui --suite {result.suite})")
    if "html" in report.files:
        typer.echo(f"HTML report: {report.files['html'].resolve().as_uri()}")


@handles_errors
def report_cmd(
    ctx: typer.Context,
    suite: Annotated[str, typer.Option(help="Suite name.")] = DEFAULT_SUITE,
    out: Annotated[Optional[Path], typer.Option(help="Report folder.")] = None,
    include_self: Annotated[bool, typer.Option(
        "--include-self", help="Let a target be its own candidate source in the evaluation "
        "of probes (by default it never is).")] = False,
    html: Annotated[bool, typer.Option(
        "--html/--no-html", help="Also write report.html: one self-contained page (figures, "
        "sortable results, dataset cards, MLflow links).")] = True,
    mlflow_url: Annotated[Optional[str], typer.Option(
        help="Base address of the MLflow UI the page links to (default: the tracking "
        "server, or http://127.0.0.1:5000 where `bench ui` serves the local store).")] = None,
    results: Annotated[Optional[str], typer.Option(
        help="Report on a result set (an imported or built-in transfer table) instead of a "
        "suite's store.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """The results table, Fig. 3 and Fig. 4, every method and the baselines (random as its
    permutation null, best on average, static ranking by size) with intervals beside the
    noise ceiling, and the HTML page: of a suite's finished runs, or of a result set."""
    from benchmark import api

    paths = ctx.find_root().obj
    if results is not None:
        report = api.build_results_report(results, paths, out, include_self=include_self,
                                          html=html)
    else:
        report = api.build_report(suite, paths, tracking_uri(), out,
                                  include_self=include_self, html=html, mlflow_url=mlflow_url)
    if json_out:
        print_json({"suite": suite if results is None else None, "results": results,
                    **report_doc(report)})
        return
    typer.echo(report.files["markdown"].read_text())
    for part in ("evaluation_markdown", "shift_markdown"):
        if part in report.files:
            typer.echo(report.files[part].read_text())
    if "html" in report.files:
        typer.echo(f"HTML report: {report.files['html'].resolve().as_uri()}")
