"""Coverage of 95 % intervals for a mean over targets, by simulation (not a test; run by hand):
``python tests/bench/bench_coverage.py [--quick] [--sims N] [--out FILE.json]`` (``--help``
lists the model's parameters). Markdown on stdout, progress on stderr, JSON to ``--out``.

Generative model (a store = T independent targets; seeded ``numpy.random.default_rng``). A
design is S candidate sources x R repeats (4x2 as the default suite, 8x3 as the wide one). Per
target: source quality q_s ~ N(0, 1); reliability 1/sigma^2 log-uniform on ``--reliability``
(noise heterogeneous across targets); AUC of repeat r = 0.8 + 0.03 (q_s + sigma eps_sr), eps ~
N(0, 1); truth = mean of the R repeats. A method scores m_s = rho q_s + sqrt(1 - rho^2) eta_s
(eta ~ N(0, 1), fresh per method), rho drawn per target from the method's scenario:
``weak`` rho = c + h (2 Beta(2, 2) - 1) (``--weak c,h``; mean weighted tau about 0.27, wide
spread), ``strong`` rho = 1 - a Beta(1, 10) (``--strong a``; mean weighted tau about 0.82,
piled at the bound 1), ``null`` rho = 0. The three score the same targets, so the paired
estimands ``strong-weak`` and ``weak-null`` (per-target A - B) use the same stores. Metrics:
weighted tau (scipy's ``weightedtau(truth, score, rank=None)``), Kendall tau-b, Spearman rho,
top-1 regret,
from ``agreement_batch`` (equal to scipy).

Reliability [1, 300] (median repeat-to-repeat correlation 0.95, near the default store's
noise ceiling): on [0.3, 30] even rho = 1 reaches only 0.74 weighted tau on 4x2, so nothing
would sit near the bound. ``--reliability 0.3,30`` runs that noisier world.

Estimand: the POPULATION mean over targets of the per-target figure against the observed
R-repeat truth, by Monte Carlo over ``--estimand-targets`` targets per design (its se printed).
Coverage: share of stores whose interval holds it (binomial se), mean width, side of the misses.

Intervals (nominal ``--level``) over the T per-target values of a store, clipped to the
figure's range ([-1, 1] for a tau, [0, inf) for a regret, [-2, 2] for a difference of taus):
``percentile-2stage`` today's (benchmark/analysis/intervals.py): T targets with replacement,
each drawn slot's R repeats with replacement, truth re-averaged, metric recomputed (scores
fixed), percentile over ``--boot-2stage`` resamples. A repeat draw acts through its counts
only, so each target's metric is computed once per distinct count vector (3 for R = 2, 10 for
R = 3) and a slot draws one with its multinomial probability (the same distribution; paired
differences per slot, on the same draw). ``bayesian-bootstrap`` Dirichlet(1, ..., 1) weights
over targets, percentile. ``t`` mean +- t_{T-1} sd/sqrt(T). ``bootstrap-t`` studentized, over
targets (a resample with sd 0 has t* = +-inf, or 0 at the store's mean; a store with sd 0 gets
its mean as a point interval, as ``t`` does). ``bca`` ``scipy.stats.bootstrap(method='BCa')``
over a block of stores at once (scipy shares its resample indices across the block); NaN ends
(every target equal) give the point interval. ``random-effects-hksj`` within-target variance
v_t of the metric under resampling the target's repeats, EXACT over the count vectors (the
limit of infinitely many draws; floored at 1e-6 so a target no draw changes keeps a finite
weight), DerSimonian-Laird tau^2, Hartung-Knapp-Sidik-Jonkman interval with t_{T-1}; its
centre is the inverse-variance weighted mean, not the plain mean. ``t-fisher-z`` the t-interval
on artanh(0.99 x) mapped back (0.99 keeps tau = 1 finite); single means of the taus only.

Side effects: writes ``--out`` when given (atomically).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from scipy import stats

from benchmark.analysis.batch_metrics import agreement_batch

METRICS = ("weighted_tau", "kendall_tau", "spearman_rho", "top1_regret")
SCENARIOS = ("weak", "strong", "null")
PAIRS = (("strong", "weak"), ("weak", "null"))
SERIES = (*SCENARIOS, *(f"{a}-{b}" for a, b in PAIRS))
PANELS = [(s, m) for s in SERIES for m in METRICS]  # the P figures of one store, in order
V_FLOOR = 1e-6       # smallest within-target variance in the random-effects weights
FISHER_SHRINK = 0.99
QUICK = {"sims": 100, "n_boot": 199, "n_boot_2stage": 200, "estimand_targets": 20_000}


@dataclass(frozen=True)
class Config:
    sims: int = 4000
    targets: tuple[int, ...] = (3, 5, 8, 20, 50)
    designs: tuple[tuple[int, int], ...] = ((4, 2), (8, 3))
    reliability: tuple[float, float] = (1.0, 300.0)
    weak: tuple[float, float] = (0.4, 0.5)
    strong: float = 0.2
    n_boot: int = 999
    n_boot_2stage: int = 1000
    estimand_targets: int = 400_000
    level: float = 0.95
    seed: int = 0
    chunk: int = 2_000_000  # stores x resamples x targets per vectorised block


@dataclass(frozen=True)
class Block:
    """Per-target figures of a block of stores: tab [P, n, T, K] per repeat count vector k
    (probabilities probs [K]); ``full`` is the k that draws every repeat once (the data)."""

    tab: np.ndarray
    probs: np.ndarray
    full: int

    @property
    def x(self) -> np.ndarray:
        return self.tab[..., self.full]


def simulate_targets(rng: np.random.Generator, cfg: Config, n: int, s: int, r: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """n independent targets: AUCs [n, S, R] and the scores [3 (SCENARIOS), n, S]."""
    q = rng.normal(size=(n, s))
    sigma = np.exp(-rng.uniform(*np.log(cfg.reliability), size=n) / 2)
    auc = 0.8 + 0.03 * (q[..., None] + sigma[:, None, None] * rng.normal(size=(n, s, r)))
    rho = {"weak": cfg.weak[0] + cfg.weak[1] * (2 * rng.beta(2, 2, n) - 1),
           "strong": 1 - cfg.strong * rng.beta(1, 10, n), "null": np.zeros(n)}
    scores = [rho[k][:, None] * q + np.sqrt(1 - rho[k][:, None] ** 2) * rng.normal(size=(n, s))
              for k in SCENARIOS]
    return auc, np.stack(scores)


def repeat_outcomes(r: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Every distinct draw of r repeats with replacement: counts [K, r], probabilities [K] and
    the index of the draw that takes each repeat once."""
    counts = np.array([c for c in itertools.product(range(r + 1), repeat=r) if sum(c) == r])
    probs = np.array([math.factorial(r) / math.prod(math.factorial(int(v)) for v in c) / r ** r
                      for c in counts])
    return counts, probs, int(np.flatnonzero((counts == 1).all(1))[0])


