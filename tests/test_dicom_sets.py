"""dicom-modality: patches of pydicom's real DICOM test images, labelled by modality."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_voi_lut

from registry.card import load_card
from registry.catalog import CATALOG_DIR
from registry.embedded import dicom_sets
from registry.embedded.builders import BUILDERS
from registry.errors import DatasetFormatError

CARD = load_card(CATALOG_DIR / "dicom-modality.yaml")
PARAMS, SEED = CARD.format.options["params"], CARD.format.options["seed"]
COUNTS = {"radiograph": 300, "ct": 155, "mr": 300, "ultrasound": 300}
BUILD_AND_HASH = (
    "import hashlib; from registry.embedded.builders import BUILDERS; "
    "import registry.embedded.dicom_sets; d = BUILDERS.get('dicom-modality')({}, 0); "
    "print(hashlib.sha256(d.images.tobytes()).hexdigest(), "
    "hashlib.sha256(d.labels.tobytes()).hexdigest())")


def _build(seed: int = SEED):
    return BUILDERS.get("dicom-modality")(dict(PARAMS), seed)


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def data():
    return _build()


def test_same_bytes_on_every_call(data):
    again = _build()
    assert (_sha(again.images), _sha(again.labels)) == (_sha(data.images), _sha(data.labels))


def test_same_bytes_in_a_fresh_process(data):
    out = subprocess.run([sys.executable, "-c", BUILD_AND_HASH], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[1]).stdout.split()
    assert out == [_sha(data.images), _sha(data.labels)]


def test_the_seed_only_changes_which_patches_are_drawn(data):
    other = _build(seed=1)
    assert np.array_equal(other.labels, data.labels)
    assert not np.array_equal(other.images, data.images)
    ct = data.labels == data.classes.index("ct")  # all ct patches are kept whatever the seed
    assert np.array_equal(other.images[ct], data.images[ct])


def test_shape_dtype_and_classes(data):
    assert data.classes == CARD.classes == ("radiograph", "ct", "mr", "ultrasound")
    assert data.images.dtype == np.uint8 and data.images.shape == (CARD.n_samples, 32, 32)
    assert data.labels.dtype == np.int64 and data.labels.shape == (CARD.n_samples,)
    assert np.all(np.diff(data.labels) >= 0)  # class by class


def test_each_class_has_the_count_the_card_says(data):
    counts = dict(zip(data.classes, np.bincount(data.labels, minlength=4).tolist()))
    assert counts == COUNTS and sum(counts.values()) == CARD.n_samples
    p = {**dicom_sets.DEFAULTS, **PARAMS}
    pools = {name: len(dicom_sets.class_pool(name, p)) for name in data.classes}
    assert counts == {name: min(p["per_class"], n) for name, n in pools.items()}
    assert "155" in CARD.description and "300 patches per class" in CARD.description


def test_no_background_patches(data):
    flat = data.images.reshape(len(data.images), -1).astype(np.float64)
    assert flat.mean(axis=1).min() >= PARAMS["min_mean"]
    assert flat.std(axis=1).min() >= PARAMS["min_std"]


def test_sources_are_uncompressed_and_distinct_images():
    names = [n for label in dicom_sets.MODALITY_CLASSES for n in dicom_sets.SOURCES[label]]
    hashes = set()
    for name in names:
        ds = dicom_sets.read_dicom(name)
        assert not ds.file_meta.TransferSyntaxUID.is_compressed, name
        hashes.add(_sha(ds.pixel_array))
    assert len(hashes) == len(names)


@pytest.mark.parametrize("label,modality", [("radiograph", "CR"), ("ct", "CT"), ("mr", "MR"),
                                            ("ultrasound", "US")])
def test_label_is_the_dicom_modality(label, modality):
    for name in dicom_sets.SOURCES[label]:
        assert dicom_sets.read_dicom(name).Modality == modality, name


def test_compressed_copies_are_refused():
    with pytest.raises(DatasetFormatError, match="RG1_J2KR.dcm' is compressed"):
        dicom_sets.read_dicom("RG1_J2KR.dcm")


def _region(image: np.ndarray, rows: tuple[float, float], cols: tuple[float, float]) -> float:
    h, w = image.shape
    return float(image[int(rows[0] * h):int(rows[1] * h), int(cols[0] * w):int(cols[1] * w)].mean())


# (rows, columns) as fractions of the image: bone, then air / lung beside it.
@pytest.mark.parametrize("name,bone,other", [
    ("RG3_UNCR.dcm", ((0.125, 0.375), (0.48, 0.52)), ((0.125, 0.375), (0.29, 0.33))),  # tibia, air
    ("RG1_UNCR.dcm", ((0.3, 0.5), (0.48, 0.52)), ((0.3, 0.5), (0.25, 0.32))),  # spine, lung
])
def test_monochrome1_is_inverted_so_bone_is_bright(name, bone, other):
    ds = pydicom.dcmread(get_testdata_file(name, download=False))
    assert ds.PhotometricInterpretation == "MONOCHROME1"  # the minimum value is shown white
    raw = ds.pixel_array.astype(np.float64)
    assert _region(raw, *bone) < _region(raw, *other)  # bone: low stored values
    shown = apply_voi_lut(raw, ds)
    shown = shown.max() - shown  # DICOM's display of MONOCHROME1, computed independently
    assert _region(shown, *bone) > _region(shown, *other)
    image = dicom_sets.load_frames(name, PARAMS["short_side"], PARAMS["percentiles"])[0].image
    assert _region(image, *bone) > _region(image, *other) + 100


def test_rescale_slope_and_intercept_are_applied():
    for name in ("693_UNCR.dcm", "MR2_UNCR.dcm"):
        ds = dicom_sets.read_dicom(name)
        stored = dicom_sets.stored_frames(ds)
        expected = stored[..., 0] * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert np.array_equal(dicom_sets.display_values(ds, stored), expected)


def test_windowing_spans_the_gray_range_per_frame():
    frame = dicom_sets.load_frames("693_UNCR.dcm", 256, (1.0, 99.0))[0]
    assert frame.image.shape == (256, 256)
    inside = frame.image[frame.padding == 0]
    assert inside.min() == 0 and inside.max() == 255
    assert np.mean(inside == 0) >= 0.01 and np.mean(inside == 255) >= 0.005


def test_card_validates_and_matches_the_builder(catalog, data):
    card = catalog.get("dicom-modality")
    assert card == CARD and card.n_samples == len(data.labels)
    assert card.format.loader == "embedded" and card.obtain.kind == "embedded"
    assert card.derived_from.params == PARAMS and card.derived_from.seed == SEED
    assert card.channels == 1 and card.cache_sizes == ((32, 32),)
    assert all(name in card.derived_from.description
               for label in dicom_sets.MODALITY_CLASSES for name in dicom_sets.SOURCES[label])


def test_registers_through_the_cli(cli, data):
    res = cli("add-dataset", "dicom-modality", "--json")
    assert res.exit_code == 0, res.stderr
    view = res.json()
    assert view["registered"] is True and view["n_samples"] == CARD.n_samples
    assert view["classes"] == list(CARD.classes) and view["class_counts"] == COUNTS
    files = {f["role"]: f for f in view["cache_files"]}
    assert files["images 32x32"]["shape"] == [CARD.n_samples, 1, 32, 32]
    assert np.array_equal(np.load(files["images 32x32"]["path"])[:, 0], data.images)
    assert np.array_equal(np.load(files["labels"]["path"]), data.labels)
