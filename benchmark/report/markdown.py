"""Tables as markdown: the results table, and the evaluation of the probes against the
baselines beside the noise ceiling and the spread over repeats."""

from __future__ import annotations

import pandas as pd

from benchmark.analysis.inference import MIN_PAIRED, MIN_TARGETS


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


def _p(p) -> str:
    return "" if p is None or pd.isna(p) else (f"p {p:.2g}" if p >= 0.001 else "p < 0.001")


def vs_random(row: pd.Series, metric: str = "weighted_tau") -> str:
    """The method against a random ranking: the exact permutation p and the verdict."""
    key = f"beats_random_{metric}"
    if row["method"] == "random" or pd.isna(row.get(f"{key}_p")):
        return ""
    return f"{_p(row[f'{key}_p'])}: {row[f'{key}_verdict']}"


def paired(row: pd.Series, baseline: str, metric: str = "weighted_tau") -> str:
    """The method against ``baseline`` on ``metric``: the paired difference with its
    interval over targets, the targets won/tied/lost and the verdict (empty for itself)."""
    key = f"beats_{baseline.replace('-', '_')}_{metric}"
    if row["method"] == baseline or pd.isna(row.get(f"{key}_diff")):
        return ""
    spread = ("" if pd.isna(row[f"{key}_low"]) else
              f" [{row[f'{key}_low']:+.3f}, {row[f'{key}_high']:+.3f}]")
    won, tied, lost = (int(row[f"{key}_{k}"]) for k in ("wins", "ties", "losses"))
    return (f"{row[f'{key}_diff']:+.3f}{spread}, won {won} tied {tied} lost {lost}: "
            f"{row[f'{key}_verdict']}")


def _yes(flag) -> str:
    return {True: "yes", False: "no"}.get(flag if isinstance(flag, bool) else None, "")


def methods_table(a) -> pd.DataFrame:
    """One row per method in words: its figures with their intervals and its verdicts."""
    fid = a.fidelity[a.fidelity["scope"] == "pooled"].set_index("method")
    out = a.without_largest.set_index("method") if a.without_largest is not None else None
    rows = []
    for _, r in a.summary.iterrows():
        m = r["method"]
        rows.append({
            "method": m, "kind": r["kind"], "targets": r["n_targets"],
            "weighted tau": interval(r["weighted_tau"], r["weighted_tau_low"],
                                     r["weighted_tau_high"]),
            "top-1 regret": interval(r["top1_regret"], r["top1_regret_low"],
                                     r["top1_regret_high"], 4),
            "vs random (permutation)": vs_random(r),
            **{f"vs {b} (weighted tau)": paired(r, b) for b in ("best-on-average",
                                                                "static-size")},
            "fidelity": interval(*(fid.loc[m, c] for c in ("fidelity", "fidelity_low",
                                                              "fidelity_high")))
            if m in fid.index else "",
            "without the largest source": interval(
                *(out.loc[m, c] for c in ("weighted_tau_without", "weighted_tau_without_low",
                                          "weighted_tau_without_high")))
            if out is not None and m in out.index else "",
            "at the noise ceiling": _yes(r.get("above_ceiling"))})
    return pd.DataFrame(rows)


def ceiling_table(a) -> pd.DataFrame:
    """Per target and pooled: the split-half tau, the reliability of the mean of the repeats
    and the ceiling of each statistic (the floor of the regret)."""
    rows = []
    for _, r in a.ceiling.iterrows():
        pooled = r["scope"] == "pooled"
        rows.append({"target": "pooled" if pooled else r["target"],
                     "repeats": "" if pd.isna(r["n_repeats"]) else int(r["n_repeats"]),
                     "splits": "" if pd.isna(r["n_splits"]) else int(r["n_splits"]),
                     "split-half tau": interval(r["split_half"], None, None),
                     "reliability": interval(r["reliability"], None, None),
                     **{label: interval(r[f"{m}_ceiling"], r[f"{m}_ceiling_low"],
                                        r[f"{m}_ceiling_high"], 4 if m == "top1_regret" else 3)
                        for m, label in (("weighted_tau", "weighted tau"),
                                         ("kendall_tau", "Kendall tau"),
                                         ("spearman_rho", "Spearman rho"),
                                         ("top1_regret", "regret floor"))},
                     "why undefined": r["reason"] if pd.isna(r["kendall_tau_ceiling"]) else ""})
    return pd.DataFrame(rows)


