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


def evaluation_markdown(summary: pd.DataFrame, ceiling: pd.DataFrame,
                        spread: pd.DataFrame) -> str:
    """The probes-against-baselines table, the noise ceiling per target and the spread."""
    cols = ["method", "kind", "n_targets", "weighted_tau", "kendall_tau", "spearman_rho",
            "top1_regret", "noise_ceiling", "beats_random_weighted_tau",
            "beats_best_on_average_weighted_tau", "beats_largest_source_weighted_tau",
            "beats_best_on_average_top1_regret"]
    parts = ["## Probes against baselines (means over targets)\n",
             markdown_table(summary[[c for c in cols if c in summary]], digits=3),
             "\n## Noise ceiling (split-half Kendall tau of the ground truth)\n",
             markdown_table(ceiling, digits=3)]
    if len(spread) and spread["n_repeats"].max() > 1:
        parts += ["\n## Spread over repeats (mean of each repeat's folds)\n",
                  markdown_table(spread, digits=4)]
    return "\n".join(parts)

