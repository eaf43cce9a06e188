"""Probes: Fisher against a closed form, distance properties, estimators against hand
computations, the probe registry contract, `bench probe` end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probes import distances as D
from probes.base import ProbeContext, ProbeError
from probes.estimators import hscore, leep, logme, nce
from probes.fisher import (draw_targets, fisher_batch_mean, fisher_func, fisher_loop, per_filter,
                           sample_from)
from probes.fisher_norms import fisher_norms
from probes.registry import PROBES
from registry.catalog import Catalog
from registry.errors import CardError
from registry.register import AddRequest, add_dataset
from registry.store import RegistryStore

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


# -- estimators -------------------------------------------------------------------------------


def _logme_direct(f: np.ndarray, y: np.ndarray) -> float:
    """Independent LogME: matrix form of the evidence with the same fixed point."""
    n, d = f.shape
    scores = []
    for c in np.unique(y):
        t = (y == c).astype(float)
        alpha, beta = 1.0, 1.0
        for _ in range(300):
            a = alpha * np.eye(d) + beta * f.T @ f
            m = beta * np.linalg.solve(a, f.T @ t)
            eig = np.linalg.eigvalsh(f.T @ f)
            gamma = (beta * eig / (alpha + beta * eig)).sum()
            alpha, beta = gamma / (m @ m), (n - gamma) / ((f @ m - t) @ (f @ m - t))
        a = alpha * np.eye(d) + beta * f.T @ f
        m = beta * np.linalg.solve(a, f.T @ t)
        ev = (n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
              - beta / 2 * (f @ m - t) @ (f @ m - t) - alpha / 2 * m @ m
              - np.linalg.slogdet(a)[1] / 2)
        scores.append(ev / n)
    return float(np.mean(scores))


def test_logme_matches_the_matrix_form():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 80)
    f = rng.normal(size=(80, 6)) + np.eye(6)[y] * 2
    assert logme(f, y) == pytest.approx(_logme_direct(f, y), rel=1e-4)


def test_logme_n_smaller_than_d_is_finite_and_ranks_informative_features_higher():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 10)
    good = rng.normal(size=(20, 100)) * 0.1 + y[:, None]
    bad = rng.normal(size=(20, 100))
    assert np.isfinite(logme(good, y)) and np.isfinite(logme(bad, y))
    assert logme(good, y) > logme(bad, y)


def test_leep_by_hand():
    theta = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    y = np.array([0, 1, 0])
    joint = np.zeros((2, 2))
    for t, yi in zip(theta, y):
        joint[yi] += t / 3
    cond = joint / joint.sum(0)
    expected = np.mean([np.log(theta[i] @ cond[y[i]]) for i in range(3)])
    assert leep(theta, y) == pytest.approx(expected)
    with pytest.raises(ProbeError, match="probabilities"):
        leep(theta * 3, y)


def test_nce_by_hand():
    z = np.array([0, 0, 1, 1])
    y = np.array([0, 1, 1, 1])  # H(Y|Z) = 0.5 * H(0.5) + 0.5 * 0 = 0.5 ln 2
    assert nce(z, y) == pytest.approx(-0.5 * np.log(2))
    assert nce(y, y) == pytest.approx(0.0)


def test_hscore_by_hand_and_shrinkage():
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 50)
    f = rng.normal(size=(100, 4)) + y[:, None] * np.array([2.0, 0, 0, 0])
    fc = f - f.mean(0)
    means = np.stack([fc[y == c].mean(0) for c in y])
    expected = np.trace(np.linalg.pinv(np.cov(fc, rowvar=False)) @ np.cov(means, rowvar=False))
    assert hscore(f, y) == pytest.approx(expected)
    assert 0 < hscore(f, y, shrinkage=True) < 4


def test_regularized_hscore_is_ibrahim_et_al_by_hand():
    """tr(cov_a^-1 (1 - a) cov(E[f|y])) with the Ledoit-Wolf shrinkage a computed here from
    its published formula (Ledoit & Wolf 2004), not through scikit-learn."""
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1, 2], 12)
    f = rng.normal(size=(36, 30)) + y[:, None] * rng.normal(size=30)  # n close to D: a > 0
    fc = f - f.mean(0)
    n, d = fc.shape
    s = fc.T @ fc / n
    mu = np.trace(s) / d
    delta2 = ((s - mu * np.eye(d)) ** 2).sum()
    beta2 = min(sum(((np.outer(x, x) - s) ** 2).sum() for x in fc) / n ** 2, delta2)
    a = beta2 / delta2
    cov_a = (1 - a) * s + a * mu * np.eye(d)
    means = np.stack([fc[y == c].mean(0) for c in y])
    expected = np.trace(np.linalg.inv(cov_a) @ ((1 - a) * np.cov(means, rowvar=False)))
    assert 0.05 < a < 0.95
    assert hscore(f, y, shrinkage=True) == pytest.approx(expected, rel=1e-6)


def test_estimators_reject_one_class():
    f = np.random.random((10, 3))
    for fn in (logme, hscore):
        with pytest.raises(ProbeError, match="at least two classes"):
            fn(f, np.zeros(10))


# -- probe registry contract ------------------------------------------------------------------

FAST_OPTIONS = {"expert": {}, "metafeatures": {}, "otdd": {"max_samples": 150},
                "simex": {"epochs": 2, "check_every": 1, "max_per_set": 200, "eval_per_set": 50},
                "task2vec": {"arch": "resnet10t", "weights": "random", "image_size": [16, 16],
                             "subsets": 2, "min_subset": 40, "max_draws": 24, "head_epochs": 2,
                             "head_draws": 320}}


ESTIMATORS = ["features", "hscore", "leep", "logme", "nce"]


def test_every_probe_has_contract_options():
    assert sorted([*FAST_OPTIONS, *ESTIMATORS]) == PROBES.names()


@pytest.mark.parametrize("name", ESTIMATORS)
def test_estimator_probes_need_the_suites_pretrained_models(cli, name):
    res = cli("probe", name, "--datasets", "digits,lfw-faces", "--option", "suite=digits")
    assert res.exit_code == 1
    assert "Suite 'digits' has no pretrained source models" in res.stderr
    assert "bench run --suite digits" in res.stderr


@pytest.fixture
def three(paths):
    catalog = Catalog.load()
    for name in ("digits", "digits-noise", "lfw-faces"):
        add_dataset(AddRequest(name), paths, catalog)
    store = RegistryStore(paths.registry_db)
    return [store.get(n) for n in ("digits", "digits-noise", "lfw-faces")]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FAST_OPTIONS))
def test_probe_contract(name, paths, three):
    probe = PROBES.get(name)(FAST_OPTIONS[name], ProbeContext(paths))
    result = probe.compute(three)
    d = result.distances
    assert result.datasets == ["digits", "digits-noise", "lfw-faces"] and d.shape == (3, 3)
    assert np.allclose(np.diag(d), 0) and np.all(np.isfinite(d))
    if probe.symmetric:  # asymmetric probes are relative to self-reconstruction, may dip below 0
        assert np.all(d[~np.eye(3, dtype=bool)] >= 0)
    if probe.symmetric:
        assert np.allclose(d, d.T, atol=1e-9 if name != "task2vec" else 0.2)
    again = PROBES.get(name)(FAST_OPTIONS[name], ProbeContext(paths)).compute(three)
    np.testing.assert_allclose(again.distances, d)  # deterministic (and cached for task2vec)
    with pytest.raises(CardError, match=f"Options for probe '{name}' are invalid"):
        PROBES.get(name)({**FAST_OPTIONS[name], "bogus": 1}, ProbeContext(paths))


@pytest.mark.slow
def test_task2vec_related_datasets_are_closer(paths, three):
    result = PROBES.get("task2vec")(FAST_OPTIONS["task2vec"], ProbeContext(paths)).compute(three)
    d = result.distances
    assert d[0, 1] < d[0, 2] and d[0, 1] < d[1, 2]
    assert {k: v.shape[0] for k, v in result.embeddings.items()} == dict.fromkeys(result.datasets, 2)


def test_expert_probe_reproduces_published_distances(cli):
    res = cli("probe", "expert", "--datasets", "imagenet,isic,chest,pcam", "--json")
    assert res.exit_code == 0, res.stderr
    doc = res.json()
    assert doc["method"] == "expert" and doc["datasets"][1] == "isic2018"
    assert doc["distances"][0][1:] == [5.0, 6.0, 4.0]


def test_probe_cli_logs_to_mlflow_and_rejects_bad_input(cli, bench_home):
    from mlflow.tracking import MlflowClient

    res = cli("probe", "metafeatures", "--datasets", "digits,lfw-faces,texture-patches", "--json")
    assert res.exit_code == 0, res.stderr
    doc = res.json()
    assert len(doc["distances"]) == 3 and all(len(r) == 3 for r in doc["distances"])
    client = MlflowClient(doc["tracking_uri"])
    run = client.get_run(doc["run_id"])
    assert run.data.tags["probe"] == "metafeatures"
    assert {"distances.csv", "heatmap.png", "distances.json"} <= \
        {a.path for a in client.list_artifacts(doc["run_id"])}
    bad = cli("probe", "expert", "--datasets", "digits")
    assert bad.exit_code == 1 and "at least two" in bad.stderr
    bad = cli("probe", "task2vc", "--datasets", "digits,lfw-faces")
    assert bad.exit_code == 1 and "Unknown probe 'task2vc'. Did you mean 'task2vec'" in bad.stderr
    bad = cli("probe", "metafeatures", "--datasets", "digits,isic")
    assert bad.exit_code == 1 and "'isic2018' is not registered" in bad.stderr


def test_variational_keeps_precision_on_the_filter_the_task_uses():
    from probes.variational import variational_embedding

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 2, 3, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 5.0  # used by the head
        conv.weight[1, 0, 1, 1] = 5.0  # ignored by the head
    head = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    model = torch.nn.Sequential(conv, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), head)
    x = torch.randn(256, 1, 5, 5)
    y = model(x).argmax(1).detach()
    emb = variational_embedding(model, x, y, ["0.weight"], epochs=30, beta=1e-3,
                                gen=torch.Generator().manual_seed(0))
    assert emb.shape == (2,) and emb[0] > emb[1] * 1.05


def test_task2vec_defaults_are_the_reference_protocol():
    from probes.task2vec import Task2VecOptions

    o = Task2VecOptions()
    assert (o.head_epochs, o.head_draws, o.head_batch, o.head_lr, o.head_weight_decay) == (
        10, 10000, 64, 4e-4, 1e-4)  # aws-cv-task2vec: _fit_classifier over _get_loader
    assert (o.max_draws, o.fisher_batch, o.distance, o.biases) == (10000, 64, "cosine", False)
    with pytest.raises(ValueError, match="only goes with fisher=batch-mean"):
        Task2VecOptions(batchnorm="train")
    assert Task2VecOptions(batchnorm="train", fisher="batch-mean").batchnorm == "train"


def test_balanced_draws_make_every_class_equally_likely():
    from probes.task2vec import balanced_draws

    labels = np.array([0] * 90 + [1] * 9 + [2] * 1)
    draws = balanced_draws(labels, 3, 30000, torch.Generator().manual_seed(0))
    share = np.bincount(labels[draws.numpy()], minlength=3) / 30000
    np.testing.assert_allclose(share, 1 / 3, atol=0.015)


def test_embedding_is_weights_only_unless_biases_are_asked_for():
    from bench_core.models import build_model
    from probes.task2vec import embedding_keys

    net = build_model("resnet10t", 3, 0.0)
    weights = embedding_keys(net, biases=False)
    both = embedding_keys(net, biases=True)
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    n_conv = sum(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    assert len(weights) == n_bn + n_conv and all(k.endswith(".weight") for k in weights)
    assert len(both) == len(weights) + n_bn  # timm's convs have no bias
    assert weights[0] == "conv1.0.weight" and "fc.weight" not in both


@pytest.mark.slow
def test_task2vec_variational_option(paths, three):
    opts = {**FAST_OPTIONS["task2vec"], "fisher": "variational", "variational_epochs": 1}
    result = PROBES.get("task2vec")(opts, ProbeContext(paths)).compute(three)
    assert result.distances.shape == (3, 3) and np.all(np.isfinite(result.distances))


def test_probe_network_that_does_not_exist(cli):
    res = cli("probe", "task2vec", "--datasets", "digits,lfw-faces", "--option", "arch=resnet5O",
              "--option", "weights=random", "--option", "subsets=1")
    assert res.exit_code == 1 and "Unknown architecture 'resnet5O'" in res.stderr
    res = cli("probe", "task2vec", "--datasets", "digits,lfw-faces",
              "--option", "weights=file:/nope/probe.pth", "--option", "subsets=1")
    assert res.exit_code == 1 and "Weights file /nope/probe.pth does not exist" in res.stderr


def test_uncovered_cells_are_null_in_json():
    import json

    from probes.base import ProbeResult

    r = ProbeResult("logme", ["a", "b"], np.array([[0.0, -1.5], [np.nan, 0.0]]))
    doc = json.loads(json.dumps(r.as_json(), allow_nan=False))
    assert doc["distances"] == [[0.0, -1.5], [None, 0.0]]


def test_task2vec_never_falls_back_to_a_random_network(cli):
    res = cli("probe", "task2vec", "--datasets", "digits,lfw-faces", "--option", "subsets=1")
    assert res.exit_code == 1
    assert "Task2Vec needs a probe network, and none was given" in res.stderr
    assert "--option weights=random" in res.stderr


def test_otdd_from_the_cli(cli):
    res = cli("probe", "otdd", "--datasets", "digits,digits-noise", "--option", "max_samples=100",
              "--option", "method=sliced", "--json")
    assert res.exit_code == 0, res.stderr
    d = res.json()["distances"]
    assert d[0][0] == 0 and d[0][1] == d[1][0] > 0


def test_full_float32_switches_tf32_off_inside_and_restores_it():
    from bench_core.devices import full_float32

    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    cudnn.allow_tf32, matmul.allow_tf32 = True, False  # torch's defaults
    with pytest.raises(RuntimeError), full_float32():
        assert not cudnn.allow_tf32 and not matmul.allow_tf32
        raise RuntimeError("a failure inside")
    assert cudnn.allow_tf32 and not matmul.allow_tf32
