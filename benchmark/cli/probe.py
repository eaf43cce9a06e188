"""``bench probe`` and ``bench recommend``: distances between datasets, and which source to
start from for a target."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from benchmark.cli.console import handles_errors, print_json, records
from benchmark.cli.options import JsonFlag, dataset_names, parse_options, tracking_uri
from benchmark.suite.files import DEFAULT_SUITE
from registry.catalog import Catalog
from registry.progress import rich_progress


@handles_errors
def probe_cmd(
    ctx: typer.Context,
    method: Annotated[str, typer.Argument(help="The probe or estimator (listed above).")],
    datasets: Annotated[str, typer.Option(help="Comma-separated registered datasets.")],
    option: Annotated[list[str], typer.Option(help="Probe option KEY=VALUE (YAML).")] = [],
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    json_out: JsonFlag = False,
) -> None:
    """Run a probe on registered datasets (its help lists them: :func:`options.probe_help`)."""
    from benchmark import api  # torch and MLflow: loaded once the flags are known good

    catalog = Catalog.load()
    run = api.probe_datasets(method, dataset_names(datasets, catalog) or [], ctx.find_root().obj,
                             options=parse_options(option), device=device,
                             tracking_uri=tracking_uri(), catalog=catalog,
                             progress=rich_progress)
    result = run.result
    if json_out:
        print_json({**result.as_json(), "run_id": run.run_id, "tracking_uri": run.tracking_uri})
        return
    width = max(len(n) for n in result.datasets)
    typer.echo(" " * width + "  " + "  ".join(f"{n[:10]:>10}" for n in result.datasets))
    for name, row in zip(result.datasets, result.distances):
        typer.echo(f"{name:>{width}}  " + "  ".join(f"{v:10.4f}" for v in row))


@handles_errors
def recommend_cmd(
    ctx: typer.Context,
    target: Annotated[str, typer.Option(help="The dataset to find a source for.")],
    suite: Annotated[str, typer.Option(help="Suite whose results and probes to use.")] = DEFAULT_SUITE,
    method: Annotated[str, typer.Option(
        help="auto (the method with the best weighted tau on the suite's other targets), "
             "learned, best-on-average, static-size, or a probe name.")] = "auto",
    estimator: Annotated[str, typer.Option(
        help="The probe that scores published models beside the suite's (an estimator such "
             "as logme, or features).")] = "logme",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    include_self: Annotated[bool, typer.Option(
        "--include-self", help="Let the target be its own candidate source.")] = False,
    results: Annotated[Optional[str], typer.Option(
        help="Result sets to learn from instead of the suite's store, comma-separated "
             "(imported or built-in: see `bench results`).")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Rank the suite's sources for a target by the method that did best on the suite's other
    targets (or the one named), saying how sure that is: ties named, the nested reliability of
    the choice, every method's weighted Kendall tau and top-1 regret there with 95 % intervals
    and its test against a random pick; rank published models beside the suite's pretrained
    ones by an estimator."""
    from benchmark import api  # torch and MLflow: loaded once the flags are known good

    names = [n.strip() for n in results.split(",") if n.strip()] if results else None
    rec = api.recommend_sources(target, ctx.find_root().obj, suite=suite, method=method,
                                estimator=estimator, tracking_uri=tracking_uri(),
                                device=device, include_self=include_self, results=names)
    if json_out:
        print_json({"target": rec.target, "method": rec.method, "choice": rec.choice,
                    "ranking": records(rec.ranking), "evaluation": records(rec.evaluation),
                    "models": None if rec.models is None else records(rec.models)})
        return
    typer.echo(rec.choice["message"])
    _print_ranking(rec)
    typer.echo("\nEvery method on the suite's other targets (weighted Kendall tau and top-1 "
               "regret with 95 % bootstrap-t intervals over targets, none from fewer than 3; "
               "vs random: the exact permutation test):")
    for _, r in rec.evaluation.iterrows():
        typer.echo(f"  {r['method']:<16} {r['kind']:<9} wtau {_iv(r, 'weighted_tau')}  "
                   f"regret {_iv(r, 'top1_regret', 4)}  "
                   f"vs random {_verdict(r)}")
    if rec.models is not None:
        typer.echo(f"\nSource models by {estimator} on {rec.target} (suite-pretrained and "
                   "published; higher is better; parameters and pretraining images: the "
                   "static ranking's sizes):")
        for i, row in rec.models.iterrows():
            images = row["pretraining_images"]
            images = "?" if images is None or images != images else f"{int(images):,}"  # NaN
            typer.echo(f"  {i + 1}. {row['model']:<40} {row['kind']:<14} "
                       f"{row[estimator]:+.4f}  {int(row['parameters']):>12,} parameters  "
                       f"{images:>9} images")


def _print_ranking(rec) -> None:
    """The ranking, with each source's predicted gain over scratch and its interval."""
    gain = rec.choice.get("gain_model") or {}
    has_gain = "predicted_gain" in rec.ranking and rec.ranking["predicted_gain"].notna().any()
    typer.echo(f"\nSources for {rec.target} by {rec.method} (best first" +
               (f"; predicted gain over scratch, % AUC, with its {100 * gain['level']:.0f} % "
                "prediction interval" if has_gain else "") + "):")
    for i, row in rec.ranking.iterrows():
        line = f"  {i + 1}. {row['source']:<20} score {row['score']:+.4f}"
        if has_gain:
            line += f"  gain {row['predicted_gain']:+6.2f}" + (
                "" if row["gain_low"] != row["gain_low"] else  # NaN: no interval
                f" [{row['gain_low']:+.2f}, {row['gain_high']:+.2f}]")
            flag = row["negative_transfer"]
            line += f"  negative transfer {flag}" if flag else ""
        typer.echo(line)
    if has_gain and gain.get("reason"):
        typer.echo(f"  (no prediction interval: {gain['reason']})")
    elif has_gain:
        cover = gain.get("loto_coverage")
        under = cover is not None and cover < gain["level"] - 0.05
        typer.echo(f"  (gain model: ridge on the pair features, {gain['n_pairs']} pairs of "
                   f"{gain['n_targets']} targets; its interval covered "
                   + ("?" if cover is None else f"{100 * cover:.0f} %")
                   + " of the held-out pairs, leave-one-target-out"
                   + ("; it undercovers on this evidence: read it as optimistic" if under
                      else "") + ")")
    elif gain.get("reason"):
        typer.echo(f"  (no predicted gain: {gain['reason']})")


def _verdict(row) -> str:
    verdict = row["beats_random_weighted_tau_verdict"]
    return "-" if row["method"] == "random" or not isinstance(verdict, str) else verdict


def _iv(row, metric: str, digits: int = 3) -> str:
    """``value [low, high]`` of a metric of an evaluation row; '-' when undefined."""
    value, low, high = row[metric], row[f"{metric}_low"], row[f"{metric}_high"]
    if value is None or value != value:
        return "-"
    value = round(value, 12) + 0.0  # no -0.000 for a null's expectation of -3e-17
    if low is None or low != low:
        return f"{value:+.{digits}f}"
    return f"{value:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"
