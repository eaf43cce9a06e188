"""Tables as markdown: the results table, and the evaluation of the probes against the
baselines beside the noise ceiling and the spread over repeats."""

from __future__ import annotations

import pandas as pd


def markdown_table(table: pd.DataFrame, digits: int = 4) -> str:
    shown = table.drop(columns=["run_id"], errors="ignore")
    head = "| " + " | ".join(shown.columns) + " |"
    sep = "|" + "---|" * len(shown.columns)
    lines = [head, sep]
    for _, row in shown.iterrows():
        cells = []
        for col, value in row.items():
            if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
                cells.append("")
            elif col in ("k", "folds", "n"):
                cells.append(str(int(value)))
            elif isinstance(value, float):
                cells.append(f"{value:.2f}" if "transferability" in col else f"{value:.{digits}f}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def interval(value, low, high, digits: int = 3) -> str:
    """``value [low, high]``; the bare value where the interval is undefined; empty for NaN."""
    if value is None or pd.isna(value):
        return ""
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def paired(row: pd.Series, baseline: str, metric: str = "weighted_tau") -> str:
    """The method against ``baseline`` on ``metric``: the difference with its interval, the
    share of resamples it wins and the verdict (``=`` itself, empty for baselines' rows)."""
    key = f"beats_{baseline.replace('-', '_')}_{metric}"
    if row["method"] == baseline or pd.isna(row.get(f"{key}_diff")):
        return ""
    verdict = row[f"{key}_verdict"] or "undefined"
    return (f"{row[f'{key}_diff']:+.3f} [{row[f'{key}_low']:+.3f}, {row[f'{key}_high']:+.3f}] "
            f"wins {100 * row[f'{key}_win_share']:.0f}%: {verdict}")


def methods_table(a) -> pd.DataFrame:
    """One row per method in words: its figures with their intervals and its verdicts."""
    fid = a.fidelity[a.fidelity["scope"] == "pooled"].set_index("method")
    out = a.without_largest.set_index("method") if a.without_largest is not None else None
    rows = []
    for _, r in a.summary.iterrows():
        m = r["method"]
        row = {"method": m, "kind": r["kind"], "targets": r["n_targets"],
               "weighted tau": interval(r["weighted_tau"], r["weighted_tau_low"],
                                        r["weighted_tau_high"]),
               "top-1 regret": interval(r["top1_regret"], r["top1_regret_low"],
                                        r["top1_regret_high"], 4),
               **{f"vs {b} (weighted tau)": paired(r, b)
                  for b in ("random", "best-on-average", "static-size")},
               "fidelity": interval(*(fid.loc[m, c] for c in ("fidelity", "fidelity_low",
                                                                 "fidelity_high")))
               if m in fid.index else "",
               "without the largest source": interval(
                   *(out.loc[m, c] for c in ("weighted_tau_without", "weighted_tau_without_low",
                                             "weighted_tau_without_high")))
               if out is not None and m in out.index else "",
               "Kendall tau above the ceiling": {True: "yes", False: "no"}.get(
                   r["above_ceiling"], "")}
        rows.append(row)
    return pd.DataFrame(rows)


def ceiling_table(a) -> pd.DataFrame:
    rows = []
    for _, r in a.ceiling.iterrows():
        rows.append({"target": "pooled" if r["scope"] == "pooled" else r["target"],
                     "repeats": "" if pd.isna(r["n_repeats"]) else int(r["n_repeats"]),
                     "split-half tau": interval(r["split_half"], r["split_half_low"],
                                                r["split_half_high"]),
                     "ceiling for the mean of the repeats": interval(
                         r["noise_ceiling"], r["noise_ceiling_low"], r["noise_ceiling_high"]),
                     "why undefined": r["reason"] if pd.isna(r["noise_ceiling"]) else ""})
    return pd.DataFrame(rows)


def evaluation_markdown(a, extra: dict | None = None) -> str:
    """Every method against the baselines with 95 % bootstrap intervals (targets and repeats
    resampled) and paired verdicts, the noise ceiling per target, weighted tau per target, the
    spread over repeats; what the learned ranker could not score and why."""
    per = a.per_target.assign(cell=[interval(v, lo, hi) for v, lo, hi in zip(
        a.per_target["weighted_tau"], a.per_target["weighted_tau_low"],
        a.per_target["weighted_tau_high"])])
    by_target = per.pivot(index="method", columns="target", values="cell")
    by_target = by_target.reindex(a.summary["method"]).reset_index()
    parts = ["## Methods against baselines (95 % bootstrap intervals over targets and repeats)\n",
             "A method is better or worse than a baseline only when the interval of their "
             "paired difference excludes 0; 'wins' is the share of resamples where it is "
             "better.\n", markdown_table(methods_table(a)),
             "\n## Noise ceiling (Kendall tau), corrected to the number of repeats\n",
             markdown_table(ceiling_table(a)),
             "\n## Weighted tau per target (interval: that target's repeats resampled)\n",
             markdown_table(by_target)]
    refused = getattr((extra or {}).get("learned"), "attrs", {}).get("refused") or {}
    if refused:
        parts.append("\nThe learned ranker scored no candidates of: " + "; ".join(
            f"{t} ({why})" for t, why in refused.items()) + ".\n")
    if len(a.spread) and a.spread["n_repeats"].max() > 1:
        parts += ["\n## Spread over repeats (mean of each repeat's folds)\n",
                  markdown_table(a.spread, digits=4)]
    return "\n".join(parts)
