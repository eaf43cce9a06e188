"""Contract tests run over every registered loader and every embedded-dataset builder.

A new loader gets these by being registered (a loader without a fixture in tests/formats.py
fails); a new offline dataset (a builder module in registry/embedded/ plus its card) gets the
builder tests by its card naming the builder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import python_in_fresh_process
from formats import FIXTURES
from registry.card import DatasetCard
from registry.catalog import Catalog
from registry.embedded.builders import BUILDERS, EmbeddedData, register_builder
from registry.errors import CardError, DatasetFormatError, UnknownNameError
from registry.loaders import LOADERS, Loader, LoaderContext, SampleTable, register_loader
from registry.loaders.arrays import ArrayLoader
from registry.loaders.base import LoaderOptions, check_loader
from registry.names import ContractError
from registry.paths import BenchPaths

NEEDS_PATH = [n for n in LOADERS.names() if LOADERS.get(n).needs_path]
FILE_READERS = [n for n in LOADERS.names() if LOADERS.get(n).parallel_read]
REQUIRED_OPTIONS = [(n, f) for n in LOADERS.names()
                    for f, info in LOADERS.get(n).Options.model_fields.items() if info.is_required()]


def _loader(name: str, fixture, tmp_path: Path, options=None, classes="fixture"):
    classes = fixture.classes if classes == "fixture" else classes
    ctx = LoaderContext(BenchPaths(tmp_path / "home"), "fixture", classes)
    return LOADERS.get(name)(options if options is not None else fixture.options, ctx)


def test_every_loader_has_a_format_fixture():
    assert sorted(FIXTURES) == LOADERS.names()


@pytest.mark.parametrize("name", LOADERS.names())
def test_every_loader_meets_the_written_contract(name):
    check_loader(name, LOADERS.get(name))  # plugins added by entry point included


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
        sized, native = loader.read_sized(table, i)
        np.testing.assert_array_equal(sized, one)
        assert len(native) == 2 and min(native) > 0
    if fixture.native_shape is not None:
        assert all(img.shape == fixture.native_shape for img in streamed)


@pytest.mark.parametrize("name", LOADERS.names())
def test_scan_is_deterministic(name, tmp_path):
    fixture = FIXTURES[name](tmp_path / "data")
    first = _loader(name, fixture, tmp_path).scan(fixture.root)
    second = _loader(name, fixture, tmp_path).scan(fixture.root)
    np.testing.assert_array_equal(first.labels, second.labels)
    assert [str(r) for r in first.refs] == [str(r) for r in second.refs]


# Bad input: every loader refuses it with an error naming the value and the fix ---------------


@pytest.mark.parametrize("name", LOADERS.names())
def test_unknown_option_is_a_card_error(name, tmp_path):
    fixture = FIXTURES[name](tmp_path / "data")
    with pytest.raises(CardError, match=f"Options for loader '{name}' are invalid.*no_such_option"):
        _loader(name, fixture, tmp_path, {**fixture.options, "no_such_option": 1})


@pytest.mark.parametrize("name,option", REQUIRED_OPTIONS)
def test_missing_required_option_is_a_card_error(name, option, tmp_path):
    fixture = FIXTURES[name](tmp_path / "data")
    options = {k: v for k, v in fixture.options.items() if k != option}
    with pytest.raises(CardError, match=f"loader '{name}' are invalid: {option}: Field required"):
        _loader(name, fixture, tmp_path, options)


@pytest.mark.parametrize("name", LOADERS.names())
def test_a_card_with_a_class_too_few_is_refused(name, tmp_path):
    """Either the scan refuses it, or the table it returns names other classes than the card
    (registration compares them); never labels outside the card's classes."""
    fixture = FIXTURES[name](tmp_path / "data")
    fewer = tuple(fixture.classes[:-1])
    try:
        table = _loader(name, fixture, tmp_path, classes=fewer).scan(fixture.root)
    except DatasetFormatError as err:
        assert "card" in str(err)
        return
    assert tuple(table.class_names) != fewer


