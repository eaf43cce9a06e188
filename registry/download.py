"""Download a card's public files with a progress bar, verify checksums, unpack safely.

Offline, the first request fails at once and the error says how to get the files by hand.
Files are written to a hidden temporary sibling and renamed into place only after the
checksum matched (``registry.files.atomic_write``).

Why not pooch (``pooch.retrieve`` with its ``Unzip``/``Untar`` processors), the usual choice in
this field: on Python 3.11, which this project supports, pooch 1.9 extracts tar archives without
the ``"data"`` filter (it passes it from Python 3.12 on), so a member named ``../x`` or an
absolute link would be written outside the dataset folder; here every tar goes through
``filter="data"`` and zip members with absolute or ``..`` paths are refused. Progress goes to
the same rich board as every other long step (pooch wants a tqdm-like object), and an archive
that was verified and unpacked leaves a marker with its SHA-256, so it is never downloaded
again although it was deleted. What pooch would replace is the ~40 lines of streaming and
checking below.
"""

from __future__ import annotations

import gzip
import logging
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from registry.card import DatasetCard, RemoteFile
from registry.files import atomic_write, file_digest
from registry.errors import ChecksumError, DownloadError
from registry.progress import ProgressFactory, no_progress

log = logging.getLogger(__name__)
TIMEOUT_S = 20


@dataclass(frozen=True)
class FetchedFile:
    path: Path
    sha256: str


def manual_steps(card: DatasetCard) -> str:
    """The card's instructions for getting the data by hand, as one paragraph."""
    steps = list(card.obtain.steps)
    for f in card.obtain.files:
        check = f" ({f.checksum.algorithm} {f.checksum.value})" if f.checksum else ""
        unpack = " and unpack it" if f.unpack != "none" else ""
        steps.append(f"download {f.url}{check}{unpack}")
    where = card.obtain.path_hint or "the folder holding the data"
    steps.append(f"then run `bench add-dataset {card.name} --path DIR` with DIR {where}")
    return " ".join(f"({i}) {s.rstrip('.')}." for i, s in enumerate(steps, start=1))


def _verify(path: Path, remote: RemoteFile) -> None:
    if remote.checksum is None:
        log.warning("%s has no published checksum; recording its sha256 only", remote.filename)
        return
    got = file_digest(path, remote.checksum.algorithm)
    if got != remote.checksum.value.lower():
        raise ChecksumError(
            f"Checksum mismatch for {remote.filename} from {remote.url}: {remote.checksum.algorithm} "
            f"is {got}, the card expects {remote.checksum.value}.",
            "The download is corrupt or the file changed upstream: delete it and try again, "
            "or check the card's checksum.")


def _stream(remote: RemoteFile, part: Path, progress: ProgressFactory) -> None:
    try:
        with urllib.request.urlopen(remote.url, timeout=TIMEOUT_S) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length else remote.size_bytes
            with part.open("wb") as out, progress(f"download {remote.filename}", total) as adv:
                for block in iter(lambda: resp.read(1 << 20), b""):
                    out.write(block)
                    adv(len(block))
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"Could not download {remote.url} ({reason}).") from None


def _unpack(path: Path, how: str, dest: Path) -> None:
    if how == "zip":
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                if Path(member).is_absolute() or ".." in Path(member).parts:
                    raise DownloadError(f"Archive {path} has an unsafe member '{member}'.",
                                        "Do not use this archive.")
            zf.extractall(dest)
    elif how == "tar":
        with tarfile.open(path) as tf:
            tf.extractall(dest, filter="data")
    elif how == "gunzip":
        def gunzip(tmp: Path) -> None:
            with gzip.open(path, "rb") as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)

        atomic_write(dest / path.name.removesuffix(".gz"), gunzip)


def _fetch_one(card: DatasetCard, remote: RemoteFile, dest: Path,
               progress: ProgressFactory) -> FetchedFile:
    target = dest / remote.filename
    marker = dest / f".unpacked-{remote.filename}"
    if marker.is_file():  # verified and unpacked earlier; the archive itself was removed
        return FetchedFile(target, marker.read_text().strip())
    if not target.is_file():
        def download(tmp: Path) -> None:  # renamed to target only once verified
            _stream(remote, tmp, progress)
            _verify(tmp, remote)

        try:
            atomic_write(target, download)
        except DownloadError as err:
            raise DownloadError(f"{err.what} Get '{card.name}' by hand:",
                                manual_steps(card)) from None
    else:
        _verify(target, remote)
    sha = file_digest(target, "sha256")
    if remote.unpack != "none":
        _unpack(target, remote.unpack, dest)
        marker.write_text(sha)
        target.unlink()
    return FetchedFile(target, sha)


def fetch(card: DatasetCard, dest: Path, progress: ProgressFactory = no_progress
          ) -> list[FetchedFile]:
    """Download, verify and unpack every file of ``card`` into ``dest``; return them with sha256.

    Side effects: files land in ``dest``; archives are removed once unpacked (a marker file
    keeps their sha256), so nothing is downloaded twice.
    """
    dest.mkdir(parents=True, exist_ok=True)
    try:
        return [_fetch_one(card, remote, dest, progress) for remote in card.obtain.files]
    except BaseException:
        if not any(dest.iterdir()):
            dest.rmdir()
        raise
