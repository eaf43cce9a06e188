"""Contract tests run over every registered loader (a new loader without a fixture fails)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from formats import FIXTURES
from registry.errors import CardError
from registry.loaders import LOADERS, LoaderContext
from registry.paths import BenchPaths


def _loader(name: str, fixture, tmp_path: Path, options=None):
    ctx = LoaderContext(BenchPaths(tmp_path / "home"), "fixture", fixture.classes)
    return LOADERS.get(name)(options if options is not None else fixture.options, ctx)


def test_every_loader_has_a_format_fixture():
    assert sorted(FIXTURES) == LOADERS.names()


@pytest.mark.parametrize("name", LOADERS.names())
def test_scan_finds_the_fixture_counts(name, tmp_path):
    fixture = FIXTURES[name](tmp_path / "data")
    table = _loader(name, fixture, tmp_path).scan(fixture.root)
    assert tuple(table.class_names) == fixture.classes
    assert table.class_counts() == fixture.counts
    assert len(table) == sum(fixture.counts.values())
    assert table.labels.dtype == np.int64


@pytest.mark.parametrize("name", LOADERS.names())
def test_images_decode_to_uint8_in_table_order(name, tmp_path):
    fixture = FIXTURES[name](tmp_path / "data")
    loader = _loader(name, fixture, tmp_path)
    table = loader.scan(fixture.root)
    streamed = list(loader.iter_images(table))
    assert len(streamed) == len(table)
    for i in (0, len(table) - 1):
        one = loader.read(table, i)
        assert one.dtype == np.uint8 and one.ndim in (2, 3)
        np.testing.assert_array_equal(one, streamed[i])
    if fixture.native_shape is not None:
        assert all(img.shape == fixture.native_shape for img in streamed)


@pytest.mark.parametrize("name", LOADERS.names())
def test_scan_is_deterministic(name, tmp_path):
    fixture = FIXTURES[name](tmp_path / "data")
    first = _loader(name, fixture, tmp_path).scan(fixture.root)
    second = _loader(name, fixture, tmp_path).scan(fixture.root)
    np.testing.assert_array_equal(first.labels, second.labels)
    assert [str(r) for r in first.refs] == [str(r) for r in second.refs]


@pytest.mark.parametrize("name", LOADERS.names())
def test_unknown_option_is_a_card_error(name, tmp_path):
    fixture = FIXTURES[name](tmp_path / "data")
    with pytest.raises(CardError, match=f"Options for loader '{name}' are invalid.*no_such_option"):
        _loader(name, fixture, tmp_path, {**fixture.options, "no_such_option": 1})


@pytest.mark.parametrize("name", [n for n in LOADERS.names() if LOADERS.get(n).needs_path])
def test_missing_folder_names_the_path(name, tmp_path):
    fixture = FIXTURES[name](tmp_path / "data")
    missing = tmp_path / "does-not-exist"
    from registry.errors import DatasetFormatError

    with pytest.raises(DatasetFormatError, match="does-not-exist"):
        _loader(name, fixture, tmp_path).scan(missing)
