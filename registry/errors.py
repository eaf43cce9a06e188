"""Exception types of transfer-bench.

Every error a user can cause is a :class:`BenchError`: its message says what was wrong (the
value, the file or the field) and what to do about it. The CLI prints the message as one
paragraph and exits non-zero; nothing else in the code base prints errors.
"""

from __future__ import annotations


class BenchError(Exception):
    """Base class for errors caused by input, with a user-facing message."""

    exit_code = 1

    def __init__(self, what: str, hint: str | None = None) -> None:
        self.what = what
        self.hint = hint
        super().__init__(f"{what} {hint}" if hint else what)


class UnknownNameError(BenchError, KeyError):
    """A name (dataset, loader, probe ...) that no registry knows."""

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return self.args[0]


class DuplicateNameError(BenchError):
    """A second registration under a name already taken."""


class CardError(BenchError):
    """A dataset card that does not validate."""


class DatasetFormatError(BenchError):
    """Data on disk that does not match the format its loader expects."""


class ChecksumError(BenchError):
    """A downloaded or provided file whose checksum differs from the card's."""


class DownloadError(BenchError):
    """A download that failed (offline, server error) or data that must be fetched by hand."""


class RegistryError(BenchError):
    """A problem with the registry store itself (not registered, locked, inconsistent)."""
