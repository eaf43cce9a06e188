"""Fisher information against a closed form and torch.func, and the Task2Vec distances by
hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probes import distances as D
from probes.fisher import (draw_targets, fisher_batch_mean, fisher_func, fisher_loop, per_filter,
                           sample_from)
from probes.fisher_norms import fisher_norms


# -- Fisher -----------------------------------------------------------------------------------


def _linear():
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3, bias=False)
    x = torch.randn(40, 5)
    p = torch.softmax(model(x), 1).detach()
    closed = torch.einsum("nk,nj->kj", p * (1 - p), x ** 2) / len(x)  # E_y[(dlogp/dW)^2]
    return model, x, closed


def test_expected_fisher_equals_closed_form_for_linear_softmax():
    model, x, closed = _linear()
    pairs = draw_targets(model, x, "expected")
    ours = fisher_func(model, x, ["weight"], pairs, chunk=7)["weight"]
    torch.testing.assert_close(ours, closed, atol=1e-6, rtol=1e-5)
    loop = fisher_loop(model, x, ["weight"], pairs)["weight"]
    torch.testing.assert_close(loop, closed, atol=1e-6, rtol=1e-5)
    norms = fisher_norms(model, x, ["weight"], pairs, chunk=7)["weight"]
    torch.testing.assert_close(norms, closed.mean(1), atol=1e-6, rtol=1e-5)


def test_montecarlo_fisher_converges_to_closed_form():
    model, x, closed = _linear()
    draws = torch.arange(40).repeat(400)  # 16,000 draws of 40 samples: 120 distinct pairs
    pairs = draw_targets(model, x, "montecarlo", draws, torch.Generator().manual_seed(0))
    assert len(pairs) <= 120 and float(pairs.weight.sum()) == pytest.approx(1.0)
    mc = fisher_func(model, x, ["weight"], pairs, chunk=64)["weight"]
    assert ((mc - closed).abs() / closed).max() < 0.05


def test_pairs_are_the_draws_counted():
    """Each (image, sampled class) pair weighs its share of the draws; targets do not depend
    on how the draws are chunked (one uniform number per draw)."""
    model, x, _ = _linear()
    draws = torch.tensor([3, 3, 3, 7, 0, 3])
    pairs = draw_targets(model, x, "montecarlo", draws, torch.Generator().manual_seed(5))
    per_image = torch.zeros(40).index_add_(0, pairs.index, pairs.weight.float())
    torch.testing.assert_close(per_image[[0, 3, 7]], torch.tensor([1 / 6, 4 / 6, 1 / 6]))
    u = torch.rand(6, generator=torch.Generator().manual_seed(5))
    y = sample_from(torch.softmax(model(x[draws]), 1).detach(), u)
    assert {(int(i), int(t)) for i, t in zip(draws, y)} == set(zip(pairs.index.tolist(),
                                                                  pairs.target.tolist()))


def _net_and_pairs(arch: str, size: int = 16):
    from bench_core.models import build_model

    torch.manual_seed(0)
    net = build_model(arch, 4, 0.0).eval()
    x = torch.randn(12, 3, size, size)
    draws = torch.randint(0, 12, (40,), generator=torch.Generator().manual_seed(2))
    return net, x, draw_targets(net, x, "montecarlo", draws, torch.Generator().manual_seed(1))


@pytest.mark.parametrize("arch", ["resnet10t", "resnet18"])
def test_func_engine_equals_the_loop_on_a_convnet(arch):
    """In-place ReLUs and residual additions included (timm's ResNets use both)."""
    net, x, pairs = _net_and_pairs(arch)
    names = [n for n, _ in net.named_parameters()]  # the classifier too (a Linear layer)
    a = fisher_func(net, x, names, pairs, chunk=5)
    b = fisher_loop(net, x, names, pairs)
    for n in names:
        torch.testing.assert_close(a[n], b[n], rtol=1e-4, atol=1e-6 * float(b[n].abs().max()))


@pytest.mark.parametrize("arch,size", [("resnet10t", 16), ("resnet18", 16), ("resnet50", 32)])
def test_norms_engine_equals_torch_func_per_filter(arch, size):
    """Every path of the norms engine: grouped-conv backward (early 3x3 and 7x7 stride-2
    convs), batched matmul (1x1 convs, strided downsamples), the spatial Gram form (late
    layers with few positions), BatchNorm in eval mode, the Linear classifier."""
    net, x, pairs = _net_and_pairs(arch, size)
    names = [n for n, _ in net.named_parameters()]
    ref = per_filter(fisher_func(net, x, names, pairs, chunk=6))
    ours = fisher_norms(net, x, names, pairs, chunk=7)
    assert ours.keys() == ref.keys()
    for n in names:
        torch.testing.assert_close(ours[n], ref[n], rtol=1e-4,
                                   atol=1e-6 * float(ref[n].abs().max()))


@pytest.mark.parametrize("conv", [
    dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=3, stride=2, padding=0),
    dict(kernel_size=(3, 5), stride=(2, 1), padding=(1, 2)), dict(kernel_size=1, stride=2),
    dict(kernel_size=3, stride=1, padding=2, dilation=2), dict(kernel_size=2, bias=True)])
