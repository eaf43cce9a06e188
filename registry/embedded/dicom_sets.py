"""dicom-modality: 32x32 gray patches of real DICOM images, labelled by imaging modality.

The images are pydicom's public test files: the pydicom-data package (``data_store``, checked
against pydicom's hashes.json) and the small files bundled with pydicom, found offline with
``pydicom.data.get_testdata_file(name, download=False)``. The label is the DICOM Modality of
the source image, and nothing else (not anatomy, not a finding):

- radiograph (CR, MONOCHROME1): RG1_UNCR (chest PA), RG3_UNCR (lower leg, distal tibia);
- ct (CT): 693_UNCR (axial head slice), CT_small (NEMA CT1 downsized to 128x128);
- mr (MR): MR2_UNCR (shoulder), MR-SIEMENS-DICOM-WithOverlays (abdomen), MR_small (NEMA MR1
  downsized to 64x64), emri_small (head, 10 frames of 64x64);
- ultrasound (US): US1_UNCR (RGB), OBXXXX1A (8-bit palette), gdcm-US-ALOKA-16 (16-bit segmented
  palette), color-pl (RGB echocardiogram).

Only pixels that pydicom decodes with numpy alone are used (uncompressed or RLE; every file
above is uncompressed); JPEG, JPEG-LS and JPEG 2000 files are skipped. Of one image stored in
several encodings one copy is used: the ``_UNCR`` files are the lossless originals (equal to the
``_J2KR`` pixels), ``_UNCI`` holds the lossy ``_J2KI`` pixels; OBXXXX1A_rle/_expb, color-px,
emri_small_RLE/_big_endian, gdcm-US-ALOKA-16_big and MR_small_* repeat pixels already used, and
the *_2frame files are script-made copies.
Left out: eCT_Supplemental (values above 1024 are a supplemental colour overlay, not CT numbers),
ExplVR_BigEnd (60x80 RGB, almost all saturated), the 16x16 DICOMDIR images (smaller
than a patch).

Each frame becomes a gray uint8 image: stored values -> palette colour through its LUT ->
colour to gray with the ITU-R 601 luma weights; gray values through Rescale Slope / Intercept
when present (top level or the enhanced shared functional group), then negated when MONOCHROME1
so that what DICOM displays white (bone in a radiograph) is bright -> block-mean downsampling to
a short side of at most ``short_side`` pixels (never upsampled) -> the ``percentiles`` (1st,
99th) of the full-resolution frame, leaving out padding, mapped linearly to 0..255, clipped
and rounded. Padding = pixels at the frame's minimum stored value (outside a CT's field of view,
the zero background of MR and ultrasound, the shutter of RG3). The DICOM VOI window is not used.

Patches: ``patch`` x ``patch`` on a grid of step ``stride``; a patch is background, and dropped,
when its mean is below ``min_mean`` or its standard deviation below ``min_std`` (gray levels of
0..255) or more than a ``max_padding`` fraction of it is padding. Per class, ``per_class``
patches are drawn without replacement with ``numpy.random.default_rng(seed)`` (classes in label
order) and kept in source order; a class with fewer patches keeps all. With the defaults the
foreground pools hold 359 radiograph, 155 ct, 386 mr and 482 ultrasound patches, so the dataset
has 300 radiograph, 155 ct, 300 mr and 300 ultrasound patches (1055).

Caveat: each class comes from 2 (radiograph), 2 (ct), 4 (mr) or 4 (ultrasound) source files
(2, 2, 13 and 4 frames), so patches of one image are strongly correlated (a patch-level split
leaks), and ultrasound patches include burned-in annotation text. A small modality-recognition
task, not a diagnostic one.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from registry.embedded.builders import EmbeddedData, grid_patches, register_builder
from registry.errors import DatasetFormatError

MODALITY_CLASSES = ("radiograph", "ct", "mr", "ultrasound")
SOURCES: dict[str, tuple[str, ...]] = {
    "radiograph": ("RG1_UNCR.dcm", "RG3_UNCR.dcm"),
    "ct": ("693_UNCR.dcm", "CT_small.dcm"),
    "mr": ("MR2_UNCR.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm", "MR_small.dcm",
           "emri_small.dcm"),
    "ultrasound": ("US1_UNCR.dcm", "OBXXXX1A.dcm", "gdcm-US-ALOKA-16.dcm", "color-pl.dcm"),
}
DEFAULTS: dict[str, Any] = {"patch": 32, "stride": 16, "short_side": 256, "per_class": 300,
                            "min_mean": 16, "min_std": 4, "max_padding": 0.5,
                            "percentiles": (1.0, 99.0)}
_LUMA = (0.299, 0.587, 0.114)


def read_dicom(name: str) -> Any:
    """The dataset of pydicom test file ``name``, found offline; only numpy-decodable pixels."""
    import pydicom
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        raise DatasetFormatError(f"DICOM test file '{name}' is not installed.",
                                 "Install pydicom-data (pip install pydicom-data).")
    ds = pydicom.dcmread(path)
    syntax = ds.file_meta.TransferSyntaxUID
    if syntax.is_compressed and syntax != pydicom.uid.RLELossless:
        raise DatasetFormatError(f"DICOM test file '{name}' is compressed ({syntax.name}).",
                                 "Use an uncompressed or RLE copy of the image.")
    return ds


def _rescale(ds: Any) -> tuple[float, float]:
    """Rescale slope and intercept, at the top level or in the enhanced shared group."""
    items = [ds]
    if "SharedFunctionalGroupsSequence" in ds:
        items += ds.SharedFunctionalGroupsSequence[0].get("PixelValueTransformationSequence", [])
    for item in items:
        if "RescaleSlope" in item and "RescaleIntercept" in item:
            return float(item.RescaleSlope), float(item.RescaleIntercept)
    return 1.0, 0.0


def stored_frames(ds: Any) -> np.ndarray:
    """The stored pixel values as (frames, rows, columns, samples per pixel)."""
    frames = int(ds.get("NumberOfFrames") or 1)
    return ds.pixel_array.reshape(frames, ds.Rows, ds.Columns, -1)


def padding_mask(stored: np.ndarray) -> np.ndarray:
    """(F, H, W) True where every sample holds its frame's minimum stored value.

    That is the padding outside a CT's field of view, the zero background of MR and
    ultrasound and the shutter of radiograph RG3 (stored 0, white in MONOCHROME1)."""
    return (stored == stored.min(axis=(1, 2, 3), keepdims=True)).all(axis=-1)


def display_values(ds: Any, stored: np.ndarray) -> np.ndarray:
    """(F, H, W) float64, brighter = displayed brighter: palette through its LUT, colour to
    luma, Rescale Slope / Intercept applied, MONOCHROME1 negated."""
    from pydicom.pixels import apply_color_lut

    photometric = ds.PhotometricInterpretation
    x = apply_color_lut(stored[..., 0], ds) if photometric == "PALETTE COLOR" else stored
    x = x.astype(np.float64)
    if x.shape[-1] == 3:
        return _LUMA[0] * x[..., 0] + _LUMA[1] * x[..., 1] + _LUMA[2] * x[..., 2]
    slope, intercept = _rescale(ds)
    x = x[..., 0] * slope + intercept
    return -x if photometric == "MONOCHROME1" else x


def block_mean(image: np.ndarray, short_side: int) -> np.ndarray:
    """Downsample by means over near-equal blocks so the short side is ``short_side`` at most."""
    h, w = image.shape
    scale = min(1.0, short_side / min(h, w))
    for axis, n in ((0, h), (1, w)):
        out = max(1, round(n * scale))
        edges = np.linspace(0, n, out + 1).round().astype(np.int64)
        image = np.add.reduceat(image, edges[:-1], axis=axis)
        shape = [1, 1]
        shape[axis] = out
        image = image / np.diff(edges).reshape(shape)
    return image


def intensity_range(frame: np.ndarray, padding: np.ndarray,
                    percentiles: tuple[float, float]) -> tuple[float, float]:
    """The low and high percentiles of the frame's values outside the padding."""
    values = frame[~padding] if (~padding).any() else frame.ravel()
    lo, hi = np.percentile(values, percentiles)
    return float(lo), float(max(hi, lo + 1e-9))


