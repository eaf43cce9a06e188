"""Probes through the CLI and the library: logging to MLflow, bad input, Task2Vec's
reference protocol and its probe network, OTDD from the command line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probes.base import PROBES, ProbeContext



@pytest.mark.slow
def test_task2vec_related_datasets_are_closer(paths, three):
    result = PROBES.get("task2vec")(PROBES.get("task2vec").smoke_options, ProbeContext(paths)).compute(three)
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
    opts = {**PROBES.get("task2vec").smoke_options, "fisher": "variational",
            "variational_epochs": 1}
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
