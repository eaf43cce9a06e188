"""The catalog: every card validates, names and aliases resolve, derived datasets say how."""

from __future__ import annotations

import pytest
import yaml

from registry.card import DatasetCard, card_from_dict
from registry.catalog import CATALOG_DIR, Catalog
from registry.embedded.builders import BUILDERS
from registry.errors import CardError, UnknownNameError
from registry.loaders import LOADERS

PAPER_NINE = ["imagenet", "stl10", "sti10", "dtd", "isic2018", "chest-xray", "pcam-middle",
              "pcam-small", "kimia960"]
MEDMNIST_2D = ["pathmnist", "chestmnist", "dermamnist", "octmnist", "pneumoniamnist",
               "retinamnist", "breastmnist", "bloodmnist", "tissuemnist", "organamnist",
               "organcmnist", "organsmnist"]
SIMEX = ["mnist", "fashion-mnist", "emnist-letters", "mnist-rotated", "mnist-background-image"]


def test_catalog_holds_the_required_datasets(catalog):
    for name in PAPER_NINE + MEDMNIST_2D + SIMEX:
        assert name in catalog.cards, name


@pytest.mark.parametrize("alias,name", [("chest", "chest-xray"), ("pcam", "pcam-middle"),
                                        ("isic", "isic2018"), ("kimia", "kimia960"),
                                        ("textures", "dtd"), ("CHEST", "chest-xray")])
def test_aliases(catalog, alias, name):
    assert catalog.get(alias).name == name


def test_lookups_return_copies(catalog):
    a, b = catalog.get("digits"), catalog.get("digits")
    assert a == b and a is not b and a is not catalog.cards["digits"]


def test_unknown_name_lists_close_matches(catalog):
    with pytest.raises(UnknownNameError, match="Unknown dataset 'stl-10'. Did you mean 'stl10'"):
        catalog.get("stl-10")


@pytest.mark.parametrize("name", Catalog.load().names())
def test_card_is_consistent(catalog, name):
    card = catalog.cards[name]
    LOADERS.get(card.format.loader)  # the loader exists
    if card.n_samples is not None:
        assert card.n_samples >= len(card.classes)
    if card.obtain.kind in ("download",):
        assert all(f.url.startswith(("http://", "https://")) for f in card.obtain.files)
    if card.format.loader == "embedded":  # its builder is found by name (nothing imported)
        assert card.format.options["builder"] in BUILDERS, card.format.options["builder"]
    if card.obtain.kind == "embedded":
        derived = card.derived_from
        assert derived is not None and derived.description
        opts = card.format.options
        if derived.method not in ("rescale",):
            assert derived.params == opts.get("params", {}) and derived.seed == opts.get("seed", 0)
    assert card.expert is not None and card.license and card.citation and card.homepage


def _hamming(a: DatasetCard, b: DatasetCard) -> int:
    return sum(x != y for x, y in zip(a.expert.vector(), b.expert.vector()))


def test_expert_features_reproduce_the_published_distances(catalog):
    """van den Brandt et al. 2021 / anchors.md: ImageNet -> ISIC 5, -> Chest 6, -> PCam-middle 4."""
    imagenet = catalog.get("imagenet")
    assert _hamming(imagenet, catalog.get("isic")) == 5
    assert _hamming(imagenet, catalog.get("chest")) == 6
    assert _hamming(imagenet, catalog.get("pcam")) == 4


def test_paper_protocol_sizes(catalog):
    assert catalog.get("stl10").cache_sizes == ((96, 96),)
    assert catalog.get("isic").cache_sizes == ((112, 112),)
    assert catalog.get("chest").cache_sizes == ((112, 112),)
    assert catalog.get("pcam").cache_sizes == ((96, 96),)
    assert catalog.get("dtd").cache_sizes == ((300, 300),)


def test_pcam_small_and_middle_share_seed_and_downloads(catalog):
    small, middle = catalog.get("pcam-small"), catalog.get("pcam-middle")
    assert small.format.options["seed"] == middle.format.options["seed"]
    assert (small.format.options["subset"], middle.format.options["subset"]) == (10000, 100000)
    assert small.obtain.shared_as == middle.obtain.shared_as == "pcam"


def _valid() -> dict:
    return yaml.safe_load((CATALOG_DIR / "digits.yaml").read_text())


@pytest.mark.parametrize("change,message", [
    ({"task": "binary"}, "task 'binary' needs 2 classes"),
    ({"classes": ["a", "a"]}, "class names must be unique"),
    ({"name": "Digits"}, "name: String should match pattern"),
    ({"aliases": ["Bad Alias"]}, "alias 'Bad Alias'"),
    ({"cache_sizes": [[2, 2]]}, "outside 4..4096"),
    ({"channels": 2}, "channels: Input should be 1 or 3"),
    ({"obtain": {"kind": "download"}}, "needs at least one entry in obtain.files"),
    ({"obtain": {"kind": "manual"}}, "needs the manual steps"),
    ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
])
def test_card_validation_messages(change, message):
    with pytest.raises(CardError, match="Dataset card here.yaml is invalid") as err:
        card_from_dict({**_valid(), **change}, "here.yaml")
    assert message in str(err.value)


def test_checksum_must_be_hex_of_the_right_length():
    data = _valid()
    data["obtain"] = {"kind": "download", "files": [
        {"url": "https://x", "filename": "x", "checksum": {"algorithm": "md5", "value": "abc"}}]}
    with pytest.raises(CardError, match="md5 must be 32 hex digits"):
        card_from_dict(data, "c.yaml")


def test_catalog_rejects_duplicate_alias(tmp_path):
    for name, alias in (("one", "x"), ("two", "x")):
        data = {**_valid(), "name": name, "aliases": [alias]}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(CardError, match="'x' in .*two.yaml is used twice"):
        Catalog.load(tmp_path)
