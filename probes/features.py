"""Feature-behaviour probe (Garcia-Gasulla et al. 2018): how many of a source network's features describe each
class of a target dataset by their presence or by their absence.

After Garcia-Gasulla et al., "On the Behavior of Convolutional Nets for Feature Extraction"
(JAIR 2018), whose finding is that CNN features of every layer are discriminative for a class
both when they fire (presence) and when they stay silent (absence). Per (source model, target
dataset):

1. Run the source model (eval mode) on a seeded sample of at most ``max_samples`` target images
   and take every stage's feature map (timm's ``forward_intermediates`` / ``feature_info``:
   ``act1, layer1 .. layer4`` for a ResNet; forward hooks where a model lacks it), averaged
   over space -> (n, C_stage).
2. Standardize each feature over the n samples (z-score; a constant feature -> 0) and
   discretize: z < ``absent`` -> -1 (absent), z > ``present`` -> +1 (present), else 0. The
   defaults, -0.25 and +0.15, are the authors' thresholds from their full-network-embedding
   work (Garcia-Gasulla et al., 2018); both are options.
3. For each class c and feature f, two one-sided Mann-Whitney U tests of f's standardized
   values in c against the other classes (higher: presence; lower: absence; the normal
   approximation with tie and continuity corrections, i.e. scipy's ``mannwhitneyu`` with
   ``method="asymptotic"``, computed from one ranking per layer), with Benjamini-Hochberg
   control of the false discovery rate ``alpha`` over all features x
   classes x directions of a layer. f is *present-discriminative* for c when significant for
   presence and c's mean discretized value is > 0, *absent-discriminative* when significant for
   absence and that mean is < 0, and *below threshold* when significant in either direction
   while c's mean standardized value lies within [absent, present] -- the signal that the
   discretization discards. The categories are not exclusive: a below-threshold feature can
   also be counted present or absent (its discretized mean may still lean to one side).
4. Score = mean over layers and classes of (n_present + n_absent) / n_features: the share of
   the source's features that a discretized embedding can use to describe a target class
   (higher = the source describes the target better). The matrix holds distance = -score,
   rows = source models, columns = target data, rows of datasets without a model NaN and the
   diagonal 0, as the transferability estimator probes.

Departures from the paper: we do not have its full text, so the statistical test (one-sided
Mann-Whitney U with Benjamini-Hochberg correction), the class-mean criteria above and the
summary score are our choices, not the authors'. Features are spatially averaged stage outputs
of the suite's (small, low-resolution) source models rather than every layer of an ImageNet
VGG16, and one sample of the target's images stands for the dataset.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch
from pydantic import model_validator
from matplotlib.figure import Figure
from scipy.stats import false_discovery_control, norm, rankdata

from bench_core.batches import BatchPrep
from probes.base import ProbeError, register_probe
from probes.model_scoring import ModelScoringOptions, ModelScoringProbe

FALLBACK_STAGES = ("layer1", "layer2", "layer3", "layer4")

# -- numerical core (numpy only) --------------------------------------------------------------


def standardize(x: np.ndarray) -> np.ndarray:
    """Z-score each column of ``x`` (n, C) over its n rows; constant columns become 0."""
    x = np.asarray(x, dtype=np.float64)
    varies = np.ptp(x, axis=0) > 0
    std = np.where(varies, x.std(axis=0), 1.0)
    return np.where(varies, (x - x.mean(axis=0)) / std, 0.0)


def discretize(z: np.ndarray, absent: float = -0.25, present: float = 0.15) -> np.ndarray:
    """-1 where ``z < absent``, +1 where ``z > present``, 0 otherwise (int8)."""
    z = np.asarray(z)
    return np.where(z < absent, -1, np.where(z > present, 1, 0)).astype(np.int8)


def _tie_term(z: np.ndarray) -> np.ndarray:
    """Per column of ``z``: the sum of t^3 - t over its groups of t tied values."""
    return np.array([float((t ** 3 - t).sum())
                     for t in (np.unique(col, return_counts=True)[1] for col in z.T)])


def rank_sum_pvalues(z: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(2, K, C) one-sided Mann-Whitney U p-values of each feature of ``z`` (n, C) being higher
    (row 0) / lower (row 1) in each class than in the other samples.

    The same as ``scipy.stats.mannwhitneyu(..., axis=0, method="asymptotic")`` (normal
    approximation, tie and continuity corrections), but the pooled sample is the same for
    every class, so it is ranked once per layer instead of once per class and direction.
    Constant features get p = 1."""
    n = len(labels)
    ranks = rankdata(z, axis=0)
    inside = np.stack([labels == c for c in classes]).astype(np.float64)  # (K, n)
    n1 = inside.sum(axis=1, keepdims=True)
    n2 = n - n1
    u1 = inside @ ranks - n1 * (n1 + 1) / 2  # (K, C)
    mu = n1 * n2 / 2
    s = np.sqrt(n1 * n2 / 12 * ((n + 1) - _tie_term(z) / (n * (n - 1))))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.stack([norm.sf((u - mu - 0.5) / s) for u in (u1, n1 * n2 - u1)])
    return np.where(s > 0, np.nan_to_num(p, nan=1.0), 1.0)


