"""Registration throughput, side by side in one run (not a test; run by hand):

    python tests/bench/bench_cache.py [--images 600] [--workers 2]

Writes ISIC-like JPEGs (600x450, RGB) into a temporary imagefolder, then times the decode-once
cache at 112x112 three ways on the same files: (a) ours (threads + JPEG draft), (b) ours with one
thread and no draft, (c) a plain loop: PIL open, convert, resize, stack. Prints images/s and the
ratios (a)/(c) and (b)/(c).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from registry.cache import build_cache
from registry.loaders import LOADERS, LoaderContext
from registry.loaders.base import decode_image_sized
from registry.paths import BenchPaths


def make_jpegs(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (45, 60, 3), dtype=np.uint8)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
    for i in range(n):
        # smooth photo-like content (noise compresses badly and is unlike real data)
        img = Image.fromarray(np.roll(base, i, axis=1)).resize((600, 450), Image.BICUBIC)
        img.save(root / ("a" if i % 2 else "b") / f"{i:05d}.jpg", quality=90)


def ours(root: Path, out: Path, workers: int, draft: bool) -> float:
    """Build the 112x112 cache; ``draft=False`` pins JPEG draft decoding off."""
    loader = LOADERS.get("imagefolder")({}, LoaderContext(BenchPaths(out), "b", ("a", "b")))
    table = loader.scan(root)
    if not draft:
        loader.read_sized = lambda t, i: decode_image_sized(t.refs[i], None)
    start = time.perf_counter()
    build_cache(loader, table, out / "c", ((112, 112),), 3, workers=workers)
    return len(table) / (time.perf_counter() - start)


def plain_loop(root: Path) -> float:
    files = sorted(root.rglob("*.jpg"))
    start = time.perf_counter()
    arrays = [np.asarray(Image.open(f).convert("RGB").resize((112, 112), Image.BILINEAR))
              for f in files]
    np.stack(arrays)
    return len(files) / (time.perf_counter() - start)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        make_jpegs(root, args.images)
        c = plain_loop(root)
        a = ours(root, Path(tmp) / "a", args.workers, draft=True)
        b = ours(root, Path(tmp) / "b", 1, draft=False)
    print(f"images: {args.images} JPEGs 600x450 -> 112x112, workers={args.workers}")
    print(f"(a) ours, threads + draft : {a:8.1f} images/s")
    print(f"(b) ours, 1 thread, no draft: {b:8.1f} images/s")
    print(f"(c) plain PIL loop        : {c:8.1f} images/s")
    print(f"(a)/(c) = {a / c:.2f}   (b)/(c) = {b / c:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
