"""The SimEx reproduction's Fashion-MNIST stand-in ``heldout-picture-crops`` shares no picture
with the backgrounds of ``mnist-5k-background-image``: by construction (the files its builder
reads), by the bytes of every file each builder opens, and by the pixels of the pictures. The
same checks find the nine pictures ``picture-crops`` shares with the backgrounds."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from registry.catalog import Catalog
from registry.embedded import mnist, standins
from registry.embedded.builders import BUILDERS
from registry.errors import DatasetFormatError

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".tif", ".npy", ".gz")
_opened: list[str] | None = None  # files opened while a builder runs (None: not recording)


def _audit(event: str, args: tuple) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], (str, Path)):
        _opened.append(str(args[0]))


sys.addaudithook(_audit)  # audit hooks cannot be removed: it records only inside _files_read


def _files_read(build) -> dict[str, str]:
    """sha256 -> path of every picture file ``build()`` opens (Python's audit events)."""
    global _opened
    _opened = []
    try:
        build()
    finally:
        seen, _opened = _opened, None
    files = {p for p in seen if p.lower().endswith(PICTURE_SUFFIXES) and Path(p).is_file()}
    return {hashlib.sha256(Path(p).read_bytes()).hexdigest(): p for p in files}


def _build(name: str):
    opts = Catalog.load().cards[name].format.options
    return BUILDERS.get(opts["builder"])(dict(opts.get("params", {})), opts.get("seed", 0))


def test_the_card_lists_the_builders_pictures_with_their_hashes():
    card = Catalog.load().cards["heldout-picture-crops"]
    pictures = [tuple(p) for p in card.format.options["params"]["pictures"]]
    assert pictures == list(standins.HELDOUT_PICTURES)
    assert tuple(card.classes) == tuple(p[0] for p in pictures)
    for _, package, file, sha256 in pictures:
        data = standins.package_file(package, file).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha256


def test_by_construction_no_file_of_the_backgrounds_is_read():
    background = _files_read(mnist.pictures)
    assert len(background) == len(mnist.PICTURES) + len(mnist.SKLEARN_PICTURES)  # 16 files
    heldout = _files_read(lambda: _build("heldout-picture-crops"))
    assert sorted(heldout) == sorted(p[3] for p in standins.HELDOUT_PICTURES)  # only its 10
    assert not set(heldout) & set(background)
    # the check has teeth: picture-crops reads nine of the background's files
    shared = set(_files_read(lambda: _build("picture-crops"))) & set(background)
    assert len(shared) == 9


def _thumbnail(picture: np.ndarray) -> np.ndarray:
    """32x32, zero mean, unit norm: the same picture at any size or level gives ~1.0."""
    t = np.asarray(Image.fromarray(picture).resize((32, 32), Image.BILINEAR), dtype=float)
    t = t - t.mean()
    return t.ravel() / max(np.linalg.norm(t), 1e-9)


def _largest_correlation(pictures: list[np.ndarray], others: list[np.ndarray]) -> float:
    a = np.stack([_thumbnail(p) for p in pictures])
    b = np.stack([_thumbnail(p) for p in others])
    return float(np.abs(a @ b.T).max())


def test_by_pixels_no_picture_is_a_background_picture():
    background = mnist.pictures()
    heldout = [standins.heldout_picture(*p[1:]) for p in standins.HELDOUT_PICTURES]
    for picture in heldout:
        assert not any(p.shape == picture.shape and np.array_equal(p, picture)
                       for p in background)
    # different pictures stay well below 1 (the closest pair: the MRI slice and flower.jpg, 0.60)
    assert _largest_correlation(heldout, background) < 0.8
    # the same measure finds picture-crops' shared pictures (the same picture: 1.0)
    crops = [standins._picture(name) for name in standins.OBJECTS]
    assert _largest_correlation(crops, background) > 0.99


def test_a_changed_source_file_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / "data" / "horse.png"
    fake.parent.mkdir()
    Image.fromarray(np.zeros((64, 64), dtype=np.uint8)).save(fake)
    monkeypatch.setattr(standins, "package_file", lambda package, file: tmp_path / file)
    with pytest.raises(DatasetFormatError, match=r"horse.png is missing or not the picture the "
                                                 r"card names \(sha256 c7fb60789fe3"):
        standins.heldout_picture(*standins.HELDOUT_PICTURES[0][1:])


@pytest.mark.slow
def test_heldout_crops_are_deterministic_and_balanced():
    a, b = _build("heldout-picture-crops"), _build("heldout-picture-crops")
    assert np.array_equal(a.images, b.images) and a.images.shape == (5000, 28, 28)
    assert np.bincount(a.labels).tolist() == [500] * 10
    assert a.images.dtype == np.uint8
