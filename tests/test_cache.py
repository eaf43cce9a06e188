"""The decode-once cache: conversions match PIL, writes are atomic."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import formats
from registry.cache import build_cache, resize, to_channels
from registry.loaders.embedded import BUILDERS  # importing the loader fills the registry
from registry.loaders import LOADERS, LoaderContext
from registry.paths import BenchPaths


def test_rgb_to_gray_matches_pil():
    rgb = np.random.default_rng(0).integers(0, 256, (13, 17, 3), dtype=np.uint8)
    ours = to_channels(rgb, 1)[..., 0]
    pil = np.asarray(Image.fromarray(rgb).convert("L"))
    assert np.abs(ours.astype(int) - pil.astype(int)).max() <= 1


def test_gray_to_rgb_replicates():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = to_channels(gray, 3)
    assert out.shape == (3, 4, 3) and all((out[..., c] == gray).all() for c in range(3))


def test_resize_matches_pil_per_plane():
    img = np.random.default_rng(1).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    ours = resize(img, (10, 20))
    pil = np.asarray(Image.fromarray(img).resize((20, 10), Image.BILINEAR))
    assert ours.shape == (10, 20, 3) and np.abs(ours.astype(int) - pil.astype(int)).max() <= 1


class _Interrupting:
    """Wraps a loader; raises KeyboardInterrupt after ``after`` images (a user's Ctrl-C)."""

    parallel_read = False

    def __init__(self, loader, after):
        self.loader, self.after = loader, after

    def iter_images(self, table):
        for i, img in enumerate(self.loader.iter_images(table)):
            if i == self.after:
                raise KeyboardInterrupt
            yield img


def test_interrupted_build_leaves_no_files(tmp_path):
    fx = formats.write_medmnist(tmp_path / "d")
    loader = LOADERS.get("medmnist")(fx.options, LoaderContext(BenchPaths(tmp_path), "t", fx.classes))
    table = loader.scan(fx.root)
    final = tmp_path / "cache" / "t" / "abc"
    with pytest.raises(KeyboardInterrupt):
        build_cache(_Interrupting(loader, 5), table, final, ((16, 16),), 3)
    assert not final.exists() and list((tmp_path / "cache" / "t").iterdir()) == []


def test_cache_content_equals_direct_decode(tmp_path):
    fx = formats.write_kimia960(tmp_path / "d")
    loader = LOADERS.get("kimia960")({}, LoaderContext(BenchPaths(tmp_path), "t", fx.classes))
    table = loader.scan(fx.root)
    result = build_cache(loader, table, tmp_path / "c", ((17, 31),), 3, workers=2)
    cached = np.load(result.files[0].path)
    for i, path in enumerate(table.refs):
        np.testing.assert_array_equal(cached[i].transpose(1, 2, 0), np.asarray(Image.open(path)))
    assert result.native_min == (17, 31) == result.native_max


@pytest.mark.parametrize("builder", BUILDERS.names())
def test_embedded_builders_are_deterministic(builder):
    a = BUILDERS.get(builder)({}, 5)
    b = BUILDERS.get(builder)({}, 5)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.images.dtype == np.uint8


def test_multilabel_medmnist(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "d"
    root.mkdir()
    arrays = {}
    for split, n in {"train": 5, "val": 2, "test": 2}.items():
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (n, 4), dtype=np.uint8)
    np.savez(root / "chestmnist.npz", **arrays)
    classes = ("a", "b", "c", "d")
    loader = LOADERS.get("medmnist")({"file": "chestmnist.npz", "multilabel": True},
                                     LoaderContext(BenchPaths(tmp_path), "t", classes))
    table = loader.scan(root)
    expected = np.concatenate([arrays[f"{s}_labels"] for s in ("train", "val", "test")]).sum(0)
    assert table.multilabel and list(table.class_counts().values()) == expected.tolist()


@pytest.mark.parametrize("workers", [1, 2])
def test_large_jpegs_decode_in_draft_mode_but_report_native_size(tmp_path, workers):
    rng = np.random.default_rng(0)
    root = tmp_path / "d"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(
                root / cls / f"{i}.jpg")
    loader = LOADERS.get("imagefolder")({}, LoaderContext(BenchPaths(tmp_path), "t", ("a", "b")))
    table = loader.scan(root)
    result = build_cache(loader, table, tmp_path / "c", ((32, 32),), 3, workers=workers)
    assert loader.draft_size == (32, 32)
    assert result.native_min == (480, 640) == result.native_max
    drafted, native = loader.read_sized(table, 0)
    assert drafted.shape == (60, 80, 3) and native == (480, 640)  # 1/8 DCT scale
    full = np.asarray(Image.open(table.refs[0]).convert("RGB").resize((32, 32), Image.BILINEAR))
    cached = np.load(result.files[0].path)[0].transpose(1, 2, 0)
    assert np.abs(cached.astype(int) - full.astype(int)).mean() < 12  # same picture