@pytest.mark.parametrize("side", [5, 12])  # few positions (Gram form) and many (grouped)
def test_norms_engine_conv_padding_stride_dilation(conv, side):
    conv_kw = {"bias": False, **conv}
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, **conv_kw), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(8, 3)).eval()
    x = torch.randn(9, 3, side, side)
    pairs = draw_targets(net, x, "expected")
    names = [n for n, _ in net.named_parameters()]
    ref = per_filter(fisher_func(net, x, names, pairs, chunk=4))
    ours = fisher_norms(net, x, names, pairs, chunk=4)
    for n in names:
        torch.testing.assert_close(ours[n], ref[n], rtol=1e-4,
                                   atol=1e-6 * float(ref[n].abs().max()))


def test_norms_engine_refuses_what_it_cannot_compute_exactly():
    from probes.fisher_norms import NormsNotApplicable, norms_engine_applies

    bn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                             torch.nn.Flatten(), torch.nn.LazyLinear(2))
    bn(torch.zeros(2, 3, 5, 5))
    names = [n for n, _ in bn.named_parameters()]
    assert "batch statistics" in norms_engine_applies(bn.train(), names)
    assert norms_engine_applies(bn.eval(), names) is None
    grouped = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, groups=2)).eval()
    assert "grouped" in norms_engine_applies(grouped, ["0.weight"])
    lin = torch.nn.Linear(3, 3)
    shared = torch.nn.Sequential(lin, torch.nn.ReLU(), lin).eval()
    x = torch.randn(4, 3)
    with pytest.raises(NormsNotApplicable, match="runs twice"):
        fisher_norms(shared, x, ["0.weight"], draw_targets(shared, x))
    assert all(p.requires_grad for p in shared.parameters())  # restored after the failure


def test_batch_mean_variant_differs_from_per_sample():
    model, x, closed = _linear()
    bm = fisher_batch_mean(model, x, ["weight"], batch=40, gen=torch.Generator().manual_seed(0))
    assert bm["weight"].sum() < closed.sum()  # squared mean gradient << mean squared gradient


def test_batch_mean_is_the_squared_gradient_of_each_batch_mean_loss():
    """By hand: two full batches of 20 (the partial third is dropped, as in the reference)."""
    model, x, _ = _linear()
    draws = torch.cat([torch.arange(40).roll(3), torch.arange(5)])  # 45 draws: 2 batches + 5
    bm = fisher_batch_mean(model, x, ["weight"], draws, batch=20,
                           gen=torch.Generator().manual_seed(0))["weight"]
    u = torch.rand(len(draws), generator=torch.Generator().manual_seed(0))
    expected = torch.zeros_like(model.weight)
    for b in range(2):
        idx = draws[20 * b:20 * b + 20]
        y = sample_from(torch.softmax(model(x[idx]), 1).detach(), u[20 * b:20 * b + 20])
        g, = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x[idx]), y),
                                 model.weight)
        expected += g ** 2 / 2
    torch.testing.assert_close(bm, expected)


