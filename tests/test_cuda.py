"""The CUDA path, each result against an independent computation (skipped without a CUDA device).

Tolerances. cuDNN runs float32 convolutions in TF32 by default (10-bit mantissa, unit roundoff
2^-11 ~ 4.9e-4; ``torch.backends.cudnn.allow_tf32`` is True out of the box), so two float32
computations on CUDA that take different convolution paths differ by about 1e-3, not 1e-6.
Where a test checks that two formulations of the same quantity agree (the norms engine against
torch.func, the grouped fleet against its members), it switches TF32 off (``fp32`` fixture) and
uses the float32 tolerances of the CPU tests: rtol 1e-4 for sums of squares accumulated in a
different order (a few thousand float32 terms: ~1e-7 each, well under 1e-4 in the worst case
seen on CPU), atol relative to the largest value for filters whose Fisher is ~0. Where it checks
the production setting (TF32 on, bf16 autocast in training) against a float32 CPU reference,
the tolerance is that of the lower precision, stated at each assert. OTDD runs in float64
(no TF32 there), so CUDA must equal the CPU to ~1e-9.
"""

from __future__ import annotations

import copy
import math
import os

import numpy as np
import pytest
import torch

from bench_core.models import build_model

# BENCH_GPU_TESTS_DEVICE=cpu runs these tests' logic on the CPU (a dry run; proves nothing about CUDA)
CUDA = torch.device(os.environ.get("BENCH_GPU_TESTS_DEVICE", "cuda"))
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(CUDA.type == "cuda" and not torch.cuda.is_available(),
                                 reason="needs a CUDA device")]
CPU = torch.device("cpu")


@pytest.fixture
def fp32():
    """Plain float32 convolutions and matmuls on CUDA for the test (TF32 off), then restored."""
    from bench_core.devices import full_float32

    with full_float32():
        yield


def _worst(ours: dict, ref: dict) -> float:
    """Largest per-filter difference, relative to each parameter's largest reference value."""
    return max(float((ours[k].cpu() - ref[k].cpu()).abs().max() / ref[k].abs().max()) for k in ref)


# -- Task2Vec Fisher ----------------------------------------------------------------------------