def test_labels_outside_the_classes_are_refused():
    with pytest.raises(DatasetFormatError, match=r"Labels in here run 0\.\.2, outside the card's "
                                                 r"2 classes \['a', 'b'\]. Fix the card's classes"):
        SampleTable(("a", "b"), np.asarray([0, 2, 1]), np.arange(3), "here")


@pytest.mark.parametrize("name", NEEDS_PATH)
def test_missing_folder_names_the_path(name, tmp_path):
    fixture = FIXTURES[name](tmp_path / "data")
    with pytest.raises(DatasetFormatError, match="does-not-exist"):
        _loader(name, fixture, tmp_path).scan(tmp_path / "does-not-exist")


@pytest.mark.parametrize("name", NEEDS_PATH)
def test_a_file_instead_of_a_folder_names_the_path(name, tmp_path):
    fixture = FIXTURES[name](tmp_path / "data")
    (tmp_path / "a-file.txt").write_text("not a folder")
    with pytest.raises(DatasetFormatError, match="a-file.txt.*is not a folder. Pass --path"):
        _loader(name, fixture, tmp_path).scan(tmp_path / "a-file.txt")


@pytest.mark.parametrize("name", NEEDS_PATH)
def test_an_empty_folder_is_refused_naming_it(name, tmp_path):
    fixture = FIXTURES[name](tmp_path / "data")
    (tmp_path / "empty-folder").mkdir()
    with pytest.raises(DatasetFormatError, match="empty-folder") as err:
        _loader(name, fixture, tmp_path).scan(tmp_path / "empty-folder")
    assert err.value.hint  # and says what to do


@pytest.mark.parametrize("name", FILE_READERS)
def test_an_undecodable_file_is_named(name, tmp_path):
    fixture = FIXTURES[name](tmp_path / "data")
    loader = _loader(name, fixture, tmp_path)
    table = loader.scan(fixture.root)
    bad = Path(table.refs[0])
    bad.write_bytes(bad.read_bytes()[:30])
    with pytest.raises(DatasetFormatError, match=f"{bad.name} does not decode.*Replace or delete"):
        loader.read(table, 0)


# The contract is checked at registration: what a loader lacks is named, with the fix ----------


class _Options(LoaderOptions):
    pass


def _scan(self, root):
    return SampleTable(("a",), np.zeros(1, dtype=np.int64), [0], "x")


def _read(self, table, index):
    return np.zeros((2, 2), dtype=np.uint8)


GOOD = {"name": "tiny-format", "Options": _Options, "scan": _scan, "read": _read}


@pytest.mark.parametrize("change,message,fix", [
    ({"name": None}, "`name` is missing from the class body", 'set name = "my-format"'),
    ({"name": "Tiny_Format"}, "`name` = 'Tiny_Format' is not valid", "lowercase words"),
    ({"read": None}, "read() is not implemented", "implement read(self, table: SampleTable"),
    ({"scan": None, "read": None}, "read() is not implemented; scan() is not implemented",
     "implement scan(self, root: Path | None)"),
    ({"Options": dict}, "`Options` = <class 'dict'> is not valid", "subclass of registry"),
    ({"needs_path": "yes"}, "`needs_path` = 'yes' is not valid", "needs_path = True"),
    ({"scan": lambda self: None}, "`scan` = ", "scan(self, root) -> SampleTable"),
    ({"read": lambda self, table: None}, "`read` = ", "read(self, table, index)"),
    ({"__init__": lambda self: None}, "`__init__` = ", "(options, context) arguments"),
])
def test_registration_refuses_a_loader_naming_what_it_lacks(change, message, fix):
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    cls = type("TinyLoader", (Loader,), {"__module__": "tests.tiny", **body})
    before = LOADERS.names()
    with pytest.raises(ContractError, match="Loader tests.tiny:TinyLoader cannot be registered") \
            as err:
        register_loader(cls)
    assert message in err.value.what and fix in err.value.hint
    assert 'docs/contributing.md, "A dataset loader"' in err.value.hint
    assert LOADERS.names() == before and "tiny-format" not in LOADERS


