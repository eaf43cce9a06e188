"""The `bench` command line (Typer). Commands only turn flags into requests; the work is done
in the packages below, which never read flags or the environment."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
import yaml

from benchmark.config import DEFAULT_SUITE
from benchmark.console import (fail, handles_errors, plain_yaml, print_json, records,
                               setup_logging)
from registry.catalog import Catalog
from registry.paths import BenchPaths, resolve_home

app = typer.Typer(name="bench", no_args_is_help=True, add_completion=False,
                  help="Benchmark transfer learning between image datasets.")
datasets_app = typer.Typer(help="List the catalog and registered datasets; show one.")
app.add_typer(datasets_app, name="datasets")
models_app = typer.Typer(help="List the published models; show one.")
app.add_typer(models_app, name="models")
openml_app = typer.Typer(help="OpenML: export a registered dataset as an OpenML dataset.")
app.add_typer(openml_app, name="openml")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
# every registered probe (tests/test_cli_help.py keeps this in step with probes.registry, which
# is not imported here: it would load torch for every command)
PROBE_NAMES = ("expert", "metafeatures", "task2vec", "simex", "otdd", "logme", "leep", "nce",
               "hscore", "features")


@app.callback()
def main(ctx: typer.Context,
         verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False
         ) -> None:
    """Set up logging and resolve BENCH_HOME once for every command."""
    import os

    setup_logging(verbose)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    ctx.obj = BenchPaths(resolve_home())


def _parse_size(text: str) -> tuple[int, int]:
    parts = text.lower().replace(" ", "").split("x")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise fail(f"--size '{text}' is not a size; write HEIGHTxWIDTH (e.g. 112x112) or one "
                   "number for a square.", 2)
    return int(parts[0]), int(parts[1])


def _parse_options(items: list[str], flag: str = "--option") -> dict:
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise fail(f"{flag} '{item}' must look like KEY=VALUE (VALUE is read as YAML).", 2)
        options[key] = yaml.safe_load(value)
    return options


@app.command("add-dataset")
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
    from registry.progress import rich_progress
    from registry.register import AddRequest, add_dataset
    from registry.views import show_dataset

    req = AddRequest(name=name, path=path, card_file=card, format=format,
                     options=_parse_options(option),
                     sizes=tuple(_parse_size(s) for s in size) or None,
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


@datasets_app.callback(invoke_without_command=True)
@handles_errors
def datasets_list(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """List the catalog and the registered datasets."""
    if ctx.invoked_subcommand is not None:
        return
    from registry.views import list_datasets

    rows = list_datasets(Catalog.load(), ctx.find_root().obj)
    if json_out:
        print_json(rows)
        return
    _print_table(rows)


def _print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "aliases", "origin", "modality", "task", "classes", "samples",
                  "obtain", "registered")
    for r in rows:
        table.add_row(r["name"], ",".join(r["aliases"]), r["origin"], r["modality"], r["task"],
                      str(r["classes"]), "" if r["n_samples"] is None else f"{r['n_samples']:,}",
                      r["obtain"], "yes" if r["registered"] else "")
    Console(width=160).print(table)


@datasets_app.command("show")
@handles_errors
def datasets_show(ctx: typer.Context, name: str, json_out: JsonFlag = False) -> None:
    """Card, local counts per class, meta-features and cache files of one dataset."""
    from registry.views import show_dataset

    view = show_dataset(name, Catalog.load(), ctx.find_root().obj)
    if json_out:
        print_json(view)
        return
    typer.echo(plain_yaml(view))


@datasets_app.command("remove")
@handles_errors
def datasets_remove(ctx: typer.Context, name: str) -> None:
    """Unregister a dataset and delete its cache."""
    from registry.register import remove_dataset

    catalog = Catalog.load()
    key = catalog.key(name)
    if not remove_dataset(key, ctx.find_root().obj):
        raise fail(f"'{key}' is not registered; nothing was removed. "
                   "Run `bench datasets` to see what is registered.")
    typer.echo(f"{key}: removed")


def _tracking_uri() -> str | None:
    """MLFLOW_TRACKING_URI, read here only: the library takes the URI as an argument."""
    import os

    return os.environ.get("MLFLOW_TRACKING_URI") or None


def _names(text: str | None, catalog: Catalog) -> list[str] | None:
    if not text:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    return [catalog.canonical(n) if n.lower() in catalog else n for n in names]


def _executor_options(name: str, address: str | None, partition: str | None,
                      gpus_per_job: int | None, cpus_per_job: int | None,
                      array_parallelism: int | None, max_retries: int | None,
                      num_cpus: int | None = None) -> dict:
    """The engine flags that were given, checked against the engine they belong to."""
    given = {"address": address, "partition": partition, "gpus_per_job": gpus_per_job,
             "cpus_per_job": cpus_per_job, "array_parallelism": array_parallelism,
             "max_retries": max_retries, "num_cpus": num_cpus}
    allowed = {"local": {"cpus_per_job"},
               "ray": {"address", "num_cpus", "gpus_per_job", "cpus_per_job", "max_retries"},
               "slurm": {"partition", "gpus_per_job", "cpus_per_job", "array_parallelism"},
               "slurm-local": {"gpus_per_job", "cpus_per_job", "array_parallelism"}}
    opts = {k: v for k, v in given.items() if v is not None}
    wrong = sorted(set(opts) - allowed.get(name, set(opts)))
    if wrong:
        flags = ", ".join("--" + w.replace("_", "-") for w in wrong)
        raise fail(f"{flags} do(es) not apply to --executor {name}.", 2)
    return opts


@app.command("run")
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
        help="Where jobs run: local, ray, slurm or slurm-local.")] = "local",
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
    out: Annotated[Optional[Path], typer.Option(help="Report folder.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Plan and validate only.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Run a benchmark suite: pretrain sources, fine-tune every source on every target per fold,
    train the baselines, run the probes, log everything to MLflow, write the report."""
    from benchmark import api
    from registry.progress import rich_progress

    paths: BenchPaths = ctx.find_root().obj
    catalog = Catalog.load()
    engine = _executor_options(executor, address, partition, gpus_per_job, cpus_per_job,
                               array_parallelism, max_retries, num_cpus)
    if not dry_run:  # a missing extra fails before the plan registers or downloads anything
        from benchmark.executors import check_installed

        check_installed(executor)
    overrides = list(_parse_options(set_, "--set").items())
    if imagenet_weights is not None:
        overrides.append(("sources.imagenet.weights", f"file:{imagenet_weights.expanduser()}"))
    plan = api.plan_suite(suite, paths, overrides=overrides, sources=_names(sources, catalog),
                          targets=_names(targets, catalog), catalog=catalog,
                          progress=rich_progress, tracking_uri=_tracking_uri())
    if dry_run:
        summary = api.plan_status(plan, paths, _tracking_uri())
        if json_out:
            print_json(summary)
        else:
            typer.echo(plain_yaml(summary))
        return
    from registry.progress import RichBoard

    with RichBoard() as board, contextlib.redirect_stdout(sys.stderr):  # MLflow prints links
        options = api.RunOptions(executor=executor, executor_options=engine, device=device,
                                 tracking_uri=_tracking_uri(), out=out, progress=board.factory)
        result = api.run_suite(plan, paths, options, catalog=catalog)
    _print_run(result, json_out)