def discriminative_features(x: np.ndarray, labels: np.ndarray, absent: float = -0.25,
                            present: float = 0.15, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Per class and feature of one layer (``x``: (n, C), ``labels``: (n,)): boolean (K, C)
    masks ``present``, ``absent``, ``below`` (see the module docstring) and ``classes`` (the K
    labels tested: those with samples inside and outside the class)."""
    labels = np.asarray(labels)
    z = standardize(x)
    disc = discretize(z, absent, present)
    classes = np.array([c for c in np.unique(labels) if 0 < (labels == c).sum() < len(labels)])
    shape = (len(classes), z.shape[1])
    if not len(classes):
        empty = np.zeros(shape, dtype=bool)
        return {"classes": classes, "present": empty, "absent": empty, "below": empty}
    p = rank_sum_pvalues(z, labels, classes)
    q = false_discovery_control(p.ravel(), method="bh").reshape(p.shape)
    up, down = q[0] < alpha, q[1] < alpha
    disc_mean = np.stack([disc[labels == c].mean(axis=0) for c in classes])
    z_mean = np.stack([z[labels == c].mean(axis=0) for c in classes])
    inside = (z_mean >= absent) & (z_mean <= present)
    return {"classes": classes, "present": up & (disc_mean > 0), "absent": down & (disc_mean < 0),
            "below": (up | down) & inside}


def discriminative_counts(x: np.ndarray, labels: np.ndarray, absent: float = -0.25,
                          present: float = 0.15, alpha: float = 0.05) -> dict[str, Any]:
    """One layer's counts per tested class: ``classes``, ``n_present``, ``n_absent``,
    ``n_below`` (lists of ints) and ``n_features`` (JSON-ready)."""
    found = discriminative_features(x, labels, absent, present, alpha)
    return {"classes": [int(c) for c in found["classes"]],
            **{f"n_{k}": found[k].sum(axis=1).astype(int).tolist()
               for k in ("present", "absent", "below")},
            "n_features": int(np.asarray(x).shape[1])}


def behaviour_score(counts: list[dict[str, Any]]) -> float:
    """Mean over layers and classes of (n_present + n_absent) / n_features; NaN without any
    tested class."""
    shares = [(p + a) / layer["n_features"] for layer in counts
              for p, a in zip(layer["n_present"], layer["n_absent"]) if layer["n_features"]]
    return float(np.mean(shares)) if shares else float("nan")


# -- the network side -------------------------------------------------------------------------


def stage_names(model: torch.nn.Module) -> list[str]:
    """The stages whose outputs are the features: timm's ``feature_info`` modules, else
    ``layer1 .. layer4``."""
    info = getattr(model, "feature_info", None)
    if info:
        return [f["module"] for f in info]
    modules = dict(model.named_modules())
    names = [n for n in FALLBACK_STAGES if n in modules]
    if not names:
        raise ProbeError(f"{type(model).__name__} has no feature_info and no layer1..layer4.",
                         "Use a timm CNN (e.g. a ResNet) as source model.")
    return names


def _pooled_batch(model: torch.nn.Module, x: torch.Tensor, names: list[str], chosen: list[str]
                  ) -> list[torch.Tensor]:
    """Spatially averaged outputs of the ``chosen`` stages on one batch."""
    if hasattr(model, "forward_intermediates") and getattr(model, "feature_info", None):
        maps = model.forward_intermediates(x, indices=[names.index(n) for n in chosen],
                                           intermediates_only=True)
        return [m.float().mean(dim=(2, 3)) for m in maps]
    out: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    hooks = [modules[n].register_forward_hook(
        lambda _m, _i, o, n=n: out.__setitem__(n, o.float().mean(dim=(2, 3)))) for n in chosen]
    try:
        model.forward_features(x) if hasattr(model, "forward_features") else model(x)
    finally:
        for h in hooks:
            h.remove()
    return [out[n] for n in chosen]


@torch.no_grad()
def stage_features(model: torch.nn.Module, images: torch.Tensor, prep: BatchPrep,
                   stages: tuple[str, ...] = (), batch: int = 256) -> dict[str, np.ndarray]:
    """Each chosen stage's (n, C) spatially averaged features on uint8 ``images`` (all stages
    when ``stages`` is empty), by stage name."""
    names = stage_names(model)
    chosen = list(stages) or names
    unknown = [s for s in chosen if s not in names]
    if unknown:
        raise ProbeError(f"Unknown stages {unknown}; this model has {names}.",
                         "Fix the probe's stages option (or leave it empty for all stages).")
    parts: list[list[torch.Tensor]] = []
    for s in range(0, len(images), batch):
        parts.append([t.cpu() for t in _pooled_batch(model, prep(images[s:s + batch]), names,
                                                     chosen)])
    return {n: torch.cat([p[i] for p in parts]).numpy() for i, n in enumerate(chosen)}


# -- the probe --------------------------------------------------------------------------------


class FeatureOptions(ModelScoringOptions):
    absent: float = -0.25  # authors' threshold: standardized value below it -> absent (-1)
    present: float = 0.15  # authors' threshold: standardized value above it -> present (+1)
    alpha: float = 0.05  # false discovery rate (Benjamini-Hochberg) per layer
    stages: tuple[str, ...] = ()  # feature_info modules (act1, layer1..layer4); () = all

    @model_validator(mode="after")
    def _check(self) -> FeatureOptions:
        if not self.absent < self.present:
            raise ValueError(f"absent ({self.absent}) must be below present ({self.present})")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), not {self.alpha}")
        if self.max_samples < 2:
            raise ValueError("max_samples must be at least 2")
        return self


@register_probe
class FeatureBehaviourProbe(ModelScoringProbe):
    """Share of a source model's features discriminative on the target, by presence or
    absence, at every stage (Garcia-Gasulla et al.'s (2018) feature behaviour)."""

    name = "features"
    Options = FeatureOptions

    def counts(self, model: torch.nn.Module, images: torch.Tensor, labels: np.ndarray,
               classes: list[str], prep: BatchPrep) -> dict[str, Any]:
        """Per-layer, per-class counts of ``model`` on one target sample, and its score."""
        o = self.opts
        feats = stage_features(model, images, prep, o.stages)
        layers = [discriminative_counts(f, labels, o.absent, o.present, o.alpha)
                  for f in feats.values()]
        for layer in layers:
            layer["classes"] = [classes[c] if c < len(classes) else str(c)
                                for c in layer["classes"]]
        return {"layers": list(feats), "counts": layers, "score": behaviour_score(layers)}

    def score_pair(self, model, images, labels, record, prep) -> tuple[float, dict[str, Any]]:
        found = self.counts(model, images, labels, list(record.classes), prep)
        return found["score"], found

    def result_details(self, kept: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {"thresholds": {"absent": self.opts.absent, "present": self.opts.present},
                "alpha": self.opts.alpha, "counts": kept}

    def result_figures(self, details: dict[str, Any]) -> dict[str, Any]:
        return {f"counts/{src} -> {tgt}.png": partial(counts_figure, details, src, tgt)
                for src, per in details["counts"].items() for tgt in per}


# -- figure -----------------------------------------------------------------------------------


def counts_figure(details: dict[str, Any], source: str, target: str):
    """Heatmaps (layers x classes) of the share of features present- and absent-discriminative
    for each class, side by side, for ``source`` scored on ``target`` (a matplotlib figure)."""
    try:
        found = details["counts"][source][target]
    except KeyError:
        raise ProbeError(f"No counts for source '{source}' on target '{target}'.",
                         "Pick a source with a model and another dataset as target.") from None
    layers, classes = found["layers"], found["counts"][0]["classes"] if found["counts"] else []
    fig = Figure(figsize=(2.5 + 0.9 * max(len(classes), 1), 1.2 + 0.45 * len(layers)))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, kind in zip(axes, ("present", "absent")):
        share = np.array([np.asarray(c[f"n_{kind}"], float) / max(c["n_features"], 1)
                          for c in found["counts"]]).reshape(len(layers), len(classes))
        im = ax.imshow(share, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(layers)), layers, fontsize=8)
        ax.set_title(f"{kind}", fontsize=9)
    fig.colorbar(im, ax=axes, fraction=0.046, label="share of features")
    fig.suptitle(f"{source} features on {target}", fontsize=9)
    return fig
