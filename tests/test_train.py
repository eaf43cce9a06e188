"""The training loop on real (embedded) data: determinism, augmentation, batching."""

from __future__ import annotations

import pytest
import torch

from benchmark.engine.augment import augment
from benchmark.suite.settings import Augmentation, Optimizer, TrainSettings
from bench_core.data import load_device_data
from bench_core.models import build_model
from benchmark.suite.splits import fold_splits
from benchmark.engine.train import batches, fit
from registry.catalog import Catalog
from registry.register import AddRequest, add_dataset
from registry.store import RegistryStore


@pytest.fixture
def lfw(paths):
    add_dataset(AddRequest("lfw-faces"), paths, Catalog.load())
    return load_device_data(RegistryStore(paths.registry_db).get("lfw-faces"), (16, 16),
                            torch.device("cpu"))


def _fit(data, seed):
    split = fold_splits(data.labels_np, 3, 0.5, 0)[0]
    settings = TrainSettings(image_size=(16, 16), batch_size=32, epochs=2,
                             optimizer=Optimizer(lr=1e-3))
    torch.manual_seed(123)  # model init
    model = build_model("resnet10t", 2, 0.5)
    return fit(model, data, split, settings, torch.device("cpu"), seed)


def test_same_seed_same_auc_on_cpu(lfw):
    a, b = _fit(lfw, 0), _fit(lfw, 0)
    assert a.test == b.test and a.history == [dict(h, train_images_per_s=x["train_images_per_s"])
                                              for h, x in zip(b.history, a.history)]
    assert 0.5 < a.test["auc"] <= 1.0


def test_history_and_best_epoch(lfw):
    r = _fit(lfw, 1)
    assert len(r.history) == 2 and r.best_epoch in (0, 1)
    best = max(range(2), key=lambda e: r.history[e]["val_auc"])
    assert r.best_epoch == best


def test_resized_on_device_when_size_not_cached(paths):
    add_dataset(AddRequest("digits"), paths, Catalog.load())
    rec = RegistryStore(paths.registry_db).get("digits")
    data = load_device_data(rec, (20, 20), torch.device("cpu"))
    assert data.images.shape == (1797, 1, 20, 20) and data.images.dtype == torch.uint8


def test_augmentation_off_is_identity_and_on_changes_pixels():
    x = torch.rand(4, 3, 16, 16)
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(augment(x, Augmentation(rotation=0, shift=0, hflip=False), gen), x)
    y = augment(x, Augmentation(), gen)
    assert y.shape == x.shape and not torch.allclose(x, y)


def test_pure_flip_matches_torch_flip():
    x = torch.rand(64, 1, 8, 8)
    gen = torch.Generator().manual_seed(3)
    y = augment(x, Augmentation(rotation=0, shift=0, hflip=True), gen)
    flipped = torch.flip(x, dims=[3])
    per = [(torch.allclose(a, b, atol=1e-5) or torch.allclose(a, c, atol=1e-5))
           for a, b, c in zip(y, x, flipped)]
    assert all(per)
    n_flipped = sum(torch.allclose(a, c, atol=1e-5) for a, c in zip(y, flipped))
    assert 15 < n_flipped < 49


def test_batches_never_leave_a_single_sample():
    for n in range(1, 300):
        sizes = [s.stop - s.start for s in batches(n, 64)]
        assert sum(sizes) == n and (n == 1 or min(sizes) >= 2)