def test_registration_refuses_what_is_no_loader_or_lacks_rows():
    with pytest.raises(ContractError, match="not a subclass of registry.loaders.base.Loader"):
        register_loader(type("NotALoader", (), {"name": "not-a-loader"}))
    array_like = type("Rowless", (ArrayLoader,), {"name": "rowless", "scan": _scan})
    with pytest.raises(ContractError, match=r"rows\(\) is not implemented.*implement rows\(self"):
        register_loader(array_like)


def test_a_loader_meeting_the_contract_passes_the_check():
    check_loader("tiny-format", type("TinyLoader", (Loader,), dict(GOOD)))


# Embedded-dataset builders: one module each in registry/embedded/, found by name ------------


def _embedded_cards() -> list[DatasetCard]:
    return [c for c in Catalog.load().cards.values() if c.format.loader == "embedded"]


def test_builders_are_listed_without_importing_them_or_torch():
    code = ("import sys\n"
            "from registry.embedded.builders import BUILDERS\n"
            "from registry.loaders.embedded import EmbeddedLoader\n"
            "names = BUILDERS.names()\n"
            "loaded = [m for m in sys.modules if m.startswith('registry.embedded.')]\n"
            "assert loaded == ['registry.embedded.builders'], loaded\n"
            "assert not {'torch', 'sklearn', 'skimage', 'pydicom'} & set(sys.modules)\n"
            "print(names)")
    out = python_in_fresh_process(code)
    assert "'digits'" in out and "'dicom-modality'" in out


def test_every_builder_found_in_the_source_is_what_its_module_registers():
    for name, ext in BUILDERS.extensions().items():
        fn = BUILDERS.get(name)
        assert f"{fn.__module__}:{fn.__qualname__}" == ext.target


def test_every_builder_has_a_card_and_every_card_a_builder():
    used = {c.format.options["builder"] for c in _embedded_cards()}
    assert sorted(used) == BUILDERS.names()


@pytest.mark.parametrize("card", _embedded_cards(), ids=lambda c: c.name)
def test_an_embedded_card_matches_what_its_builder_makes(card, tmp_path):
    ctx = LoaderContext(BenchPaths(tmp_path), card.name, card.classes)
    loader = LOADERS.get("embedded")(dict(card.format.options), ctx)
    table = loader.scan(None)
    images = loader.rows(table, np.asarray(table.refs))
    assert tuple(table.class_names) == card.classes and images.dtype == np.uint8
    assert card.n_samples in (None, len(table))
    if card.image_size is not None:
        assert all(lo <= side <= hi for lo, side, hi in
                   zip(card.image_size.min, images.shape[1:3], card.image_size.max))
    assert (images.ndim == 4) == (card.channels == 3)


def test_an_unknown_builder_suggests_close_names(tmp_path):
    ctx = LoaderContext(BenchPaths(tmp_path), "x", None)
    with pytest.raises(UnknownNameError, match="Unknown embedded dataset builder 'digit'. "
                                               "Did you mean 'digits'"):
        LOADERS.get("embedded")({"builder": "digit"}, ctx).scan(None)


@pytest.mark.parametrize("name,fn,message", [
    ("My_Set", lambda params, seed: None, "builder name 'My_Set' is not valid"),
    ("my-set", lambda params: None, "must be a function called as builder(params, seed)"),
])
def test_registration_refuses_a_bad_builder(name, fn, message):
    with pytest.raises(ContractError) as err:
        register_builder(name)(fn)
    assert message in err.value.what and "docs/contributing.md" in err.value.hint
    assert "my-set" not in BUILDERS


def test_a_builder_returning_the_wrong_thing_is_refused(tmp_path):
    register_builder("float-images")(
        lambda params, seed: EmbeddedData(np.zeros((2, 4, 4)), np.zeros(2, np.int64), ("a",)))
    try:
        ctx = LoaderContext(BenchPaths(tmp_path), "x", None)
        with pytest.raises(ContractError, match="'float-images' returned images float64"):
            LOADERS.get("embedded")({"builder": "float-images"}, ctx).scan(None)
    finally:
        BUILDERS._items.pop("float-images")
