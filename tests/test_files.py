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


def test_atomic_writes_keep_the_usual_permissions(tmp_path):
    import os
    import stat

    from registry.files import atomic_folder, atomic_write

    umask = os.umask(0o022)  # the test sets a known umask (and puts the caller's back)
    try:
        path = atomic_write(tmp_path / "report.html", lambda tmp: tmp.write_text("<html>"))
        with atomic_folder(tmp_path / "cache") as tmp:
            (tmp / "a.npy").write_bytes(b"x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # as open() makes it, not mkstemp's 0600
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o755  # not mkdtemp's 0700


def test_atomic_folder_can_keep_a_copy_made_meanwhile(tmp_path):
    from registry.files import atomic_folder

    folder = tmp_path / "cache"
    with atomic_folder(folder, keep_existing=True) as tmp:
        (tmp / "a.txt").write_text("mine")
        folder.mkdir()  # another process finished the same folder first
        (folder / "a.txt").write_text("theirs")
    assert (folder / "a.txt").read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_listing_names_twenty_problems_and_counts_the_rest():
    from registry.files import listing

    problems = [f"img{i}.png" for i in range(23)]
    text = listing(problems)
    assert text.startswith("img0.png; img1.png") and text.endswith("img19.png (and 3 more)")
    assert "img20.png" not in text
    assert listing(problems[:20]) == "; ".join(problems[:20])  # exactly the limit: no "more"


@pytest.mark.parametrize("arch,head", [("resnet10t", "fc"), ("mobilenetv3_small_050", "classifier")])
def test_classifier_keys_follow_timm_whatever_the_head_is_called(arch, head):
    from bench_core.models import build_model, classifier_keys

    assert classifier_keys(build_model(arch, 3, 0.0)) == {f"{head}.weight", f"{head}.bias"}
