"""File helpers every layer uses: checksums, atomic writes (nothing partial is ever seen
under the final name) and the listing of bad files in one error."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of ``path`` (hashlib.file_digest: streamed, no whole-file read)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()


MAX_LISTED = 20  # problems listed in one error; the rest are counted


def listing(problems: list[str], limit: int = MAX_LISTED) -> str:
    """The first ``limit`` problems joined by "; ", then "(and N more)": every bad or missing
    file goes into one error, so a user fixes them in one pass."""
    more = f" (and {len(problems) - limit} more)" if len(problems) > limit else ""
    return "; ".join(problems[:limit]) + more


def _sibling_name(path: Path) -> Path:
    """A fresh hidden name beside ``path`` for its temporary copy (same suffix)."""
    return path.with_name(f".{path.stem}.{secrets.token_hex(4)}{path.suffix}")


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` to a temporary sibling of ``path`` (same suffix), then rename it to
    ``path``; on any failure the temporary file is removed and ``path`` is untouched. The file
    gets the usual permissions (0666 less the umask, as ``open`` gives), not a temp file's 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling_name(path)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def atomic_folder(folder: Path, keep_existing: bool = False) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``folder`` to fill; on success it replaces
    ``folder`` (an existing one only once the new one is complete), on failure it is removed.
    ``keep_existing``: a ``folder`` that exists by then (the same content, made meanwhile by
    another process) stays and the new copy is dropped. The folder gets the usual permissions
    (0777 less the umask), not a temp folder's 0700."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling_name(folder)
    tmp.mkdir(0o777)
    try:
        yield tmp
        if folder.exists() and not keep_existing:
            shutil.rmtree(folder)
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (keep_existing and folder.is_dir()):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