def window(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Scale ``lo``..``hi`` linearly to 0..255, clipped and rounded, as uint8."""
    return (np.clip((image - lo) / (hi - lo), 0.0, 1.0) * 255.0).round().astype(np.uint8)


class Frame(NamedTuple):
    """One downsampled frame: uint8 gray image and the fraction of padding in each pixel."""

    image: np.ndarray
    padding: np.ndarray


def load_frames(name: str, short_side: int, percentiles: tuple[float, float]) -> list[Frame]:
    """Every frame of DICOM test file ``name``, windowed and downsampled (see the module doc)."""
    ds = read_dicom(name)
    stored = stored_frames(ds)
    pads = padding_mask(stored)
    return [Frame(window(block_mean(frame, short_side), *intensity_range(frame, pad, percentiles)),
                  block_mean(pad.astype(np.float64), short_side))
            for frame, pad in zip(display_values(ds, stored), pads)]


def _foreground_patches(frames: list[Frame], p: dict[str, Any]) -> np.ndarray:
    size, stride = p["patch"], p["stride"]
    pool = np.concatenate([grid_patches(f.image, size, stride) for f in frames])
    padding = np.concatenate([grid_patches(f.padding, size, stride) for f in frames])
    flat = pool.reshape(len(pool), -1).astype(np.float64)
    keep = ((flat.mean(axis=1) >= p["min_mean"]) & (flat.std(axis=1) >= p["min_std"])
            & (padding.mean(axis=(1, 2)) <= p["max_padding"]))
    return pool[keep]


def class_pool(label: str, p: dict[str, Any]) -> np.ndarray:
    """All foreground patches of one class, in source-file, frame and grid order."""
    frames = [f for name in SOURCES[label]
              for f in load_frames(name, p["short_side"], tuple(p["percentiles"]))]
    return _foreground_patches([f for f in frames if min(f.image.shape) >= p["patch"]], p)


@register_builder("dicom-modality")
def build_dicom_modality(params: dict[str, Any], seed: int) -> EmbeddedData:
    p = {**DEFAULTS, **params}
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, name in enumerate(MODALITY_CLASSES):
        pool = class_pool(name, p)
        take = np.sort(rng.choice(len(pool), size=min(p["per_class"], len(pool)), replace=False))
        images.append(pool[take])
        labels.append(np.full(len(take), label, dtype=np.int64))
    return EmbeddedData(np.concatenate(images), np.concatenate(labels), MODALITY_CLASSES)
