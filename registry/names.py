"""Registries keyed by name, filled by decorator (as timm's model registry is).

A duplicate name raises; an unknown name raises an error that lists close matches.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from registry.errors import CardError, DuplicateNameError, UnknownNameError

T = TypeVar("T")


MIN_PREFIX = 3  # shorter inputs are too ambiguous to suggest every name they start


def close_matches(name: str, candidates: list[str], n: int = 3, cutoff: float = 0.6
                  ) -> list[str]:
    """Candidates that look like ``name``: most similar first (difflib's ratio at least
    ``cutoff``), then names it begins or that begin with it (from ``MIN_PREFIX`` characters
    on). Nothing when no name is close."""
    fuzzy = difflib.get_close_matches(name, candidates, n=n, cutoff=cutoff)
    prefix = [c for c in candidates if min(len(name), len(c)) >= MIN_PREFIX
              and (c.startswith(name) or name.startswith(c))]
    return list(dict.fromkeys(fuzzy + prefix))[:n]


def unknown_name_message(kind: str, name: str, candidates: list[str]) -> str:
    """One-paragraph message for an unknown ``name`` of ``kind``, with suggestions."""
    near = close_matches(name, candidates)
    msg = f"Unknown {kind} '{name}'."
    if near:
        msg += " Did you mean " + " or ".join(f"'{c}'" for c in near) + "?"
    return msg


class Registry(Generic[T]):
    """A name -> object mapping filled by the :meth:`register` decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering the decorated object under ``name``."""

        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise DuplicateNameError(
                f"A {self.kind} named '{name}' is already registered.",
                "Choose another name.",
            )
        self._items[name] = obj

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                unknown_name_message(self.kind, name, sorted(self._items)),
                f"Known {self.kind}s: {', '.join(sorted(self._items))}.",
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


def validate_options(model: type, options: dict, what: str, hint: str):
    """``options`` validated into the pydantic ``model``; a CardError naming every bad field."""
    from pydantic import ValidationError

    try:
        return model.model_validate(options)
    except ValidationError as err:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise CardError(f"Options for {what} are invalid: {fields}.", hint) from None