def _print_run(result, json_out: bool) -> None:
    report = result.report
    doc = {"suite": result.suite, "tracking_uri": result.tracking_uri,
           "experiment_id": result.experiment_id, "executor": result.executor,
           "device": result.device, "jobs_run": len(result.outcomes),
           "jobs_reused": result.reused, "seconds": round(result.seconds, 1),
           "report_run_id": report.run_id,
           "report": {k: str(v) for k, v in report.files.items()},
           "results": records(report.table)}
    if report.correlations is not None:
        doc["correlations"] = records(report.correlations)
    if report.summary is not None:
        doc["evaluation"] = records(report.summary)
    if report.shift_lines is not None:
        doc["shift"] = {"lines": records(report.shift_lines),
                        "sources": records(report.shift_sources)}
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


@app.command("report")
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
    json_out: JsonFlag = False,
) -> None:
    """The results table (CSV, markdown), Fig. 3 and the HTML page from the suite's finished
    MLflow runs; every probe against the baselines (random, best on average, largest source)
    and beside the noise ceiling of the ground truth."""
    from benchmark import api

    report = api.build_report(suite, ctx.find_root().obj, _tracking_uri(), out,
                              include_self=include_self, html=html, mlflow_url=mlflow_url)
    if json_out:
        print_json({"suite": suite, "report": {k: str(v) for k, v in report.files.items()},
                    "results": records(report.table),
                    "evaluation": records(report.summary) if report.summary is not None
                    else None,
                    "shift": None if report.shift_lines is None else
                    {"lines": records(report.shift_lines),
                     "sources": records(report.shift_sources)}})
        return
    typer.echo(report.files["markdown"].read_text())
    for part in ("evaluation_markdown", "shift_markdown"):
        if part in report.files:
            typer.echo(report.files[part].read_text())
    if "html" in report.files:
        typer.echo(f"HTML report: {report.files['html'].resolve().as_uri()}")