def panel_tables(auc: np.ndarray, scores: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Every panel's figure per target and repeat count vector: [P, n, K]."""
    truth = np.einsum("nsr,kr->nks", auc, counts / auc.shape[-1])
    x = np.broadcast_to(truth, (len(SCENARIOS), *truth.shape))
    y = np.broadcast_to(scores[:, :, None, :], x.shape)
    res = agreement_batch(x, y, np.ones(x.shape, dtype=bool))
    single = np.stack([res[m] for m in METRICS], 1)          # [3, M, n, K]
    paired = [single[SCENARIOS.index(a)] - single[SCENARIOS.index(b)] for a, b in PAIRS]
    return np.concatenate([single, np.stack(paired)]).reshape(len(PANELS), *truth.shape[:2])


def panel_bounds() -> tuple[np.ndarray, np.ndarray]:
    """The range of each panel's figure (lower [P], upper [P])."""
    single = np.array([s in SCENARIOS for s, _ in PANELS])
    regret = np.array([m == "top1_regret" for _, m in PANELS])
    hi = np.where(regret, np.inf, np.where(single, 1.0, 2.0))
    return np.where(regret, np.where(single, 0.0, -np.inf), -hi), hi


def estimands(rng: np.random.Generator, cfg: Config, design: tuple[int, int]
              ) -> tuple[np.ndarray, np.ndarray]:
    """Population mean of each panel's figure and its Monte-Carlo standard error ([P] each)."""
    s, r = design
    total, sq, done = np.zeros(len(PANELS)), np.zeros(len(PANELS)), 0
    while done < cfg.estimand_targets:
        n = min(100_000, cfg.estimand_targets - done)
        auc, scores = simulate_targets(rng, cfg, n, s, r)
        vals = panel_tables(auc, scores, np.ones((1, r), dtype=int))[..., 0]
        total, sq, done = total + vals.sum(-1), sq + (vals ** 2).sum(-1), done + n
    mean = total / done
    return mean, np.sqrt((sq / done - mean ** 2) / (done - 1))


# --- the interval methods (each: block, rng, cfg -> low [P, n], high [P, n]) --------------------


def _percentile(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    q = 100 * (1 - level) / 2
    return tuple(np.percentile(draws, [q, 100 - q], axis=-1))


def _mean_se(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(-1), x.std(-1, ddof=1) / np.sqrt(x.shape[-1])


def percentile_2stage(block: Block, rng: np.random.Generator, cfg: Config):
    p, n, t, k = block.tab.shape
    b = cfg.n_boot_2stage
    slot = rng.integers(0, t, (n, b * t))
    drawn = np.searchsorted(np.cumsum(block.probs), rng.random((n, b * t)) * block.probs.sum())
    flat = slot * k + np.minimum(drawn, k - 1)
    means = np.stack([np.take_along_axis(block.tab[i].reshape(n, t * k), flat, 1)
                      .reshape(n, b, t).mean(-1) for i in range(p)])
    return _percentile(means, cfg.level)


def bayesian_bootstrap(block: Block, rng: np.random.Generator, cfg: Config):
    x = block.x                                               # [P, n, T]
    w = rng.standard_exponential((x.shape[1], cfg.n_boot, x.shape[2]))
    w /= w.sum(-1, keepdims=True)
    means = np.matmul(w, np.moveaxis(x, 0, -1))               # [n, B, P]
    return _percentile(np.moveaxis(means, -1, 0), cfg.level)


def t_interval(block: Block, rng: np.random.Generator, cfg: Config):
    return _t_on(block.x, cfg.level)


def _t_on(x: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    mean, se = _mean_se(x)
    half = stats.t.ppf(0.5 + level / 2, x.shape[-1] - 1) * se
    return mean - half, mean + half


def _t_stats(x: np.ndarray, idx: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Studentized means of the resamples idx [n, B, T] of x [n, T] about ``mean`` [n]: +-inf
    where a resample's sd is 0 (0 where its mean is also the store's)."""
    m_b, se_b = _mean_se(np.take_along_axis(x[:, None, :], idx, -1))
    gap = m_b - mean[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(se_b > 1e-12, gap / se_b, np.sign(gap) * np.inf)
    return np.where((se_b <= 1e-12) & (np.abs(gap) <= 1e-12), 0.0, stat)


def bootstrap_t(block: Block, rng: np.random.Generator, cfg: Config):
    x = block.x
    idx = rng.integers(0, x.shape[2], (x.shape[1], cfg.n_boot, x.shape[2]))
    mean, se = _mean_se(x)
    a = (1 - cfg.level) / 2
    q = np.stack([np.quantile(_t_stats(x[i], idx, mean[i]), [1 - a, a], axis=-1,
                              method="inverted_cdf") for i in range(len(x))], 1)  # [2, P, n]
    with np.errstate(invalid="ignore"):
        ends = np.where(se > 0, mean - q * se, mean)
    return ends[0], ends[1]


def bca(block: Block, rng: np.random.Generator, cfg: Config):
    x = block.x
    batch = max(1, cfg.chunk // x.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate stores (every target equal): NaN ends
        res = stats.bootstrap((x,), np.mean, n_resamples=cfg.n_boot, batch=batch,
                              vectorized=True, axis=-1, confidence_level=cfg.level,
                              method="BCa", rng=rng)
    mean = x.mean(-1)
    low, high = res.confidence_interval
    return np.where(np.isnan(low), mean, low), np.where(np.isnan(high), mean, high)


def random_effects_hksj(block: Block, rng: np.random.Generator, cfg: Config):
    tab, y = block.tab, block.x
    t = y.shape[-1]
    centre = tab @ block.probs
    v = np.maximum(((tab - centre[..., None]) ** 2) @ block.probs, V_FLOOR)
    w = 1 / v
    sw = w.sum(-1)
    q = (w * (y - ((w * y).sum(-1) / sw)[..., None]) ** 2).sum(-1)
    tau2 = np.maximum(0.0, (q - (t - 1)) / (sw - (w ** 2).sum(-1) / sw))
    ws = 1 / (v + tau2[..., None])
    mu = (ws * y).sum(-1) / ws.sum(-1)
    var = (ws * (y - mu[..., None]) ** 2).sum(-1) / ((t - 1) * ws.sum(-1))
    half = stats.t.ppf(0.5 + cfg.level / 2, t - 1) * np.sqrt(var)
    return mu - half, mu + half


def t_fisher_z(block: Block, rng: np.random.Generator, cfg: Config):
    applies = np.array([s in SCENARIOS and m != "top1_regret" for s, m in PANELS])
    z = np.arctanh(FISHER_SHRINK * np.clip(block.x, -1, 1))
    low, high = (np.tanh(e) / FISHER_SHRINK for e in _t_on(z, cfg.level))
    return (np.where(applies[:, None], low, np.nan), np.where(applies[:, None], high, np.nan))


METHODS: dict[str, Callable] = {
    "percentile-2stage": percentile_2stage, "bayesian-bootstrap": bayesian_bootstrap,
    "t": t_interval, "bootstrap-t": bootstrap_t, "bca": bca,
    "random-effects-hksj": random_effects_hksj, "t-fisher-z": t_fisher_z}


def run_cell(rng: np.random.Generator, cfg: Config, design: tuple[int, int], t: int,
             truth: np.ndarray, advance: Callable[[int], None]) -> list[dict]:
    """Coverage of every method and panel over ``cfg.sims`` stores of t targets."""
    counts, probs, full = repeat_outcomes(design[1])
    lo_b, hi_b = panel_bounds()
    tally = {m: np.zeros((5, len(PANELS))) for m in METHODS}  # in, below, above, width, valid
    seconds = dict.fromkeys(METHODS, 0.0)
    per_block = max(1, cfg.chunk // (max(cfg.n_boot, cfg.n_boot_2stage) * t))
    done = 0
    while done < cfg.sims:
        n = min(per_block, cfg.sims - done)
        auc, scores = simulate_targets(rng, cfg, n * t, *design)
        block = Block(panel_tables(auc, scores, counts).reshape(len(PANELS), n, t, -1),
                      probs, full)
        for name, method in METHODS.items():
            start = time.perf_counter()
            low, high = method(block, rng, cfg)
            seconds[name] += time.perf_counter() - start
            low, high = np.clip(low, lo_b[:, None], None), np.clip(high, None, hi_b[:, None])
            est = truth[:, None]
            valid = ~(np.isnan(low) | np.isnan(high))
            tally[name] += np.stack([((low <= est) & (est <= high)).sum(-1),
                                     (est < low).sum(-1), (est > high).sum(-1),
                                     np.where(valid, high - low, 0.0).sum(-1), valid.sum(-1)])
        done += n
        advance(n)
    return [_record(design, t, name, i, tally[name][:, i], seconds[name])
            for name in METHODS for i in range(len(PANELS))]


def _record(design: tuple[int, int], t: int, method: str, panel: int, row: np.ndarray,
            seconds: float) -> dict:
    inside, below, above, width, valid = row
    series, metric = PANELS[panel]
    rec = {"design": f"{design[0]}x{design[1]}", "targets": t, "series": series,
           "metric": metric, "method": method, "sims": int(valid), "seconds": seconds}
    if valid == 0:  # the method does not apply to this panel
        return {**rec, "coverage": None}
    cov = inside / valid
    return {**rec, "coverage": cov, "se": math.sqrt(cov * (1 - cov) / valid),
            "width": width / valid, "truth_above": above / valid, "truth_below": below / valid}


def run(cfg: Config, console: Console | None = None) -> dict:
    """Every design, number of targets, method and panel -> the result (see ``main``)."""
    console = console or Console(stderr=True)
    seeds = np.random.SeedSequence(cfg.seed).spawn(len(cfg.designs) * (1 + len(cfg.targets)))
    rngs = iter(np.random.default_rng(s) for s in seeds)
    records, truths, start = [], [], time.perf_counter()
    with Progress(console=console, transient=not console.is_terminal) as progress:
        for design in cfg.designs:
            mean, se = estimands(next(rngs), cfg, design)
            truths += [{"design": f"{design[0]}x{design[1]}", "series": s, "metric": m,
                        "value": float(mean[i]), "mc_se": float(se[i])}
                       for i, (s, m) in enumerate(PANELS)]
            for t in cfg.targets:
                task = progress.add_task(f"{design[0]}x{design[1]}, {t} targets", total=cfg.sims)
                records += run_cell(next(rngs), cfg, design, t, mean,
                                    lambda n, task=task: progress.advance(task, n))
    return {"config": asdict(cfg), "seconds": time.perf_counter() - start,
            "estimands": truths, "coverage": records}


def _cell(rec: dict) -> str:
    if rec["coverage"] is None:
        return "-"
    return f"{100 * rec['coverage']:.1f}±{100 * rec['se']:.1f} ({rec['width']:.3g})"


def worst_coverage(result: dict, keep: Callable[[dict], bool] = lambda r: True
                   ) -> dict[str, dict[int, float]]:
    """Per method and number of targets: the lowest coverage over the kept cells."""
    worst: dict[str, dict[int, float]] = {}
    for rec in result["coverage"]:
        if rec["coverage"] is not None and keep(rec):
            row = worst.setdefault(rec["method"], {})
            row[rec["targets"]] = min(row.get(rec["targets"], 1.0), rec["coverage"])
    return worst


def _worst_table(result: dict, title: str, keep: Callable[[dict], bool]) -> list[str]:
    targets = result["config"]["targets"]
    lines = [f"**{title}**", "", "| method | " + " | ".join(f"T={t}" for t in targets)
             + " | >= 93 % from |", "|---|" + "---:|" * (len(targets) + 1)]
    for method, row in worst_coverage(result, keep).items():
        lines.append(f"| {method} | " + " | ".join(
            f"{100 * row[t]:.1f}" if t in row else "-" for t in targets)
            + f" | {covered_from(row) or 'never'} |")
    return [*lines, ""]


def covered_from(row: dict[int, float], floor: float = 0.93) -> int | None:
    """The fewest targets from which every cell covers at least ``floor`` (None: never)."""
    return next((t for t in sorted(row) if all(c >= floor for u, c in row.items() if u >= t)),
                None)


def markdown(result: dict) -> str:
    cfg, targets = result["config"], result["config"]["targets"]
    out = [f"# Coverage of nominal {100 * cfg['level']:.0f} % intervals for the mean over "
           f"targets", "", f"{cfg['sims']} stores per cell; bootstrap draws {cfg['n_boot']} "
           f"(two-stage {cfg['n_boot_2stage']}); reliability {cfg['reliability']}; "
           f"{result['seconds']:.0f} s. Cells: coverage % ± binomial se (mean width).", "",
           "## Estimands (population mean, Monte-Carlo se)", "",
           "| design | series | " + " | ".join(METRICS) + " |",
           "|---|---|" + "---:|" * len(METRICS)]
    est = {(e["design"], e["series"], e["metric"]): e for e in result["estimands"]}
    for design in dict.fromkeys(e["design"] for e in result["estimands"]):
        for s in SERIES:
            vals = [est[design, s, m] for m in METRICS]
            out.append(f"| {design} | {s} | " + " | ".join(
                f"{e['value']:.4f} ± {e['mc_se']:.4f}" for e in vals) + " |")
    out += ["", "## Worst coverage over cells (%)", ""]
    views = [("every design, series and metric", lambda r: True),
             *((f"{m}, {k}", lambda r, m=m, k=k: r["metric"] == m
                and (r["series"] in SCENARIOS) == (k == "single means"))
               for m in METRICS for k in ("single means", "paired differences"))]
    for title, keep in views:
        out += _worst_table(result, title, keep)
    cells = {(r["design"], r["metric"], r["series"], r["method"], r["targets"]): r
             for r in result["coverage"]}
    for design, metric in dict.fromkeys((r["design"], r["metric"]) for r in result["coverage"]):
        out += [f"## {design}, {metric}", "",
                "| series | method | " + " | ".join(f"T={t}" for t in targets) + " |",
                "|---|---|" + "---:|" * len(targets)]
        for s in SERIES:
            for m in METHODS:
                out.append(f"| {s} | {m} | " + " | ".join(
                    _cell(cells[design, metric, s, m, t]) for t in targets) + " |")
        out.append("")
    return "\n".join(out)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def parse_config(argv: list[str] | None) -> tuple[Config, Path | None]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=f"few sims: {QUICK}")
    p.add_argument("--sims", type=int, help="stores per cell (4000; quick 100)")
    p.add_argument("--out", type=Path, help="write the result as JSON here")
    p.add_argument("--targets", default="3,5,8,20,50")
    p.add_argument("--designs", default="4x2,8x3", help="sources x repeats, comma separated")
    p.add_argument("--reliability", default="1,300", help="1/sigma^2 log-uniform on LO,HI")
    p.add_argument("--weak", default="0.4,0.5", help="rho centre,half-width")
    p.add_argument("--strong", type=float, default=0.2, help="rho = 1 - A Beta(1, 10)")
    p.add_argument("--boot", type=int, dest="n_boot")
    p.add_argument("--boot-2stage", type=int, dest="n_boot_2stage")
    p.add_argument("--estimand-targets", type=int)
    p.add_argument("--level", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    base = replace(Config(), **QUICK) if a.quick else Config()
    given = {k: getattr(a, k) for k in QUICK if getattr(a, k) is not None}
    designs = tuple(tuple(int(v) for v in d.split("x")) for d in a.designs.split(","))
    cfg = replace(base, **given, targets=tuple(int(v) for v in a.targets.split(",")),
                  designs=designs, reliability=_floats(a.reliability), weak=_floats(a.weak),
                  strong=a.strong, level=a.level, seed=a.seed)
    return cfg, a.out


def main(argv: list[str] | None = None) -> dict:
    """Run, print the markdown on stdout, write JSON to ``--out``; returns the result."""
    cfg, out = parse_config(argv)
    result = run(cfg)
    print(markdown(result))
    if out is not None:
        clean = json.loads(json.dumps(result), parse_constant=lambda c: None)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(clean, indent=1, allow_nan=False))
        tmp.replace(out)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
