"""Weights given to the benchmark: a bare file needs its architecture and source, bad files
are refused unread, a hub model without a network fails fast; and the settings that change no
result (keep_models) stay out of the config hashes."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import pytest
import torch

from test_run import TINY

SUITE = {**TINY, "name": "pub", "generality": {"ks": []}, "probes": [{"method": "expert"}]}


def test_a_bare_weights_file_needs_an_architecture_and_a_source(tmp_path):
    from bench_core.weights import WeightsError, source_model

    path = _model_file(tmp_path, "resnet18.safetensors")
    with pytest.raises(WeightsError, match="does not say its architecture"):
        source_model(f"digits={path}", image_size=(16, 16))
    with pytest.raises(WeightsError, match="does not say which source dataset"):
        source_model(str(path), image_size=(16, 16), arch="resnet18")
    model = source_model(f"digits={path}", image_size=(16, 16), arch="resnet18")
    assert (model.name, model.arch, model.weights, model.image_size) == \
        ("digits", "resnet18", str(path), (16, 16))


def _model_file(tmp_path: Path, name: str) -> Path:
    from safetensors.torch import save_file

    from bench_core.models import build_model

    path = tmp_path / name
    save_file(build_model("resnet18", 5, 0.0).state_dict(), str(path))
    return path


class Payload:
    """A pickle that would write a file if unpickled with code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "executed"))


def test_bad_weight_files_are_refused_unread(tmp_path):
    from bench_core.models import model_from_weights
    from bench_core.weights import WeightsError

    marker = tmp_path / "was-executed"
    renamed = tmp_path / "evil.safetensors"
    renamed.write_bytes(pickle.dumps({"fc.weight": Payload(marker)}))
    with pytest.raises(WeightsError, match="not a valid safetensors file .* not loaded"):
        model_from_weights(f"file:{renamed}", "resnet10t", 2, 0.0)
    evil_pth = tmp_path / "evil.pth"
    torch.save({"fc.weight": Payload(marker)}, evil_pth)
    with pytest.raises(WeightsError, match="nothing in it was executed"):
        model_from_weights(f"file:{evil_pth}", "resnet10t", 2, 0.0)
    assert not marker.exists()

    good = _model_file(tmp_path, "resnet18.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WeightsError, match="not a valid safetensors file"):
        model_from_weights(f"file:{truncated}", "resnet18", 2, 0.0)
    with pytest.raises(WeightsError, match="do not fit"):
        model_from_weights(f"file:{good}", "resnet10t", 2, 0.0)


def test_a_hub_model_without_network_fails_fast_and_clearly(tmp_path, monkeypatch, closed_port):
    from bench_core.models import model_from_weights
    from bench_core.weights import WeightsError

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port}")
    start = time.perf_counter()
    with pytest.raises(WeightsError, match="Could not download hf-hub:someone/digits-model .*"
                                           "local-dir:PATH"):
        model_from_weights("hf-hub:someone/digits-model", "resnet10t", 2, 0.0, cache=tmp_path)
    assert time.perf_counter() - start < 60
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ".safetensors"]


# Observed on the code before keep_models existed (SUITE's Suite.digest, its fine-tuning
# settings' hash, and the fold hashes of its digits -> lfw-faces pair on placeholder data):
# the default (keep_models off) must leave every config hash as it was.
HASHES_BEFORE_KEEP_MODELS = ("a5cc050bd6839f43", "42e46928a7f21b28",
                             ("9f2cdb8edf576703", "02685a0e090ee4d1"))


def _hashes(data: dict) -> tuple:
    from types import SimpleNamespace

    from bench_core.hashing import config_hash
    from benchmark.suite.spec import Suite
    from benchmark.suite.plan import _pair

    suite = Suite.model_validate(data)
    target = suite.targets[0]
    settings = suite.finetune_settings(target)
    pair = _pair(suite, {target.name: SimpleNamespace(fingerprint="f" * 64)}, target, "digits",
                 settings, "pretrain:abc", None, {})
    return suite.digest(), config_hash(settings.model_dump(mode="json")), pair.fold_hashes


@pytest.mark.parametrize("arch,classes,suffix", [("resnet10t", 7, ".safetensors"),
                                                  ("resnet18", 3, ".pth")])
def test_parameter_count_is_the_models_trainable_parameters(tmp_path, arch, classes, suffix):
    """The static ranking's size of a model, read from its file's header: the parameters the
    model has (its head included), not the BatchNorm buffers the state dict holds too."""
    from safetensors.torch import save_file

    from bench_core.models import build_model
    from bench_core.weights_check import parameter_count

    model = build_model(arch, classes, 0.0)
    path = tmp_path / f"{arch}{suffix}"
    if suffix == ".pth":
        torch.save(model.state_dict(), path)
    else:
        save_file(model.state_dict(), str(path))
    expected = sum(p.numel() for p in model.parameters())
    assert sum(t.numel() for t in model.state_dict().values()) > expected  # buffers exist
    assert parameter_count(path, arch) == expected


def test_keep_models_is_out_of_the_config_hashes():
    from benchmark.suite.spec import Suite

    assert _hashes(SUITE) == HASHES_BEFORE_KEEP_MODELS
    on = {**SUITE, "finetune_defaults": {**SUITE["finetune_defaults"], "keep_models": True}}
    assert _hashes(on) == HASHES_BEFORE_KEEP_MODELS  # it changes no result
    suite = Suite.model_validate(on)
    assert suite.finetune_settings(suite.targets[0]).keep_models
    per_target = Suite.model_validate({**SUITE, "targets": [
        {"name": "lfw-faces", "finetune": {"keep_models": True}}]})
    assert per_target.finetune_settings(per_target.targets[0]).keep_models
    assert not Suite.model_validate(SUITE).finetune_settings(suite.targets[0]).keep_models
