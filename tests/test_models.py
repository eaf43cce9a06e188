"""Model builders, weights loading through timm's real path, and the freezing protocol."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from bench_core.models import (WeightsError, build_model, freeze_all_but_last, load_backbone,
                              model_from_weights, set_train_mode)
from registry.errors import UnknownNameError


def test_head_is_gap_dropout_linear():
    m = build_model("resnet10t", 7, 0.5)
    assert m.fc.out_features == 7 and m.drop_rate == 0.5
    assert m.global_pool.pool_type == "avg"


def test_unknown_architecture():
    with pytest.raises(UnknownNameError, match="Unknown architecture 'resnet5O'"):
        build_model("resnet5O", 2, 0.5)


def test_load_backbone_copies_everything_but_the_head():
    src = build_model("resnet10t", 10, 0.5)
    dst = build_model("resnet10t", 3, 0.5)
    head_before = dst.fc.weight.clone()
    load_backbone(dst, src.state_dict())
    for (name, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
        if not name.startswith("fc."):
            assert torch.equal(a, b), name
    assert torch.equal(dst.fc.weight, head_before)


def test_load_backbone_rejects_another_architecture():
    with pytest.raises(WeightsError, match="do not fit"):
        load_backbone(build_model("resnet10t", 2, 0.5), build_model("resnet18", 2, 0.5).state_dict())


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_weights_file_through_timm(tmp_path, suffix):
    src = build_model("resnet10t", 1000, 0.0)
    path = tmp_path / f"imagenet{suffix}"
    if suffix == ".pth":
        torch.save(src.state_dict(), path)
    else:
        save_file(src.state_dict(), str(path))
    model = model_from_weights(f"file:{path}", "resnet10t", 2, 0.5)
    assert model.fc.out_features == 2
    assert torch.equal(model.conv1[0].weight, src.conv1[0].weight)


def test_missing_weights_file(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        model_from_weights(f"file:{tmp_path / 'none.pth'}", "resnet50", 2, 0.5)
    with pytest.raises(WeightsError, match="is not one of file:PATH, PATH.safetensors, local-dir:PATH"):
        model_from_weights("resnet50", "resnet50", 2, 0.5)
    with pytest.raises(WeightsError, match="does not exist"):
        model_from_weights(str(tmp_path / "resnet50.pth"), "resnet50", 2, 0.5)


@pytest.mark.parametrize("k", [0, 1, 3, 5])
def test_freezing_protocol_freezes_exactly_the_first_stages(k):
    torch.manual_seed(0)
    model = build_model("resnet10t", 3, 0.0)
    frozen = freeze_all_but_last(model, k)
    stages = [["conv1", "bn1"], ["layer1"], ["layer2"], ["layer3"], ["layer4"]]
    trainable = {n for s in stages[5 - k:] for n in s} | {"fc"}
    for name, p in model.named_parameters():
        assert p.requires_grad == (name.split(".")[0] in trainable), name
    before = {n: t.clone() for n, t in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    set_train_mode(model, frozen)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    opt.step()
    changed = {n for n, v in model.state_dict().items() if not torch.equal(before[n], v)}
    for name in before:
        if name.split(".")[0] not in trainable:
            assert name not in changed, f"{name} (frozen, BatchNorm statistics included) changed"
    for top in trainable:  # every trainable stage moved (weights and BatchNorm statistics)
        assert any(n.startswith(f"{top}.") and "running_mean" not in n for n in changed), top
        if top not in ("fc", "conv1"):
            assert any(n.startswith(f"{top}.") and "running_mean" in n for n in changed), top
