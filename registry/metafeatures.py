"""Statistical meta-features of a registered dataset, in one vocabulary with OpenML's.

Where OpenML defines a quality, it is stored under OpenML's name and in OpenML's unit
(NumberOfInstances, NumberOfClasses, ClassEntropy in bits, MajorityClassPercentage in %,
MajorityClassSize ...), so a dataset imported from OpenML and one registered here are compared
on the same keys; an OpenML dataset's own qualities sit beside them under their own names.
What OpenML does not define keeps our snake_case name (``OURS`` documents them): normalised
class entropy, imbalance ratio, and the image statistics, computed on the decoded uint8 cache at
one size, scaled to [0, 1], in chunks (constant memory). ``LEGACY_NAMES`` maps the names that
registries written before this vocabulary used.
"""

from __future__ import annotations

import numpy as np

CHUNK = 2048
# ours (not OpenML qualities): what each means
OURS = {
    "normalized_class_entropy": "ClassEntropy / log2(NumberOfClasses)",
    "imbalance_ratio": "MajorityClassSize / MinorityClassSize",
    "instances_per_class": "NumberOfInstances / NumberOfClasses",
    "mean_labels_per_instance": "multilabel: labels per image",
    "max_label_share": "multilabel: largest share of images with one label",
    "min_label_share": "multilabel: smallest share of images with one label",
    "channels": "image channels", "height": "cache height", "width": "cache width",
    "intensity_mean": "mean pixel intensity in [0, 1]", "intensity_std": "pixel std",
    "image_contrast_mean": "mean per-image std", "edge_strength_mean": "mean absolute gradient",
    "intensity_entropy_bits": "entropy of the 256-bin intensity histogram",
    "native_height_min": "smallest image height on disk", "native_width_min": "smallest width",
    "native_height_max": "largest image height on disk", "native_width_max": "largest width",
}
LEGACY_NAMES = {"n_instances": "NumberOfInstances", "n_classes": "NumberOfClasses",
                "class_entropy": "ClassEntropy", "majority_class_share": "MajorityClassPercentage",
                "minority_class_share": "MinorityClassPercentage"}


def in_vocabulary(features: dict[str, float]) -> dict[str, float]:
    """``features`` of a registry written before the OpenML vocabulary, renamed (shares
    become percentages); current ones pass unchanged."""
    out = {}
    for key, value in features.items():
        new = LEGACY_NAMES.get(key)
        if new is None:
            out.setdefault(key, value)
        else:
            out[new] = 100 * value if new.endswith("Percentage") else value
    return out


def label_features(labels: np.ndarray, n_classes: int) -> dict[str, float]:
    """Counts, class entropy (bits), majority/minority shares and imbalance of the labels."""
    n = int(labels.shape[0])
    if labels.ndim == 2:
        counts = labels.sum(axis=0).astype(np.float64)
        shares = counts / n
        return {"NumberOfInstances": float(n), "NumberOfClasses": float(n_classes),
                "mean_labels_per_instance": float(labels.sum() / n),
                "max_label_share": float(shares.max()), "min_label_share": float(shares.min())}
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    p = counts / n
    nz = p[p > 0]
    entropy = float(-(nz * np.log2(nz)).sum())
    return {
        "NumberOfInstances": float(n),
        "NumberOfClasses": float(n_classes),
        "ClassEntropy": entropy,
        "MajorityClassSize": float(counts.max()),
        "MinorityClassSize": float(counts.min()),
        "MajorityClassPercentage": float(100 * p.max()),
        "MinorityClassPercentage": float(100 * p.min()),
        "normalized_class_entropy": entropy / np.log2(n_classes) if n_classes > 1 else 0.0,
        "imbalance_ratio": float(counts.max() / counts.min()) if counts.min() > 0 else float("inf"),
        "instances_per_class": float(n / n_classes),
    }


def image_features(images: np.ndarray) -> dict[str, float]:
    """Intensity statistics per channel, contrast, edge strength and histogram entropy.

    ``images`` is uint8 (N, C, H, W), e.g. a memory-mapped cache file.
    """
    n, c, h, w = images.shape
    sums = np.zeros(c)
    sq = np.zeros(c)
    contrast = edges = 0.0
    hist = np.zeros(256)
    for start in range(0, n, CHUNK):
        x = np.asarray(images[start:start + CHUNK], dtype=np.float64) / 255.0
        sums += x.sum(axis=(0, 2, 3))
        sq += (x ** 2).sum(axis=(0, 2, 3))
        contrast += x.reshape(len(x), -1).std(axis=1).sum()
        edges += (np.abs(np.diff(x, axis=2)).mean(axis=(1, 2, 3))
                  + np.abs(np.diff(x, axis=3)).mean(axis=(1, 2, 3))).sum() / 2
        hist += np.bincount(np.asarray(images[start:start + CHUNK]).ravel(), minlength=256)
    pixels = n * h * w
    mean = sums / pixels
    std = np.sqrt(np.maximum(sq / pixels - mean ** 2, 0.0))
    p = hist / hist.sum()
    p = p[p > 0]
    out = {"channels": float(c), "height": float(h), "width": float(w),
           "intensity_mean": float(mean.mean()), "intensity_std": float(std.mean()),
           "image_contrast_mean": float(contrast / n), "edge_strength_mean": float(edges / n),
           "intensity_entropy_bits": float(-(p * np.log2(p)).sum())}
    for k in range(c):
        out[f"channel{k}_mean"] = float(mean[k])
        out[f"channel{k}_std"] = float(std[k])
    return out
