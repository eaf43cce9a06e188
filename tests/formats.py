"""Tiny copies of every real on-disk format, with the real file names, keys and quirks.

Each writer takes a folder, writes the data and returns a :class:`Fixture` saying which loader
options to use and what the loader must find. ``FIXTURES`` maps every loader name to its writer;
a contract test fails when a registered loader has none. tests/test_loader_contract.py runs every
loader on its fixture, and on bad input made from it (a missing required option, a card with a
class too few, a file or an empty folder as --path, and, for one-file-per-sample formats, the
first file truncated).
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from PIL import Image

RNG_SEED = 1234


@dataclass
class Fixture:
    root: Path | None
    options: dict[str, Any]
    classes: tuple[str, ...]
    counts: dict[str, int]
    catalog_name: str | None = None
    native_shape: tuple[int, ...] | None = None  # shape of one decoded image, if fixed
    extra: dict[str, Any] = field(default_factory=dict)


def image(rng: np.random.Generator, h: int, w: int, mode: str = "RGB") -> Image.Image:
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    return Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8), mode)


def write_imagefolder(root: Path) -> Fixture:
    rng = np.random.default_rng(RNG_SEED)
    counts = {"benign": 3, "malignant": 2}
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            image(rng, 20 + i, 24).save(root / cls / f"img_{i}.png")
    (root / "benign" / ".DS_Store").write_bytes(b"\0\1junk")
    (root / "benign" / "notes.txt").write_text("not an image")
    return Fixture(root, {}, ("benign", "malignant"), counts)


def write_isic2018(root: Path, per_class: int | None = None) -> Fixture:
    """ISIC 2018 Task 3's training input and one-hot ground truth; ``per_class``: that many
    images of each class (enough to split) instead of the nine of the contract test."""
    rng = np.random.default_rng(RNG_SEED)
    inp = root / "ISIC2018_Task3_Training_Input"
    gt = root / "ISIC2018_Task3_Training_GroundTruth"
    inp.mkdir(parents=True)
    gt.mkdir()
    classes = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")
    labels = [0, 1, 1, 2, 3, 4, 5, 6, 1] if per_class is None else \
        [k for k in range(7) for _ in range(per_class)]
    rows = []
    for i, y in enumerate(labels):
        name = f"ISIC_{24306 + i:07d}"
        image(rng, 45, 60).save(inp / f"{name}.jpg", quality=90)
        rows.append([name] + [f"{1.0 if k == y else 0.0}" for k in range(7)])
    (inp / "ATTRIBUTION.txt").write_text("attribution")
    (inp / "LICENSE.txt").write_text("CC BY-NC")
    with (gt / "ISIC2018_Task3_Training_GroundTruth.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([["image", *classes], *rows])
    counts = {c: labels.count(i) for i, c in enumerate(classes)}
    return Fixture(root, {}, classes, counts, catalog_name="isic2018", native_shape=(45, 60, 3))


def write_chest_xray(root: Path, scale: int = 1) -> Fixture:
    """Kaggle-style archive: chest_xray/{train,val,test}, a nested duplicate, macOS debris,
    grayscale and RGB JPEGs of different sizes (``scale`` times as many)."""
    rng = np.random.default_rng(RNG_SEED)
    top = root / "chest_xray"
    counts = {"NORMAL": 0, "PNEUMONIA": 0}
    for split, (n_norm, n_pneu) in {"train": (2 * scale, 3 * scale), "val": (scale, scale),
                                    "test": (scale, 2 * scale)}.items():
        for cls, n in (("NORMAL", n_norm), ("PNEUMONIA", n_pneu)):
            folder = top / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                mode = "L" if i % 2 == 0 else "RGB"
                image(rng, 30 + 7 * i, 40 + 3 * i, mode).save(folder / f"person{i}_{split}.jpeg")
            counts[cls] += n
            (folder / ".DS_Store").write_bytes(b"\0")
    dup = top / "chest_xray" / "train" / "NORMAL"
    dup.mkdir(parents=True)
    image(rng, 30, 30, "L").save(dup / "copy.jpeg")
    mac = top / "__MACOSX" / "train" / "NORMAL"
    mac.mkdir(parents=True)
    (mac / "._person0_train.jpeg").write_bytes(b"\0\5\x16\7 resource fork")
    return Fixture(root, {}, ("NORMAL", "PNEUMONIA"), counts, catalog_name="chest-xray")


def write_pcam(root: Path) -> Fixture:
    rng = np.random.default_rng(RNG_SEED)
    root.mkdir(parents=True, exist_ok=True)
    sizes = {"train": 40, "valid": 12, "test": 8}
    total = {0: 0, 1: 0}
    for split, n in sizes.items():
        y = (np.arange(n) % 4 == 0).astype(np.uint8)  # 25% tumour
        with h5py.File(root / f"camelyonpatch_level_2_split_{split}_x.h5", "w") as fh:
            fh.create_dataset("x", data=rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8))
        with h5py.File(root / f"camelyonpatch_level_2_split_{split}_y.h5", "w") as fh:
            fh.create_dataset("y", data=y.reshape(n, 1, 1, 1))
        for k in (0, 1):
            total[k] += int((y == k).sum())
    return Fixture(root, {"splits": ["train", "valid", "test"], "subset": None, "seed": 0},
                   ("no-tumor", "tumor"), {"no-tumor": total[0], "tumor": total[1]},
                   native_shape=(96, 96, 3))


def write_kimia960(root: Path) -> Fixture:
    rng = np.random.default_rng(RNG_SEED)
    root.mkdir(parents=True)
    counts = {"A": 3, "B": 2, "C": 2}
    for cls, n in counts.items():
        for i in range(n):
            image(rng, 17, 31).save(root / f"{cls}{i + 1}.tif")
    (root / "Thumbs.db").write_bytes(b"\0")
    return Fixture(root, {}, tuple(counts), counts, native_shape=(17, 31, 3))


def write_dtd(root: Path) -> Fixture:
    rng = np.random.default_rng(RNG_SEED)
    base = root / "dtd"
    counts = {"banded": 3, "zigzagged": 2}
    entries = []
    for cls, n in counts.items():
        (base / "images" / cls).mkdir(parents=True)
        for i in range(n):
            name = f"{cls}_{i:04d}.jpg"
            image(rng, 30 + i, 33).save(base / "images" / cls / name)
            entries.append(f"{cls}/{name}")
    (base / "images" / "banded" / ".directory").write_text("[Dolphin]")
    (base / "labels").mkdir()
    (base / "labels" / "train1.txt").write_text("\n".join(entries[::2]) + "\n")
    (base / "labels" / "test1.txt").write_text("\n".join(entries[1::2]) + "\n")
    (base / "labels" / "labels_joint_anno.txt").write_text("banded/banded_0000.jpg banded\n")
    return Fixture(root, {"split": "all"}, tuple(counts), counts)


def write_stl10(root: Path) -> Fixture:
    rng = np.random.default_rng(RNG_SEED)
    base = root / "stl10_binary"
    base.mkdir(parents=True)
    classes = ("airplane", "bird", "car")
    (base / "class_names.txt").write_text("\n".join(classes) + "\n")
    counts = dict.fromkeys(classes, 0)
    images = {}
    for split, labels in {"train": [1, 2, 3, 1], "test": [2, 3]}.items():
        x = rng.integers(0, 256, (len(labels), 96, 96, 3), dtype=np.uint8)
        images[split] = x
        # real layout: per image, channel planes, each plane column-major
        x.transpose(0, 3, 2, 1).tofile(base / f"{split}_X.bin")
        np.asarray(labels, dtype=np.uint8).tofile(base / f"{split}_y.bin")
        for y in labels:
            counts[classes[y - 1]] += 1
    return Fixture(root, {}, classes, counts, native_shape=(96, 96, 3),
                   extra={"first_image": images["train"][0]})


def write_medmnist(root: Path) -> Fixture:
    rng = np.random.default_rng(RNG_SEED)
    root.mkdir(parents=True)
    arrays = {}
    counts = np.zeros(3, dtype=int)
    for split, n in {"train": 6, "val": 3, "test": 3}.items():  # every class in every split
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28, 3), dtype=np.uint8)
        y = (np.arange(n) % 3).reshape(n, 1).astype(np.uint8)
        arrays[f"{split}_labels"] = y
        counts += np.bincount(y.ravel(), minlength=3)
    np.savez(root / "dermamnist.npz", **arrays)
    classes = ("a", "b", "c")
    return Fixture(root, {"file": "dermamnist.npz"}, classes,
                   {c: int(n) for c, n in zip(classes, counts)}, native_shape=(28, 28, 3))


def _idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_idx(root: Path) -> Fixture:
    rng = np.random.default_rng(RNG_SEED)
    root.mkdir(parents=True)
    labels = {"train": [0, 1, 2, 1], "t10k": [2, 0]}
    for split, ys in labels.items():
        x = rng.integers(0, 256, (len(ys), 28, 28), dtype=np.uint8)
        with gzip.open(root / f"{split}-images-idx3-ubyte.gz", "wb") as fh:
            fh.write(_idx_bytes(x))
        with gzip.open(root / f"{split}-labels-idx1-ubyte.gz", "wb") as fh:
            fh.write(_idx_bytes(np.asarray(ys)))
    opts = {"pairs": [["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"],
                      ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]]}
    return Fixture(root, opts, ("0", "1", "2"), {"0": 2, "1": 2, "2": 2}, native_shape=(28, 28))


def write_amat(root: Path) -> Fixture:
    rng = np.random.default_rng(RNG_SEED)
    root.mkdir(parents=True)
    files = {"mnist_background_images_train.amat": [3, 1, 0],
             "mnist_background_images_test.amat": [1, 2]}
    for name, ys in files.items():
        rows = np.concatenate([rng.random((len(ys), 784)).round(6),
                               np.asarray(ys, dtype=float)[:, None]], axis=1)
        np.savetxt(root / name, rows, fmt="%.6g", delimiter="   ")
    return Fixture(root, {"files": list(files)}, ("0", "1", "2", "3"),
                   {"0": 1, "1": 2, "2": 1, "3": 1}, native_shape=(28, 28))


def write_imagenet_subset(root: Path) -> Fixture:
    rng = np.random.default_rng(RNG_SEED)
    synsets = {"brick": ["n02897820"], "chain": ["n02999410"]}
    for i, wnid in enumerate(["n02897820", "n02999410", "n01440764"]):
        folder = root / "train" / wnid
        folder.mkdir(parents=True)
        for k in range(4):
            image(rng, 21, 25).save(folder / f"{wnid}_{k}.JPEG")
    return Fixture(root, {"synsets": synsets, "per_class": 3, "seed": 0}, ("brick", "chain"),
                   {"brick": 3, "chain": 3})


def write_openml(root: Path) -> Fixture:
    from openml_cache import write_openml_cache

    expected = write_openml_cache(root, did=28, n_per_class=3)
    classes = tuple(str(c) for c in range(10))
    return Fixture(root, {"dataset_id": 28, "shape": [8, 8], "max_value": 16}, classes,
                   dict.fromkeys(classes, 3), native_shape=(8, 8), extra=expected)


def write_embedded(root: Path) -> Fixture:
    classes = ("face", "non-face")
    return Fixture(None, {"builder": "lfw-faces"}, classes, {"face": 100, "non-face": 100},
                   native_shape=(25, 25))


FIXTURES: dict[str, Callable[[Path], Fixture]] = {
    "imagefolder": write_imagefolder, "isic2018": write_isic2018, "chest-xray": write_chest_xray,
    "pcam": write_pcam, "kimia960": write_kimia960, "dtd": write_dtd, "stl10": write_stl10,
    "medmnist": write_medmnist, "idx": write_idx, "amat": write_amat,
    "imagenet-subset": write_imagenet_subset, "openml": write_openml, "embedded": write_embedded,
}