def _fisher_case(arch: str, size: int, device: torch.device):
    from probes.fisher import draw_targets

    torch.manual_seed(0)
    net = build_model(arch, 4, 0.0).to(device).eval()
    x = torch.randn(12, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    draws = torch.randint(0, 12, (40,), generator=torch.Generator().manual_seed(2))
    pairs = draw_targets(net, x, "montecarlo", draws, torch.Generator().manual_seed(1))
    return net, x, pairs


@pytest.mark.parametrize("arch,size", [("resnet18", 16), ("resnet50", 32)])
def test_norms_engine_equals_torch_func_on_cuda(arch, size, fp32):
    """Every path of the norms engine (grouped-conv backward, 1x1 batched matmul, spatial
    Gram form, eval BatchNorm, Linear) on CUDA, against torch.func's vmap(grad) on CUDA,
    every parameter (the classifier and biases too), Task2Vec-style repeated draws."""
    from probes.fisher import fisher_func, per_filter
    from probes.fisher_norms import fisher_norms

    net, x, pairs = _fisher_case(arch, size, CUDA)
    names = [n for n, _ in net.named_parameters()]
    ref = per_filter(fisher_func(net, x, names, pairs, chunk=6))
    ours = fisher_norms(net, x, names, pairs, chunk=7)
    assert ours.keys() == ref.keys()
    for n in names:
        assert ours[n].device.type == CUDA.type and ours[n].dtype == torch.float32
        torch.testing.assert_close(ours[n], ref[n], rtol=1e-4,
                                   atol=1e-6 * float(ref[n].abs().max()))
    print(f"{arch}: norms vs func on CUDA (fp32), worst per-filter difference / max: "
          f"{_worst(ours, ref):.1e}")


def test_norms_engine_draws_its_own_targets_on_cuda(fp32):
    """No pairs: targets drawn in the engine's forward pass from the CPU generator, as
    draw_targets would draw them (the benchmark's and the probe's path on CUDA)."""
    from probes.fisher import draw_targets, fisher_func, per_filter
    from probes.fisher_norms import fisher_norms
    from probes.task2vec import embedding_keys

    torch.manual_seed(0)
    net = build_model("resnet18", 10, 0.0).to(CUDA).eval()
    keys = embedding_keys(net, biases=False)
    x = torch.randn(40, 3, 32, 32, generator=torch.Generator().manual_seed(4)).to(CUDA)
    ours = fisher_norms(net, x, keys, chunk=16, gen=torch.Generator().manual_seed(7))
    pairs = draw_targets(net, x, "montecarlo", gen=torch.Generator().manual_seed(7))
    assert len(pairs) == 40
    ref = per_filter(fisher_func(net, x, keys, pairs, chunk=8))
    for n in keys:
        torch.testing.assert_close(ours[n], ref[n], rtol=1e-4,
                                   atol=1e-6 * float(ref[n].abs().max()))


def test_norms_engine_in_full_float32_matches_the_cpu_reference():
    """The production setting (cuDNN's default TF32 convolutions) against torch.func in
    float32 on the CPU, the same network, inputs and pairs. TF32 rounds each convolution's
    inputs to a 10-bit mantissa (~5e-4 relative); a per-sample gradient goes through ~20
    such layers forward and back and is then squared, so 2e-2 relative (with atol 1e-3 of
    the parameter's largest value for filters whose Fisher is ~0) is what a Fisher computed
    in TF32 would need to be usable as the float32 one. It was not met (stem filters off by
    up to 7% on an H200, in torch.func alike): Task2Vec computes its Fisher inside
    ``full_float32()``, as here, and then CUDA must agree with the CPU to float32 rounding."""
    from bench_core.devices import full_float32
    from probes.fisher import fisher_func, per_filter
    from probes.fisher_norms import fisher_norms

    net, x, pairs = _fisher_case("resnet18", 16, CPU)
    names = [n for n, _ in net.named_parameters()]
    ref = per_filter(fisher_func(net, x, names, pairs, chunk=6))
    assert torch.backends.cudnn.allow_tf32  # the default this guards against
    with full_float32():
        ours = fisher_norms(copy.deepcopy(net).to(CUDA), x.to(CUDA), names, pairs, chunk=7)
    assert torch.backends.cudnn.allow_tf32  # restored
    for n in names:
        torch.testing.assert_close(ours[n].cpu(), ref[n], rtol=1e-3,
                                   atol=1e-5 * float(ref[n].abs().max()))
    print(f"resnet18: norms on CUDA (full float32) vs func on CPU, worst per-filter "
          f"difference / max: {_worst(ours, ref):.1e}")


# -- SimEx fleet --------------------------------------------------------------------------------


def _members(k: int, channels: int) -> list:
    from probes.simex import LeNetAutoencoder

    torch.manual_seed(0)
    return [LeNetAutoencoder(channels) for _ in range(k)]


@pytest.mark.parametrize("channels", [1, 3])
def test_grouped_fleet_equals_its_standalone_autoencoders_on_cuda(channels, fp32):
    """Reconstructions (forward_each, forward_all) and MSE / iSSIM losses of the grouped,
    channels-last fleet on CUDA against each standalone member on CUDA; the exported
    members are bit-identical to the standalone ones."""
    from probes.simex import Fleet, per_sample_loss

    models = [m.to(CUDA) for m in _members(3, channels)]
    fleet = Fleet(copy.deepcopy(models)).to(CUDA)
    x = torch.rand(3, 8, channels, 32, 32, generator=torch.Generator().manual_seed(1)).to(CUDA)
    with torch.no_grad():
        each, everyone = fleet.forward_each(x), fleet.forward_all(x[0])
        assert each.device.type == CUDA.type and each.shape == x.shape
        for k, m in enumerate(models):
            own, on_first = m(x[k]), m(x[0])
            torch.testing.assert_close(each[k], own, rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(everyone[k], on_first, rtol=1e-4, atol=1e-6)
            for loss in ("mse", "issim"):
                torch.testing.assert_close(per_sample_loss(x[k], each[k], loss),
                                           per_sample_loss(x[k], own, loss), rtol=1e-4, atol=1e-6)
    for k, m in enumerate(models):
        state = fleet.member_state(k)
        assert state.keys() == m.state_dict().keys()
        for name, t in m.state_dict().items():
            torch.testing.assert_close(state[name], t, rtol=0, atol=0)


def test_cuda_fleet_with_cudnn_defaults_matches_the_cpu_members():
    """The production setting (TF32 convolutions, channels-last) on CUDA against the standalone
    autoencoders in float32 on the CPU: reconstructions ~0.1-1 in size, TF32 rounding of
    four convolutions and five matmul-free linear layers: within 1e-2 absolute; the mean
    losses (what SimEx compares) within 1e-2 relative."""
    from probes.simex import Fleet, per_sample_loss

    models = _members(4, 1)
    fleet = Fleet(copy.deepcopy(models)).to(CUDA)
    x = torch.rand(4, 16, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        each = fleet.forward_each(x.to(CUDA)).cpu()
        for k, m in enumerate(models):
            own = m(x[k])
            torch.testing.assert_close(each[k], own, rtol=0, atol=1e-2)
            for loss in ("mse", "issim"):
                a = float(per_sample_loss(x[k], each[k], loss).mean())
                b = float(per_sample_loss(x[k], own, loss).mean())
                assert a == pytest.approx(b, rel=1e-2)


def test_a_fleet_adam_step_on_cuda_equals_each_member_stepped_alone(fp32):
    """One Adam over the fleet on CUDA moves each member as its own Adam on its own batch."""
    from probes.simex import Fleet, per_sample_loss

    def step(opt, x, recon):
        loss = per_sample_loss(x, recon, "mse").mean(dim=-1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    lr = 1e-3
    models = [m.to(CUDA) for m in _members(3, 1)]
    fleet = Fleet(copy.deepcopy(models)).to(CUDA)
    x = torch.rand(3, 8, 1, 32, 32, generator=torch.Generator().manual_seed(3)).to(CUDA)
    step(torch.optim.Adam(fleet.parameters(), lr=lr), x, fleet.forward_each(x))
    grads = copy.deepcopy(fleet)
    with torch.no_grad():
        for p, g in zip(grads.parameters(), fleet.parameters()):
            p.copy_(g.grad)
    for k, m in enumerate(models):
        step(torch.optim.Adam(m.parameters(), lr=lr), x[k], m(x[k]))
        fleet_grads, state = grads.member_state(k), fleet.member_state(k)
        for name, p in m.named_parameters():
            torch.testing.assert_close(fleet_grads[name], p.grad, rtol=1e-4, atol=1e-7)
            torch.testing.assert_close(state[name], p.detach(), rtol=0, atol=lr / 20)


def test_train_fleet_and_delta_matrix_run_on_cuda():
    """The probe's own loop on CUDA (CPU generator, device batches): finite Deltas, and the
    autoencoder of smooth images reconstructs its own set best."""
    from probes.simex import SimExOptions, delta_matrix, train_fleet

    rng = np.random.default_rng(0)
    smooth = torch.tensor(np.stack([np.outer(np.hanning(32), np.hanning(32)) * rng.uniform(0.5, 1)
                                    for _ in range(200)]), dtype=torch.float32)[:, None]
    noise = torch.rand(200, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    sets = [smooth.to(CUDA), noise.to(CUDA)]
    opts = SimExOptions(epochs=8, check_every=100, batch_size=32)
    fleet, info = train_fleet([s[:150] for s in sets], [s[150:] for s in sets], opts, CUDA)
    assert next(fleet.parameters()).device.type == CUDA.type and info["epochs"] == 8
    delta = delta_matrix(fleet, [s[150:] for s in sets], "mse")
    assert delta.shape == (2, 2) and np.all(np.isfinite(delta))
    assert delta[0, 0] < delta[1, 0] and delta[0, 0] < delta[0, 1]


# -- training -----------------------------------------------------------------------------------


def test_fit_on_cuda_bf16_channels_last(paths):
    """Two epochs of resnet10t on LFW faces on CUDA (bf16 autocast, channels-last): a finite
    AUC, the weights left on the GPU in channels-last, the best state on the CPU. The same
    weights evaluated in float32 on the CPU (an independent forward) give about the same
    test AUC (bf16 logits: ~3 significant digits; on ~70 test images a few near-ties may
    swap: within 0.05) and loss (within 10%)."""
    from bench_core.data import load_device_data
    from benchmark.suite.settings import Optimizer, TrainSettings
    from benchmark.suite.splits import fold_splits
    from benchmark.engine.train import evaluate_on, fit
    from registry.catalog import Catalog
    from registry.register import AddRequest, add_dataset
    from registry.store import RegistryStore

    add_dataset(AddRequest("lfw-faces"), paths, Catalog.load())
    record = RegistryStore(paths.registry_db).get("lfw-faces")
    data = load_device_data(record, (16, 16), CUDA)
    assert data.images.device.type == data.labels.device.type == CUDA.type
    split = fold_splits(data.labels_np, 3, 0.5, 0)[0]
    settings = TrainSettings(image_size=(16, 16), batch_size=32, epochs=2,
                             optimizer=Optimizer(lr=1e-3))
    torch.manual_seed(123)
    model = build_model("resnet10t", 2, 0.5)
    result = fit(model, data, split, settings, CUDA, 0)
    assert math.isfinite(result.test["auc"]) and 0.0 <= result.test["auc"] <= 1.0
    assert all(math.isfinite(v) for row in result.history for v in row.values())
    assert all(t.device.type == CUDA.type for t in [*model.parameters(), *model.buffers()])
    convs = [p for p in model.parameters() if p.dim() == 4]
    assert convs and (CUDA.type == "cpu"
                      or all(p.is_contiguous(memory_format=torch.channels_last) for p in convs))
    assert all(t.device.type == "cpu" for t in result.best_state.values())
    print(f"fit on CUDA: test {result.test}, {result.train_images_per_s:.0f} images/s")

    cpu_model = build_model("resnet10t", 2, 0.5)
    cpu_model.load_state_dict(result.best_state)
    cpu_data = load_device_data(record, (16, 16), CPU)
    on_cpu = evaluate_on(cpu_model, cpu_data, split.test, settings, CPU)
    assert on_cpu["auc"] == pytest.approx(result.test["auc"], abs=0.05)
    unweighted = evaluate_on(model, data, split.test, settings, CUDA)
    assert unweighted["loss"] == pytest.approx(on_cpu["loss"], rel=0.1)


# -- OTDD ---------------------------------------------------------------------------------------


def _blobs(n: int, d: int, k: int, seed: int, shift: float = 0.0):
    from probes.otdd_costs import Labelled

    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.normal(size=(n, d)) + 3.0 * np.eye(k, d)[y] + shift
    return Labelled.of(torch.tensor(x), y)


def _on(data, device):
    from probes.otdd_costs import Labelled

    return Labelled.of(data.x.to(device), data.y.cpu().numpy())


OTDD_SETTINGS = [({}, 1e-9), ({"label_cost": "exact"}, 1e-9), ({"covariance": "diagonal"}, 1e-9),
                 ({"solver": "sinkhorn", "reg": 0.1}, 1e-6),
                 ({"method": "sliced", "n_projections": 200}, 1e-9)]


@pytest.mark.parametrize("opts,rel", OTDD_SETTINGS,
                         ids=lambda o: "-".join(map(str, o.values())) if isinstance(o, dict) else "")
@pytest.mark.parametrize("d", [10, 40])  # classes with more samples than dimensions, and fewer
def test_otdd_on_cuda_equals_the_cpu(opts, rel, d):
    """float64 throughout: eigh / svdvals by cuSOLVER, cost matrices by cuBLAS, Sinkhorn by
    POT's torch backend on CUDA, against the CPU; the same to ~1e-9 (Sinkhorn: the same
    iterations in another library, stopping at 1e-7 marginal error: 1e-6)."""
    from probes.otdd import OTDDOptions
    from probes.otdd_costs import dataset_distance

    o = OTDDOptions(**opts)
    a, b = _blobs(60, d, 3, seed=0), _blobs(45, d, 3, seed=1, shift=0.5)
    on_cpu = dataset_distance(a, b, o)
    on_cuda = dataset_distance(_on(a, CUDA), _on(b, CUDA), o)
    assert on_cpu > 0 and on_cuda == pytest.approx(on_cpu, rel=rel)
    assert dataset_distance(_on(a, CUDA), _on(a, CUDA), o) == pytest.approx(0.0, abs=1e-6 * on_cpu)


@pytest.mark.parametrize("opts", [{}, {"method": "sliced"}], ids=["exact", "sliced"])
def test_otdd_probe_on_cuda_equals_the_cpu(paths, opts):
    """The probe end to end (registered datasets loaded to the device, pixel features)."""
    from probes.base import ProbeContext
    from probes.otdd import OTDDProbe
    from registry.catalog import Catalog
    from registry.register import AddRequest, add_dataset
    from registry.store import RegistryStore

    catalog = Catalog.load()
    for name in ("digits", "lfw-faces"):
        add_dataset(AddRequest(name), paths, catalog)
    store = RegistryStore(paths.registry_db)
    records = [store.get(n) for n in ("digits", "lfw-faces")]
    o = {"max_samples": 150, **opts}
    on_cpu = OTDDProbe(o, ProbeContext(paths, device="cpu")).compute(records)
    on_cuda = OTDDProbe(o, ProbeContext(paths, device=str(CUDA))).compute(records)
    assert on_cuda.details["subsample"] == on_cpu.details["subsample"]
    np.testing.assert_allclose(on_cuda.distances, on_cpu.distances, rtol=1e-9, atol=0)
