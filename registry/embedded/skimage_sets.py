"""Small datasets cut from scikit-image's bundled images (no download needed).

- textures: grid patches of the bundled texture photos, class = source image.
- lfw-faces: the bundled LFW subset, 100 faces then 100 non-faces (25 x 25).
- histology-dab: patches of the bundled immunohistochemistry (IHC) image, labelled by stain:
  DAB-positive when the patch's mean DAB optical density (``skimage.color.rgb2hed``) is above
  the median over all patches, so the classes are balanced (a region label, like PCam's
  tumour / no tumour).
- medical-sources: patches labelled by the bundled medical image they come from: IHC
  histology, retina fundus (patches inside the field of view only) and the cell microscopy image.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from registry.embedded.builders import EmbeddedData, grid_patches, register_builder, to_uint8


def _load(name: str) -> np.ndarray:
    import skimage.data

    return np.asarray(getattr(skimage.data, name)())


@register_builder("textures")
def build_textures(params: dict[str, Any], seed: int) -> EmbeddedData:
    names = tuple(params.get("sources", ("brick", "grass", "gravel")))
    size, stride = params.get("patch", 32), params.get("stride", 16)
    images, labels = [], []
    for label, name in enumerate(names):
        patches = grid_patches(_load(name).astype(np.uint8), size, stride)
        images.append(patches)
        labels.append(np.full(len(patches), label, dtype=np.int64))
    return EmbeddedData(np.concatenate(images), np.concatenate(labels), names)


@register_builder("lfw-faces")
def build_lfw(params: dict[str, Any], seed: int) -> EmbeddedData:
    faces = _load("lfw_subset")  # (200, 25, 25) floats in [0, 1]
    labels = np.repeat(np.asarray([0, 1], dtype=np.int64), 100)
    return EmbeddedData(to_uint8(faces, 1.0), labels, ("face", "non-face"))


@register_builder("histology-dab")
def build_histology_dab(params: dict[str, Any], seed: int) -> EmbeddedData:
    from skimage.color import rgb2hed

    ihc = _load("immunohistochemistry")
    size, stride = params.get("patch", 32), params.get("stride", 16)
    patches = grid_patches(ihc, size, stride)
    dab = grid_patches(rgb2hed(ihc)[..., 2], size, stride).mean(axis=(1, 2))
    labels = (dab > np.median(dab)).astype(np.int64)
    return EmbeddedData(patches, labels, ("dab-negative", "dab-positive"))


def _fundus_patches(size: int, stride: int, min_inside: float) -> np.ndarray:
    retina = _load("retina")
    patches = grid_patches(retina, size, stride)
    inside = grid_patches((retina.max(axis=2) > 20).astype(np.float32), size, stride)
    return patches[inside.mean(axis=(1, 2)) >= min_inside]


@register_builder("medical-sources")
def build_medical_sources(params: dict[str, Any], seed: int) -> EmbeddedData:
    size = params.get("patch", 32)
    per_class = params.get("per_class", 300)
    gray = _load("cell").astype(np.uint8)
    pools = [grid_patches(_load("immunohistochemistry"), size, size // 2),
             _fundus_patches(size, size, params.get("min_inside", 0.95)),
             np.repeat(grid_patches(gray, size, size // 2)[..., None], 3, axis=3)]
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, pool in enumerate(pools):
        take = np.sort(rng.choice(len(pool), size=min(per_class, len(pool)), replace=False))
        images.append(pool[take])
        labels.append(np.full(len(take), label, dtype=np.int64))
    return EmbeddedData(np.concatenate(images), np.concatenate(labels),
                        ("histology", "fundus", "microscopy"))