@app.command("ui")
def ui_cmd(ctx: typer.Context,
           suite: Annotated[str, typer.Option(help="Suite whose experiment URL to print.")]
           = DEFAULT_SUITE,
           port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
           workers: Annotated[int, typer.Option(help="Server worker processes.")] = 1) -> None:
    """Start the MLflow UI on the local store (127.0.0.1 only) and print the URL of the suite's
    experiment; Ctrl-C or SIGTERM stops the whole server, its workers included. One worker by
    default: a local UI has one user, and on a busy machine uvicorn kills workers that are
    slow to start (MLflow's default is 4)."""
    from bench_core.processes import run_process_group
    from bench_core.stores import tracking_target

    paths: BenchPaths = ctx.find_root().obj
    target = tracking_target(paths.home, _tracking_uri(), f"transfer-bench/{suite}")
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", target.uri,
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if target.artifact_root:
        paths.home.mkdir(parents=True, exist_ok=True)
        command += ["--artifacts-destination", Path(target.artifact_root).as_uri()]
    base = f"http://127.0.0.1:{port}"
    typer.echo(f"MLflow UI for {target.uri} on {base} (Ctrl-C stops it)", err=True)
    typer.echo(_experiment_line(target, base, suite), err=True)
    code = run_process_group(command)
    typer.echo("MLflow UI stopped.", err=True)
    raise typer.Exit(code)


def _experiment_line(target, base: str, suite: str) -> str:
    """Where the suite's runs are in the UI, or how to make them."""
    from mlflow.exceptions import MlflowException

    from bench_core.tracking import experiment_url, open_client

    try:
        exp = open_client(target).get_experiment_by_name(target.experiment)
    except MlflowException as err:  # the UI may still start; say why there is no link
        return f"Could not look up '{target.experiment}' in {target.uri}: {err.message[:200]}"
    if exp is None:
        return (f"No experiment '{target.experiment}' in this store yet: run "
                f"`bench run --suite {suite}` (or pass --suite).")
    return f"suite {suite}: {experiment_url(base, exp.experiment_id)}"


@app.command("probe")
@handles_errors
def probe_cmd(
    ctx: typer.Context,
    method: Annotated[str, typer.Argument(help=f"Probe name: {', '.join(PROBE_NAMES)}.")],
    datasets: Annotated[str, typer.Option(help="Comma-separated registered datasets.")],
    option: Annotated[list[str], typer.Option(help="Probe option KEY=VALUE (YAML).")] = [],
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    json_out: JsonFlag = False,
) -> None:
    """Dataset-similarity probe: distance matrix between datasets, logged to MLflow."""
    from benchmark import api
    from registry.progress import rich_progress

    catalog = Catalog.load()
    run = api.probe_datasets(method, _names(datasets, catalog) or [], ctx.find_root().obj,
                             options=_parse_options(option), device=device,
                             tracking_uri=_tracking_uri(), catalog=catalog,
                             progress=rich_progress)
    result = run.result
    if json_out:
        print_json({**result.as_json(), "run_id": run.run_id, "tracking_uri": run.tracking_uri})
        return
    width = max(len(n) for n in result.datasets)
    typer.echo(" " * width + "  " + "  ".join(f"{n[:10]:>10}" for n in result.datasets))
    for name, row in zip(result.datasets, result.distances):
        typer.echo(f"{name:>{width}}  " + "  ".join(f"{v:10.4f}" for v in row))


