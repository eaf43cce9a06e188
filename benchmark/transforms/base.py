"""The shift-transform contract: a registered :class:`ShiftTransform` turns uint8 images
(N, C, H, W, on their device) into shifted uint8 images of the same shape, deterministically
for a level and a seed, and describes itself as a derivation card (like any derived dataset).

This module imports no torch: suites validate their transforms' names and levels with it at
plan time, and the transforms' own modules load torch when a transform is used."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol

import numpy as np

from registry.card import Derivation
from registry.names import LazyRegistry, Requirement, check_extension, is_flag, is_name, takes


class ShiftSpec(Protocol):
    """What a transform needs of a suite's shift (:class:`benchmark.suite.spec.ShiftSpec`)."""

    transform: str
    level: float
    seed: int


class ShiftTransform(ABC):
    """One kind of synthetic shift. ``level`` is its strength (what it means is the
    transform's: a standard deviation, a sigma, a factor); ``seed`` seeds any randomness."""

    name: ClassVar[str]
    level_range: ClassVar[tuple[float, float | None]] = (0.0, None)  # (exclusive low, high)
    seeded: ClassVar[bool] = False  # whether the seed changes the result

    @classmethod
    def check_level(cls, level: float) -> None:
        """Raise ValueError (a suite validation error) for a level outside the range."""
        low, high = cls.level_range
        if level <= low or (high is not None and level >= high):
            bound = f"{low:g} < level" + (f" < {high:g}" if high is not None else "")
            raise ValueError(f"a {cls.name} shift needs {bound}, got {level:g}")

    @staticmethod
    @abstractmethod
    def apply(images: Any, level: float, seed: int) -> Any:
        """The shifted float images (N, C, H, W) of uint8 ``images``; the caller rounds and
        clips them to uint8."""

    @staticmethod
    @abstractmethod
    def describe(level: float, seed: int) -> str:
        """What the transform did, in words (the derivation card's description)."""


def _level_range(value: Any) -> bool:
    return (isinstance(value, tuple) and len(value) == 2
            and isinstance(value[0], (int, float)) and (value[1] is None
                                                        or isinstance(value[1], (int, float))))


GUIDE = "docs/contributing.md, 'A shift transform'"
# what suites (validating a shift's level), the engine (applying it) and the derivation cards
# read off a transform
TRANSFORM_CONTRACT = (
    Requirement("name", is_name, 'set name = "my-shift" in the class body (lowercase words '
                "joined by dashes: suites name it so)", own=True),
    Requirement("level_range", _level_range, "set level_range = (exclusive low, exclusive "
                "high or None)"),
    Requirement("seeded", is_flag,
                "set seeded = True when the seed changes the result, else False"),
    Requirement("apply", takes("images", "level", "seed"),
                "a @staticmethod apply(images, level, seed) -> float images"),
    Requirement("describe", takes("level", "seed"),
                "a @staticmethod describe(level, seed) -> str"),
)


def check_transform(name: str, cls: Any) -> None:
    """Refuse ``cls`` unless it meets :data:`TRANSFORM_CONTRACT` under its own name."""
    check_extension(cls, "shift transform", ShiftTransform, TRANSFORM_CONTRACT, GUIDE, name)


TRANSFORMS: LazyRegistry[type[ShiftTransform]] = LazyRegistry(
    "shift transform", "benchmark.transforms", "register_transform",
    entry_points="transfer_bench.transforms", check=check_transform)


def register_transform(cls: type[ShiftTransform]) -> type[ShiftTransform]:
    """Class decorator: register ``cls`` under ``cls.name`` once it meets
    :data:`TRANSFORM_CONTRACT` (else a ContractError naming what is missing and the fix)."""
    return TRANSFORMS.add_class(cls)


def transform_images(images, spec: ShiftSpec):
    """``spec``'s transform of uint8 images (N, C, H, W) on their device, rounded and clipped
    back to uint8; deterministic for ``spec.seed``."""
    shifted = TRANSFORMS.get(spec.transform).apply(images, spec.level, spec.seed)
    return shifted.round().clamp(0, 255).to(images.dtype)


def transform_derivation(spec: ShiftSpec, target: str) -> Derivation:
    """The derivation card of a transform shift of ``target``'s test split (as for any
    derived dataset: parent, method, params, seed)."""
    cls = TRANSFORMS.get(spec.transform)
    return Derivation(parent=target, method=f"shift-{spec.transform}",
                      params={"level": spec.level},
                      seed=spec.seed if cls.seeded else None,
                      description=f"the test split of a fold of {target}: "
                                  f"{cls.describe(spec.level, spec.seed)}.")


def pixels_fingerprint(images, labels) -> str:
    """sha256 of uint8 images (N, C, H, W) and their int64 labels, as stored bytes."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(images.cpu().numpy()).tobytes())
    digest.update(np.ascontiguousarray(np.asarray(labels, dtype=np.int64)).tobytes())
    return digest.hexdigest()