def _tau_by_target(per: pd.DataFrame, methods) -> pd.DataFrame:
    """Weighted tau per method (rows, in the order of ``methods``) and target (columns), each
    with its exact p against a random ranking on that target where there is one."""
    p = per.get("weighted_tau_p", pd.Series([None] * len(per), index=per.index))
    cells = [interval(v, None, None) + ("" if pd.isna(q) else f" ({_p(q)})")
             for v, q in zip(per["weighted_tau"], p)]
    table = per.assign(cell=cells).pivot(index="method", columns="target", values="cell")
    return table.reindex(methods).reset_index()


def per_target_table(a) -> pd.DataFrame:
    """Weighted tau per method (rows) and target (columns), each with its exact p against a
    random ranking on that target."""
    return _tau_by_target(a.per_target, a.summary["method"])


def evaluation_markdown(a, extra: dict | None = None) -> str:
    """Every method against the baselines (intervals over targets, the exact permutation
    test against a random ranking, paired verdicts), the noise ceiling of each statistic,
    weighted tau per target, the spread over repeats; what the learned ranker could not score
    and why."""
    parts = ["## Methods against baselines\n", METHODS_NOTE, markdown_table(methods_table(a)),
             "\n## Noise ceiling of each statistic, for the mean of the repeats\n",
             markdown_table(ceiling_table(a)),
             "\n## Weighted tau per target (p: exact permutation test against a random "
             "ranking on that target)\n", markdown_table(per_target_table(a))]
    refused = getattr((extra or {}).get("learned"), "attrs", {}).get("refused") or {}
    if refused:
        parts.append("\nThe learned ranker scored no candidates of: " + "; ".join(
            f"{t} ({why})" for t, why in refused.items()) + ".\n")
    if len(a.spread) and a.spread["n_repeats"].max() > 1:
        parts += ["\n## Spread over repeats (mean of each repeat's folds)\n",
                  markdown_table(a.spread, digits=4)]
    return "\n".join(parts)


def _minimums(table: dict) -> str:
    """'5 targets for weighted tau, 8 for kendall tau, ...' from a table of minimums."""
    parts = [f"{n} for {m.replace('_', ' ').replace('top1', 'top-1')}" for m, n in table.items()]
    return parts[0].replace(" for ", " targets for ", 1) + ", " + ", ".join(parts[1:])


METHODS_NOTE = (
    "Means over targets with 95 % studentized-bootstrap (bootstrap-t) intervals over targets, "
    "clipped to the figure's range; their coverage was measured by simulation "
    "(docs/results.md#coverage-of-the-intervals) and holds from "
    f"{_minimums(MIN_TARGETS)}. The random row is the permutation null: its "
    "expectation and the central 95 % of a random ranking's mean. 'vs random' is the exact "
    "permutation test within each target, combined over targets (two-sided verdict at 5 %). "
    "Against best-on-average and static-size: the paired difference with its interval and the "
    f"targets won, tied and lost; a verdict needs {_minimums(MIN_PAIRED)} ('too few "
    "targets to judge' below). 'At the noise ceiling': the method's weighted tau reaches what "
    "the truth's own noise allows.\n")


def summary_rows(summary: pd.DataFrame, first: list[str] | None = None) -> str:
    """A compact evaluation table (``bench score``): per method its targets, weighted tau and
    top-1 regret with intervals, its test against random and its paired verdicts; the methods
    of ``first`` on top."""
    first = list(first or [])
    order = first + [m for m in summary["method"] if m not in first]
    by_method, rows = summary.set_index("method", drop=False), []
    for m in order:
        r = by_method.loc[m]
        rows.append({"method": m, "kind": r["kind"], "targets": int(r["n_targets"]),
                     "weighted tau": interval(r["weighted_tau"], r["weighted_tau_low"],
                                              r["weighted_tau_high"]),
                     "top-1 regret": interval(r["top1_regret"], r["top1_regret_low"],
                                              r["top1_regret_high"], 4),
                     "vs random": vs_random(r),
                     "vs best-on-average": paired(r, "best-on-average"),
                     "vs static-size": paired(r, "static-size"),
                     "at the ceiling": _yes(r.get("above_ceiling"))})
    return markdown_table(pd.DataFrame(rows))


def per_target_rows(per_target: pd.DataFrame, methods: list[str]) -> str:
    """Weighted tau per target of ``methods`` with each target's exact p against random."""
    part = per_target[per_target["method"].isin(methods)]
    if part.empty:
        return ""
    return "\nWeighted tau per target (p: exact permutation test against a random ranking):\n\n" \
        + markdown_table(_tau_by_target(part, methods))
