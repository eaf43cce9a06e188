"""Shift transforms: deterministic changes of a target's test images (Recht et al.'s (2019) synthetic
shifts), one module each, found by name without importing torch (``TRANSFORMS``). A new
transform is one new module here with a ``@register_transform`` class; see
docs/contributing.md."""

from benchmark.transforms.base import (TRANSFORMS, ShiftTransform, pixels_fingerprint,
                                       register_transform, transform_derivation,
                                       transform_images)

__all__ = ["TRANSFORMS", "ShiftTransform", "pixels_fingerprint", "register_transform",
           "transform_derivation", "transform_images"]
