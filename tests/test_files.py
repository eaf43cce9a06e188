"""The shared file helpers and the timm head lookup: one implementation each."""

from __future__ import annotations

import hashlib

import pytest


def test_file_digest_matches_hashlib(tmp_path):
    from registry.files import file_digest

    path = tmp_path / "blob"
    data = bytes(range(256)) * 5000
    path.write_bytes(data)
    assert file_digest(path) == hashlib.sha256(data).hexdigest()
    assert file_digest(path, "md5") == hashlib.md5(data).hexdigest()


def test_atomic_write_leaves_the_old_file_or_the_new_one(tmp_path):
    from registry.files import atomic_write

    path = tmp_path / "out" / "weights.bin"
    atomic_write(path, lambda tmp: tmp.write_bytes(b"old"))

    def fails(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, fails)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in path.parent.iterdir()) == ["weights.bin"]


def test_atomic_folder_replaces_only_when_complete(tmp_path):
    from registry.files import atomic_folder

    folder = tmp_path / "published"
    with atomic_folder(folder) as tmp:
        (tmp / "a.txt").write_text("first")
    with pytest.raises(RuntimeError):
        with atomic_folder(folder) as tmp:
            (tmp / "a.txt").write_text("second, unfinished")
            raise RuntimeError("interrupted")
    assert (folder / "a.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["published"]


@pytest.mark.parametrize("arch,head", [("resnet10t", "fc"), ("mobilenetv3_small_050", "classifier")])
def test_classifier_keys_follow_timm_whatever_the_head_is_called(arch, head):
    from bench_core.models import build_model, classifier_keys

    assert classifier_keys(build_model(arch, 3, 0.0)) == {f"{head}.weight", f"{head}.bias"}