@app.command("recommend")
@handles_errors
def recommend_cmd(
    ctx: typer.Context,
    target: Annotated[str, typer.Option(help="The dataset to find a source for.")],
    suite: Annotated[str, typer.Option(help="Suite whose results and probes to use.")] = DEFAULT_SUITE,
    method: Annotated[str, typer.Option(help="A probe name, or 'learned'.")] = "learned",
    estimator: Annotated[str, typer.Option(
        help="Scores published models beside the suite's (logme, leep, nce, hscore, "
        "features).")] = "logme",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    include_self: Annotated[bool, typer.Option(
        "--include-self", help="Let the target be its own candidate source.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Rank the suite's sources for a target; report each method's leave-one-target-out regret
    and weighted Kendall tau beside the baselines (random, best on average, largest source);
    rank published models beside the suite's pretrained ones by an estimator."""
    import pandas as pd

    from benchmark import api

    rec = api.recommend_sources(target, ctx.find_root().obj, suite=suite, method=method,
                                estimator=estimator, tracking_uri=_tracking_uri(),
                                device=device, include_self=include_self)
    summary = rec.evaluation.groupby(["method", "kind"], sort=False).agg(
        mean_regret=("regret", "mean"), mean_weighted_tau=("weighted_tau", "mean"),
        targets=("target", "nunique")).reset_index()
    if json_out:
        print_json({"target": rec.target, "method": method,
                    "ranking": records(rec.ranking), "regret": records(summary),
                    "evaluation": records(rec.evaluation),
                    "models": None if rec.models is None else records(rec.models)})
        return
    typer.echo(f"Sources for {rec.target} by {method} (best first):")
    for i, row in rec.ranking.iterrows():
        typer.echo(f"  {i + 1}. {row['source']:<20} score {row['score']:+.4f}")
    typer.echo("\nLeave-one-target-out (regret: AUC of the best source - AUC of the pick; "
               "weighted Kendall tau of the ranking):")
    for _, row in summary.iterrows():
        tau = "" if pd.isna(row["mean_weighted_tau"]) else f"{row['mean_weighted_tau']:+.3f}"
        typer.echo(f"  {row['method']:<16} {row['kind']:<9} regret {row['mean_regret']:.4f}  "
                   f"wtau {tau:>6}  over {int(row['targets'])} targets")
    if rec.models is not None:
        typer.echo(f"\nSource models by {estimator} on {rec.target} (suite-pretrained and "
                   "published; higher is better):")
        for i, row in rec.models.iterrows():
            typer.echo(f"  {i + 1}. {row['model']:<40} {row['kind']:<14} "
                       f"{row[estimator]:+.4f}")


@app.command("publish")
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
    import os

    from benchmark import api

    with contextlib.redirect_stdout(sys.stderr):
        pub = api.publish_model(source, ctx.find_root().obj, suite=suite, run_id=run, push=push,
                                alias=alias, out=out, tracking_uri=_tracking_uri(),
                                environ=dict(os.environ))
    if json_out:
        print_json(pub.as_json())
        return
    typer.echo(f"{pub.name} version {pub.version} (@{pub.alias}): models:/{pub.name}@{pub.alias}")
    typer.echo(f"folder: {pub.folder}   (timm.create_model('local-dir:{pub.folder}', "
               "pretrained=True))")
    if pub.pushed:
        typer.echo(f"pushed: {pub.pushed}")


@models_app.callback(invoke_without_command=True)
@handles_errors
def models_list(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """The published models: registry name, version, alias, source, suite, metrics, folder."""
    if ctx.invoked_subcommand is not None:
        return
    from benchmark import api

    rows = api.published_models(ctx.find_root().obj, _tracking_uri())
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


@models_app.command("show")
@handles_errors
def models_show(ctx: typer.Context, name: str, json_out: JsonFlag = False) -> None:
    """One published model: its registry facts and its model card."""
    from benchmark import api

    rows = {r["name"]: r for r in api.published_models(ctx.find_root().obj, _tracking_uri())}
    if name not in rows:
        from registry.names import unknown_name_message

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


@openml_app.command("export")
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
    import os

    from registry.openml_export import export_dataset, publish_export

    catalog = Catalog.load()
    key = catalog.key(name)
    export = export_dataset(key, ctx.find_root().obj, out, _parse_size(size) if size else None)
    if publish:
        export = publish_export(export, os.environ.get("OPENML_APIKEY"))
    if json_out:
        print_json(export.as_json())
        return
    typer.echo(f"{export.name}: {export.n_instances} instances x {export.n_features} pixel "
               f"features -> {export.folder}")
    if export.openml_id is not None:
        typer.echo(f"published as OpenML dataset {export.openml_id}")
