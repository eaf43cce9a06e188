"""Every check a GPU machine is lent for, in one run (not a test; run by hand):

    python tests/bench/gpu_check.py --device cuda --out gpu-check      # on a GPU, a few minutes
    python tests/bench/gpu_check.py --device cpu --tiny --out x        # the same path, seconds

1. The default suite end to end on the device (pretraining, the grid, the probes, the report),
   timed; its results table is written beside the figures (compare it with a CPU run's).
2. A slice of the paper's protocol at its settings (ResNet50 with ImageNet-shaped weights,
   112x112, batches of 128, Adam, augmentation) on data generated here in the real archive
   layouts (ISIC 2018 Task 3, the Kaggle chest X-rays; ``--images`` each): one pretraining
   epoch of ISIC 2018 and the folds of ImageNet, ISIC and scratch -> chest, measuring
   images per second of pretraining and fine-tuning and the overhead of a fold job beyond its
   training steps (evaluation, logging).
3. From those, the cost of the full cats-scans grid (every source's pretraining and every pair's
   folds, at the datasets' real sizes and the suite's epochs and image sizes) in device-hours,
   beside the goal of 2 hours on one GPU, and what would close the gap.

``--tiny`` shrinks everything (40 images, 32x32, batches of 8, 2 folds, no default suite) so
the whole path runs on a CPU in seconds (tests/test_gpu_check.py runs it). Figures go to
``OUT/gpu_check.json`` and ``OUT/gpu_check.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/formats.py
import formats  # noqa: E402

from bench_core.models import build_model  # noqa: E402
from bench_core.tracking import open_tracker  # noqa: E402
from benchmark import api  # noqa: E402
from benchmark.suite.files import load_suite_dict  # noqa: E402
from registry.catalog import Catalog  # noqa: E402
from registry.paths import BenchPaths  # noqa: E402
from registry.register import AddRequest, add_dataset  # noqa: E402

GOAL_HOURS = 2.0
PAPER = {"image_size": [112, 112], "batch_size": 128, "epochs": 1}
TINY = {"image_size": [32, 32], "batch_size": 8, "epochs": 1}


def default_suite(home: Path, device: str) -> dict:
    """`bench run` of the default suite on ``device``: seconds and its results table."""
    paths = BenchPaths(home)
    start = time.perf_counter()
    run = api.run_suite(api.plan_suite("mnist", paths), paths, api.RunOptions(device=device))
    table = run.report.table.drop(columns=["run_id"])
    return {"seconds": round(time.perf_counter() - start, 1), "jobs_run": len(run.outcomes),
            "results": table.to_dict(orient="records")}


def register_slice(paths: BenchPaths, root: Path, images: int) -> None:
    """ISIC 2018 and chest X-ray archives of ``images`` images each, in the real layouts."""
    catalog = Catalog.load()
    isic = formats.write_isic2018(root / "isic", per_class=max(10, images // 7))
    add_dataset(AddRequest("isic2018", path=isic.root), paths, catalog)
    chest = formats.write_chest_xray(root / "chest", scale=max(4, images // 10))
    add_dataset(AddRequest("chest-xray", path=chest.root), paths, catalog)


def slice_suite(root: Path, settings: dict, folds: int, weights: Path) -> Path:
    """cats-scans cut to ImageNet and ISIC 2018 as sources, the chest X-rays as target, at
    ``settings`` (the paper's, or tiny ones), one repeat of ``folds`` folds, no probes."""
    data, _ = load_suite_dict("cats-scans")
    data |= {"name": "gpu-slice", "folds": {**data["folds"], "n": folds}, "probes": []}
    data["pretrain_defaults"] |= settings
    data["finetune_defaults"] |= settings
    data["sources"] = [{"name": "imagenet", "weights": f"file:{weights}"},
                       {"name": "isic2018", "pretrain": dict(settings)}]
    data["targets"] = [{"name": "chest-xray", "finetune": dict(settings)}]
    path = root / "gpu-slice.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def measure_slice(home: Path, device: str, images: int, settings: dict, folds: int) -> dict:
    """Run the slice and read back images per second of pretraining and fine-tuning, and the
    ratio of a fold job's wall time to its training time (evaluation, logging, setup)."""
    paths, root = BenchPaths(home), home.parent
    register_slice(paths, root, images)
    weights = root / "resnet50.safetensors"
    save_file({k: v.contiguous() for k, v in build_model("resnet50", 1000, 0.0)
               .state_dict().items()}, str(weights))
    plan = api.plan_suite(slice_suite(root, settings, folds, weights), paths)
    run = api.run_suite(plan, paths, api.RunOptions(device=device), with_probes=False)
    tracker = open_tracker(paths, "transfer-bench/gpu-slice")
    runs = tracker.client.search_runs([tracker.experiment_id], max_results=500)
    pre = [r for r in runs if r.data.tags.get("level") == "pretrain"]
    fold = [r for r in runs if r.data.tags.get("level") == "fold"]
    fold_seconds = [o.seconds for o in run.outcomes if o.kind == "fold"]
    train_seconds = [int(r.data.params["n_train"]) * settings["epochs"]
                     / r.data.metrics["train_images_per_s"] for r in fold]
    return {"pretrain_images_per_s": _mean([r.data.metrics["train_images_per_s"] for r in pre]),
            "finetune_images_per_s": _mean([r.data.metrics["train_images_per_s"]
                                             for r in fold]),
            "fold_overhead": sum(fold_seconds) / max(sum(train_seconds), 1e-9),
            "folds": len(fold), "settings": settings, "images": images}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def grid_cost(slice_: dict) -> dict:
    """Device-hours of the full cats-scans grid at the datasets' real sizes, from the slice's
    throughput at 112x112 (other image sizes scaled by their pixel count, a first-order
    model of convolution cost)."""
    data, _ = load_suite_dict("cats-scans")
    cards = Catalog.load().cards
    size = lambda s: s[0] * s[1] / (112 * 112)  # noqa: E731
    pre = slice_["pretrain_images_per_s"]
    fine = slice_["finetune_images_per_s"] / slice_["fold_overhead"]
    hours_pre = 0.0
    for s in data["sources"]:
        if s.get("weights"):
            continue
        p = {**data["pretrain_defaults"], **s.get("pretrain", {})}
        hours_pre += 0.8 * cards[s["name"]].n_samples * p["epochs"] * size(p["image_size"]) / pre
    hours_fine, folds = 0.0, data["folds"]["n"]
    for t in data["targets"]:
        f = {**data["finetune_defaults"], **t.get("finetune", {})}
        sources = 1 + sum(1 for s in data["sources"]
                          if not s.get("only_targets") or t["name"] in s["only_targets"])
        n_train = (folds - 1) / folds * cards[t["name"]].n_samples
        hours_fine += sources * folds * n_train * f["epochs"] * size(f["image_size"]) / fine
    total = (hours_pre + hours_fine) / 3600
    return {"pretrain_hours": hours_pre / 3600, "finetune_hours": hours_fine / 3600,
            "total_hours": total, "goal_hours": GOAL_HOURS,
            "speedup_needed": max(total / GOAL_HOURS, 1.0)}


def report(doc: dict) -> str:
    s, g = doc["slice"], doc["grid"]
    lines = [f"# GPU check on {doc['device']} ({doc['device_name']})", "",
             f"- paper slice ({s['settings']}, {s['images']} images per dataset): pretraining "
             f"{s['pretrain_images_per_s']:.0f} images/s, fine-tuning "
             f"{s['finetune_images_per_s']:.0f} images/s, a fold job's wall time "
             f"{s['fold_overhead']:.2f}x its training steps",
             f"- the full cats-scans grid: {g['pretrain_hours']:.2f} h pretraining + "
             f"{g['finetune_hours']:.2f} h fine-tuning = {g['total_hours']:.2f} device-hours "
             f"(goal {g['goal_hours']:.0f} h: {g['speedup_needed']:.1f}x faster needed)"]
    if doc.get("default_suite"):
        lines.append(f"- the default suite end to end: {doc['default_suite']['seconds']} s")
    lines += ["", "Already on: bf16 autocast, channels-last, uint8 data on the device with "
              "on-device augmentation. What would close a remaining gap: torch.compile of the "
              "network, larger batches where memory allows, fewer evaluation passes per epoch, "
              "and running folds of different pairs concurrently on one device."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--tiny", action="store_true", help="CPU-sized: seconds, not minutes")
    ap.add_argument("--skip-default", action="store_true", help="leave out the default suite")
    ap.add_argument("--out", type=Path, default=Path("gpu-check"))
    args = ap.parse_args(argv)
    settings = dict(TINY if args.tiny else PAPER)
    images, folds = (40, 2) if args.tiny else (args.images, args.folds)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    doc: dict = {"device": args.device, "device_name": name}
    with tempfile.TemporaryDirectory() as tmp:
        if not (args.tiny or args.skip_default):
            doc["default_suite"] = default_suite(Path(tmp) / "default" / "home", args.device)
        doc["slice"] = measure_slice(Path(tmp) / "slice" / "home", args.device, images,
                                     settings, folds)
    doc["grid"] = grid_cost(doc["slice"])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(doc, indent=2, default=str))
    (args.out / "gpu_check.md").write_text(report(doc))
    print(report(doc))
    return doc


if __name__ == "__main__":
    main()
