"""The docs' lists and counts of loaders and cards agree with the registry and the catalog.

docs/datasets.md keeps a loader table and a catalog table written by hand (with a line of
description each); these tests fail, naming the difference, when a loader or a card is added,
removed or renamed without the docs following.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import markdown_doc as md
from registry.catalog import Catalog
from registry.loaders import LOADERS

ROOT = Path(__file__).resolve().parents[1]
DATASETS_MD = ROOT / "docs" / "datasets.md"
CARD_COUNT = re.compile(r"\b(\d+) (?:dataset )?cards\b")


def _loader_table() -> list[str]:
    section = md.section(DATASETS_MD.read_text(), "## Loaders: the on-disk formats")
    return [re.fullmatch(r"`([^`]+)`", row[0]).group(1) for row in md.first_table(section)]


def test_the_loader_table_lists_every_registered_loader_once():
    listed = _loader_table()
    assert len(listed) == len(set(listed)), f"listed twice: {listed}"
    missing = sorted(set(LOADERS.names()) - set(listed))
    unknown = sorted(set(listed) - set(LOADERS.names()))
    assert not missing, f"registered but not in docs/datasets.md's loader table: {missing}"
    assert not unknown, f"in docs/datasets.md's loader table but not registered: {unknown}"


def test_the_catalog_table_lists_every_card():
    catalog = Catalog.load()
    section = md.section(DATASETS_MD.read_text(), "## The catalog: `bench datasets`")
    named = {n for row in md.first_table(section) for n in re.findall(r"`([^`]+)`", row[1])}
    missing = sorted(set(catalog.cards) - named)
    unknown = sorted(named - set(catalog.cards) - set(catalog.aliases))
    assert not missing, f"cards not in docs/datasets.md's catalog table: {missing}"
    assert not unknown, f"names in docs/datasets.md's catalog table that no card has: {unknown}"


@pytest.mark.parametrize("doc", ["docs/datasets.md", "README.md"])
def test_the_card_count_written_in_the_docs_is_the_catalogs(doc):
    counts = [int(n) for n in CARD_COUNT.findall((ROOT / doc).read_text())]
    assert counts, f"{doc} no longer states the number of cards (update this test)"
    assert set(counts) == {len(Catalog.load().cards)}, \
        f"{doc} says {counts} cards, the catalog holds {len(Catalog.load().cards)}"
