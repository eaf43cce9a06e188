"""Training throughput, side by side in one run (not a test; run by hand):

    python tests/bench/bench_train.py [--images 512] [--size 64] [--arch resnet10t]
                                      [--batch 64] [--epochs 3] [--device auto] [--workers 2]

The same model and the same images (ISIC-like 600x450 JPEGs) three ways:
  (a) ours: registered once (decode-once uint8 cache), held on the device, index-gathered
      batches, batched on-device augmentation, bf16 + channels_last on CUDA;
  (b) the limit: the same model and optimiser stepping on random tensors already on the device;
  (c) conventional: torchvision ImageFolder decoding the JPEGs every epoch, CPU transforms
      (Resize, RandomAffine(10, translate 0.1), RandomHorizontalFlip, ToTensor, Normalize) and a
      DataLoader with worker processes.
Prints images/s of each (last epoch, after a warm-up epoch) and the ratios (a)/(b), (a)/(c).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from bench_cache import make_jpegs  # noqa: E402

from benchmark.suite.settings import Augmentation, Optimizer, TrainSettings  # noqa: E402
from bench_core.data import load_device_data  # noqa: E402
from bench_core.devices import resolve_device  # noqa: E402
from bench_core.models import build_model  # noqa: E402
from benchmark.suite.splits import Split  # noqa: E402
from bench_core.batches import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from benchmark.engine.train import fit  # noqa: E402
from registry.catalog import Catalog  # noqa: E402
from registry.paths import BenchPaths  # noqa: E402
from registry.register import AddRequest, add_dataset  # noqa: E402


def ours(paths: BenchPaths, root: Path, args, device: torch.device) -> float:
    req = AddRequest("bench-jpegs", path=root, format="imagefolder", sizes=((args.size, args.size),))
    record = add_dataset(req, paths, Catalog.load()).record
    data = load_device_data(record, (args.size, args.size), device)
    labels = data.labels_np
    held = np.concatenate([np.flatnonzero(labels == c)[:16] for c in range(data.n_classes)])
    split = Split(np.arange(len(labels)), held, held)  # train on all; small val/test for timing
    settings = TrainSettings(image_size=(args.size, args.size), batch_size=args.batch,
                             epochs=args.epochs, optimizer=Optimizer(lr=1e-3),
                             augmentation=Augmentation(rotation=10, shift=0.1, hflip=True))
    rates = []
    fit(build_model(args.arch, 2, 0.5), data, split, settings, device, 0,
        on_epoch=lambda e, m: rates.append(m["train_images_per_s"]))
    return rates[-1]


def limit(args, device: torch.device, n: int) -> float:
    model = build_model(args.arch, 2, 0.5).to(device).train()
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (args.batch,), device=device)
    steps = max(1, n // args.batch)
    rate = 0.0
    for _ in range(args.epochs):
        start = time.perf_counter()
        for _ in range(steps):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if cuda:
            torch.cuda.synchronize()
        rate = steps * args.batch / (time.perf_counter() - start)
    return rate


def conventional(root: Path, args, device: torch.device) -> float:
    from torchvision import datasets, transforms

    tf = transforms.Compose([
        transforms.Resize((args.size, args.size)),
        transforms.RandomAffine(10, translate=(0.1, 0.1)),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    loader = torch.utils.data.DataLoader(
        datasets.ImageFolder(str(root), tf), batch_size=args.batch, shuffle=True,
        num_workers=args.workers, pin_memory=device.type == "cuda", drop_last=True,
        persistent_workers=args.workers > 0)
    model = build_model(args.arch, 2, 0.5).to(device).train()
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    rate = 0.0
    for _ in range(args.epochs):
        start, seen = time.perf_counter(), 0
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(y)
        if cuda:
            torch.cuda.synchronize()
        rate = seen / (time.perf_counter() - start)
    return rate


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=512)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--arch", default="resnet10t")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "jpegs"
        make_jpegs(root, args.images)
        a = ours(BenchPaths(Path(tmp) / "home"), root, args, device)
        b = limit(args, device, args.images)
        c = conventional(root, args, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {name}; {args.arch} at {args.size}x{args.size}, batch {args.batch}, "
          f"{args.images} JPEGs 600x450, last of {args.epochs} epochs")
    print(f"(a) ours, device-resident uint8 + on-device augmentation : {a:9.1f} images/s")
    print(f"(b) limit, random tensors already on the device          : {b:9.1f} images/s")
    print(f"(c) conventional, decode files + DataLoader + CPU transforms: {c:9.1f} images/s")
    print(f"(a)/(b) = {a / b:.2f}   (a)/(c) = {a / c:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