# -- distances --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(D.DISTANCES))
def test_distance_identity_is_zero(name):
    e = np.random.default_rng(0).random(50)
    assert D.DISTANCES[name](e, e) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("name", ["cosine", "normalized_cosine", "correlation", "kl", "jsd",
                                  "entropy"])
def test_symmetric_distances(name):
    rng = np.random.default_rng(1)
    a, b = rng.random(30), rng.random(30)
    assert D.DISTANCES[name](a, b) == pytest.approx(D.DISTANCES[name](b, a))
    assert D.DISTANCES[name](a, b) > 0


def test_asymmetric_kl_and_asymmetric_are_not_symmetric_and_zero_entries_are_finite():
    rng = np.random.default_rng(2)
    a, b, t = rng.random(30), rng.random(30) ** 3, rng.random(30)
    assert D.asymmetric_kl(a, b) != pytest.approx(D.asymmetric_kl(b, a))
    assert D.asymmetric(a, b, t) != pytest.approx(D.asymmetric(b, a, t))
    assert D.asymmetric(a, b, t) == pytest.approx(D.cosine(a, b) - 0.15 * D.cosine(a, t))
    z = np.zeros(30)
    z[:2] = 1.0
    assert all(np.isfinite(fn(z, b)) for fn in D.DISTANCES.values())


def test_reference_cosine_by_hand():
    a, b = np.array([1.0, 3.0]), np.array([3.0, 1.0])
    h0, h1 = a / (a + b), b / (a + b)  # [0.25, 0.75], [0.75, 0.25]
    expected = 1 - (h0 @ h1) / (np.linalg.norm(h0) * np.linalg.norm(h1))
    assert D.cosine(a, b) == pytest.approx(expected) == pytest.approx(0.4)


def test_the_reference_formulas_on_variances_by_hand():
    """aws-cv-task2vec's task_similarity.py, written out here on var = 1 / h."""
    h0, h1 = np.array([2.0, 0.5, 1.0, 4.0]), np.array([1.0, 1.0, 0.25, 2.0])
    v0, v1 = 1 / h0, 1 / h1  # [0.5, 2, 1, 0.25], [1, 1, 4, 0.5]

    def cos(a, b):
        return 1 - a @ b / np.sqrt((a @ a) * (b @ b))

    def kl(p, q):  # KL(N(0, p) || N(0, q)) per filter
        return 0.5 * (p / q - 1 + np.log(q / p))

    m = (v0 + v1) / 2
    s0 = h0 / (h0 + h1 + 1e-8)
    assert D.cosine(h0, h1) == pytest.approx(cos(s0, h1 / (h0 + h1 + 1e-8)))
    assert D.normalized_cosine(h0, h1) == pytest.approx(cos(v0, v1))
    assert D.correlation(h0, h1) == pytest.approx(cos(v0 - v0.mean(), v1 - v1.mean()))
    assert D.kl(h0, h1) == pytest.approx(np.maximum(kl(v0, v1), kl(v1, v0)).sum())
    assert D.asymmetric_kl(h0, h1) == pytest.approx(kl(v0, v1).sum())
    assert D.jsd(h0, h1) == pytest.approx(np.mean((kl(v0, m) + kl(v1, m)) / 2))
    ent = -(s0 * np.log(s0) + (1 - s0) * np.log(1 - s0))
    assert D.entropy(h0, h1) == pytest.approx(np.log(2) - ent.mean())
    # a first filter with 2 and 0.5 in the variance: kl(0.5 -> 1) = 0.5 (0.5 - 1 + log 2)
    assert kl(0.5, 1.0) == pytest.approx(0.5 * (np.log(2) - 0.5))


@pytest.mark.parametrize("name", ["normalized_cosine", "correlation", "kl", "asymmetric_kl",
                                  "jsd"])
def test_dead_filters_are_left_out_of_variance_distances(name):
    """The reference divides by a zero Fisher (inf / NaN); we drop such filters."""
    rng = np.random.default_rng(5)
    a, b = rng.random(20) + 0.1, rng.random(20) + 0.1
    a_dead, b_dead = np.append(a, [0.0, 0.3]), np.append(b, [0.7, 0.0])
    fn = D.DISTANCES[name]
    assert fn(a_dead, b_dead) == pytest.approx(fn(a, b))
