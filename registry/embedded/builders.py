"""The registry of embedded-dataset builders and what they return.

A builder is a function ``(params, seed) -> EmbeddedData`` in a module of this folder,
decorated with ``@register_builder("name")``: :data:`BUILDERS` finds it by reading the
source (nothing is imported to list the names), and imports its module when a card's
``format.options.builder`` first asks for it. A new offline dataset is one such module plus
its card in registry/catalog/; installed packages add builders through the entry-point group
``transfer_bench.builders``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from registry.names import ContractError, LazyRegistry, is_name, takes


@dataclass(frozen=True)
class EmbeddedData:
    """Images uint8 (N, H, W) or (N, H, W, 3), labels int64 (N,), class names in label order."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]


Builder = Callable[[dict[str, Any], int], EmbeddedData]
GUIDE = 'an offline dataset: docs/contributing.md, "An offline (embedded) dataset"'


def _check_name(name: str) -> None:
    if not is_name(name):
        raise ContractError(f"Embedded dataset builder name {name!r} is not valid.",
                            f"Use lowercase words joined by dashes, e.g. 'my-dataset' ({GUIDE}).")


def check_builder(name: str, fn: Any) -> None:
    """Refuse (a ContractError saying what to write) a builder whose name is not a registry
    name or that is not a function called as ``builder(params, seed)``."""
    _check_name(name)
    if inspect.isclass(fn) or not takes("params", "seed")(fn):
        where = f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', fn)}"
        raise ContractError(
            f"Embedded dataset builder '{name}' ({where}) cannot be registered: it must be a "
            "function called as builder(params, seed).",
            f"Fix: def build(params: dict[str, Any], seed: int) -> EmbeddedData ({GUIDE}).")


# every @register_builder("name") function of this package, found by name without importing it;
# installed plugins add theirs by entry point, held to the same contract
BUILDERS: LazyRegistry[Builder] = LazyRegistry("embedded dataset builder", "registry.embedded",
                                               "register_builder",
                                               entry_points="transfer_bench.builders",
                                               check=check_builder)


def register_builder(name: str) -> Callable[[Builder], Builder]:
    """Decorator: register a builder function ``(params, seed) -> EmbeddedData`` under
    ``name`` (a ContractError when the name or the signature is wrong)."""
    _check_name(name)  # at once; the function when it is decorated
    return BUILDERS.register(name)


def to_uint8(x: np.ndarray, max_value: float) -> np.ndarray:
    """Scale ``x`` from [0, max_value] to uint8 0..255 (rounded, clipped)."""
    return (np.clip(x / max_value, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def grid_patches(image: np.ndarray, size: int, stride: int) -> np.ndarray:
    """All ``size`` x ``size`` patches of ``image`` on a grid of step ``stride``, row by row."""
    h, w = image.shape[:2]
    return np.stack([image[r:r + size, c:c + size]
                     for r in range(0, h - size + 1, stride)
                     for c in range(0, w - size + 1, stride)])


def composite(digits: np.ndarray, backgrounds: np.ndarray) -> np.ndarray:
    """uint8 digits over uint8 backgrounds, each pixel's digit intensity as its opacity (pure
    ink keeps the digit's value, pure black shows the background)."""
    alpha = digits.astype(np.float32) / 255.0
    out = alpha * digits + (1.0 - alpha) * backgrounds.astype(np.float32)
    return out.round().astype(np.uint8)
