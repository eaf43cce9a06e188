"""Suites: YAML defaults, --set overrides, selection, scheduler semantics."""

from __future__ import annotations

import pytest

from benchmark.suite.settings import Scheduler
from benchmark.suite.files import resolve_suite, suite_names
from registry.errors import CardError, UnknownNameError


def test_builtin_suites_resolve():
    assert {"digits", "cats-scans"} <= set(suite_names())
    for name in suite_names():
        suite = resolve_suite(name)
        assert suite.targets and suite.sources


def test_cats_scans_has_table_iii_settings():
    s = resolve_suite("cats-scans")
    src = {x.name: s.pretrain_settings(x) for x in s.sources if x.weights is None}
    assert src["stl10"].image_size == (96, 96) and src["stl10"].optimizer.lr == 1e-3
    assert src["stl10"].scheduler == Scheduler(kind="halve-after", after=30)
    assert src["stl10"].epochs == 50
    assert src["dtd"].batch_size == 12 and src["dtd"].image_size == (300, 300)
    assert src["chest-xray"].optimizer.lr == 1e-6 and src["chest-xray"].epochs == 70
    assert src["kimia960"].epochs == 100 and src["kimia960"].batch_size == 12
    tgt = {t.name: s.finetune_settings(t) for t in s.targets}
    assert tgt["pcam-middle"].image_size == (96, 96) and tgt["pcam-middle"].epochs == 20
    assert tgt["isic2018"].epochs == 50 and tgt["chest-xray"].batch_size == 128
    assert s.folds.n == 5 and s.architecture.name == "resnet50" and s.architecture.drop_rate == 0.5
    kimia = next(x for x in s.sources if x.name == "kimia960")
    assert kimia.only_targets == ("pcam-middle",)


def test_set_overrides_reach_list_items_by_name():
    s = resolve_suite("cats-scans", [("sources.stl10.pretrain.optimizer.lr", 0.5),
                                     ("folds.n", 3), ("baseline", "self")])
    stl = next(x for x in s.sources if x.name == "stl10")
    assert s.pretrain_settings(stl).optimizer.lr == 0.5
    assert s.pretrain_settings(stl).image_size == (96, 96)  # the rest kept
    assert s.folds.n == 3 and s.baseline == "self"


def test_bad_overrides_name_the_field():
    with pytest.raises(CardError, match="no list item named 'stl-10'"):
        resolve_suite("cats-scans", [("sources.stl-10.pretrain.epochs", 3)])
    with pytest.raises(CardError, match="folds.n: Input should be greater than or equal to 2"):
        resolve_suite("digits", [("folds.n", 1)])
    with pytest.raises(CardError, match="targets.digits-noise.finetune is invalid.*epochs"):
        resolve_suite("digits", [("targets.digits-noise.finetune.epochs", 0)])


def test_selection_and_unknown_names():
    s = resolve_suite("cats-scans", targets=["chest-xray", "pcam-middle"])
    assert [t.name for t in s.targets] == ["chest-xray", "pcam-middle"]
    with pytest.raises(UnknownNameError, match="Unknown target 'chest'. Did you mean 'chest-xray'"):
        resolve_suite("cats-scans", targets=["chest"])
    with pytest.raises(UnknownNameError, match="Unknown suite 'digit'. Did you mean 'digits'"):
        resolve_suite("digit")


def test_scheduler_paper_versus_public_code():
    paper = Scheduler(kind="halve-after", after=3)
    code = Scheduler(kind="halve-every-after", after=3)
    assert [paper.factor(e) for e in range(6)] == [1, 1, 1, 0.5, 0.5, 0.5]
    assert [code.factor(e) for e in range(6)] == [1, 1, 1, 0.5, 0.25, 0.125]
    assert Scheduler().factor(10) == 1.0


def test_suite_file_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nsources: [{name: digits}]\ntargets: [{name: lfw-faces}]\n")
    assert resolve_suite(str(path)).name == "mine"
    path.write_text("name: mine\nsources: []\ntargets: []\n")
    with pytest.raises(CardError, match="a suite needs at least one target"):
        resolve_suite(str(path))
