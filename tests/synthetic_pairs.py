"""Synthetic pair tables for the ranker's tests and for the ranker comparison.

:func:`realistic_pairs` resembles the benchmark: suites of datasets, each dataset a target whose
candidates are the other datasets of its suite (4-10 candidates); the truth AUC of source ->
target rises with latent domain similarity and the source's size, plus pair-specific effects the
features cannot see and measurement noise; probes see the latent similarity through noise, with a
target-specific scale and offset (raw distances are not comparable across targets) and missing
values; estimators are noisy views of the true gain with sources they cannot score (NaN);
per-dataset expert (categorical) and statistical meta-features, some of them pure noise.
``interaction`` (0..1) moves the truth from additive effects to products of them (a large
source helps only a related target).

:func:`one_feature_pairs`: one feature ``est:signal`` determines the truth up to noise, another
``est:random`` is noise; ``n_targets`` targets x ``n_sources`` sources.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.analysis.pair_features import pair_table


def one_feature_pairs(seed: int = 0, n_targets: int = 8, n_sources: int = 6,
                      noise: float = 0.1, nan_rate: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for j in range(n_targets):
        base = rng.uniform(0.6, 0.85)
        for i in range(n_sources):
            signal = rng.normal()
            auc = base + 0.03 * (signal + noise * rng.normal())
            rows.append({"source": f"s{i}", "target": f"t{j}", "auc": auc,
                         "est:signal": signal, "est:random": rng.normal(),
                         "dist:weak": -abs(rng.normal()) + 0.2 * signal})
    pairs = pd.DataFrame(rows)
    if nan_rate:
        for c in ("est:signal", "est:random", "dist:weak"):
            mask = rng.random(len(pairs)) < nan_rate
            pairs.loc[mask, c] = np.nan
    return pairs


def realistic_pairs(seed: int = 0, suite_sizes: tuple[int, ...] = (5, 6, 7),
                    pair_noise: float = 0.3, measure_sd: float = 0.004,
                    interaction: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names, suite, z, logsize, nclass = [], [], [], [], []
    for k, n in enumerate(suite_sizes):
        centre = rng.normal(0, 1.5, 4)
        for i in range(n):
            names.append(f"d{k}_{i}")
            suite.append(k)
            z.append(centre + rng.normal(0, 1.0, 4))
            logsize.append(rng.uniform(2.7, 4.8))
            nclass.append(int(np.exp(rng.uniform(np.log(2), np.log(100)))))
    z, logsize, nclass = np.array(z), np.array(logsize), np.array(nclass)
    n = len(names)
    scratch = rng.uniform(0.65, 0.9, n)
    dist = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1))
    cls = np.abs(np.log(nclass)[:, None] - np.log(nclass)[None, :])
    # the part of the gain the features can see, and a pair effect they cannot
    near, big = np.exp(-dist ** 2 / 8), (logsize[:, None] - 2.7) / 2.1
    additive = 1.2 * near + 0.5 * big - 0.15 * cls
    # interaction: a big source helps only a near target, classes matter only when near
    product = 2.4 * near * big + 0.3 * near - 0.3 * near * cls
    gain = ((1 - interaction) * additive + interaction * product
            + pair_noise * rng.normal(size=(n, n)))
    auc = scratch[None, :] + (1 - scratch[None, :]) * 0.8 / (1 + np.exp(-2.5 * (gain - 0.7)))
    auc = auc + rng.normal(0, measure_sd, (n, n))
    truth, otdd, t2v, logme, leep = [], [], [], [], []
    scale, offset = rng.uniform(0.5, 2, n), rng.uniform(0, 2, n)
    e_scale, e_offset = rng.uniform(0.5, 3, n), rng.uniform(-2, 2, n)
    pretrained = rng.random(n) > 0.3
    for i in range(n):
        for j in range(n):
            if i == j or suite[i] != suite[j]:
                continue
            s, t = names[i], names[j]
            transfer = (auc[i, j] - scratch[j]) / scratch[j] * 100
            truth.append({"source": s, "target": t, "auc": auc[i, j],
                          "transferability": transfer})
            d = dist[i, j] * scale[j] + offset[j] + rng.normal(0, 0.5)
            otdd.append({"source": s, "target": t,
                         "value": np.nan if rng.random() < 0.1 else d})
            d2 = np.sqrt(((z[i, :2] - z[j, :2]) ** 2).sum()) + rng.normal(0, 0.7)
            t2v.append({"source": s, "target": t,
                        "value": np.nan if rng.random() < 0.3 else d2})
            g = gain[i, j]  # estimators look at the pair itself: they see its effect, noisily
            e = (g + rng.normal(0, 0.35)) * e_scale[j] + e_offset[j]
            logme.append({"source": s, "target": t, "value": e if pretrained[i] else np.nan})
            leep.append({"source": s, "target": t,
                         "value": (0.5 * g + rng.normal(0, 0.5)) if pretrained[i] else np.nan})
    expert = pd.DataFrame({"origin": [f"o{k}" for k in suite],
                           "color": np.where(z[:, 0] > np.median(z[:, 0]), "rgb", "gray"),
                           "content": np.where(z[:, 1] > 0, "natural", "synthetic"),
                           "n_classes": nclass.astype(float)}, index=names)
    meta = pd.DataFrame({"log_instances": logsize + rng.normal(0, 0.05, n),
                         "intensity_mean": z[:, 2] + rng.normal(0, 0.5, n),
                         "intensity_std": z[:, 3] + rng.normal(0, 0.5, n),
                         "noise_a": rng.normal(size=n), "noise_b": rng.normal(size=n)},
                        index=names)
    sizes = dict(zip(names, np.round(10 ** logsize)))
    return pair_table(pd.DataFrame(truth),
                      distances={"otdd": pd.DataFrame(otdd), "task2vec": pd.DataFrame(t2v)},
                      scores={"logme": pd.DataFrame(logme), "leep": pd.DataFrame(leep)},
                      datasets={"expert": expert, "meta": meta}, sizes=sizes)
