"""The probe contract: a registered probe turns registered datasets into a distance matrix.

A new probe is one module in this package (or an installed plugin's, by the entry point group
``transfer_bench.probes``) holding a ``@register_probe`` class with ``name = "..."``; see
docs/contributing.md.

Every probe is a class registered under its name with a pydantic ``Options`` model; ``compute``
takes the datasets' registry records (in the order asked) and returns a :class:`ProbeResult`
whose ``distances`` is a square matrix in that order (smaller = more similar). Probes that
learn an embedding per dataset also return it, so it can be stored and logged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from bench_core.sources import SourceModel
from registry.errors import BenchError
from registry.names import (LazyRegistry, Requirement, check_extension, is_flag, is_name,
                            subclass_of, takes, validate_options)
from registry.paths import BenchPaths
from registry.progress import ProgressFactory, no_progress
from registry.store import DatasetRecord


class ProbeOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OutputsCache:
    """Source-model outputs on a target's sample (penultimate features, head probabilities)
    kept for the next probe that scores the same model on the same sample: the estimators of
    a suite run in a row in one process, and each would compute the same features again. A
    copy sent to another process starts empty."""

    def __init__(self, max_entries: int = 256) -> None:
        self._items: dict[tuple, tuple] = {}
        self.max_entries = max_entries

    def get(self, key: tuple, compute):
        if key not in self._items:
            if len(self._items) >= self.max_entries:
                self._items.pop(next(iter(self._items)))
            self._items[key] = compute()
        return self._items[key]

    def __getstate__(self) -> dict:
        return {"_items": {}, "max_entries": self.max_entries}


@dataclass(frozen=True)
class ProbeContext:
    """Where a probe runs: BENCH_HOME, the device, progress reporting, and the trained source
    models it may score (filled by the caller, e.g. the models a suite pretrained)."""

    paths: BenchPaths
    device: Any = "cpu"
    progress: ProgressFactory = no_progress
    source_models: Mapping[str, SourceModel] = field(default_factory=dict)
    tracking_uri: str | None = None  # where models:/ weights are registered
    outputs: OutputsCache | None = None  # shared by the probes of one process (a suite's)


@dataclass
class ProbeResult:
    method: str
    datasets: list[str]
    distances: np.ndarray
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    # extra figures to log with the result: artifact path -> a function drawing it
    figures: dict[str, Callable[[], Any]] = field(default_factory=dict, repr=False)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready result; cells a probe does not cover (NaN) become null."""
        d = np.asarray(self.distances, dtype=float).round(6)
        rows = [[float(v) if np.isfinite(v) else None for v in row] for row in d]
        return {"method": self.method, "datasets": self.datasets, "distances": rows,
                "details": self.details}


class ProbeError(BenchError):
    """A probe that cannot run on the given datasets or options."""


class Probe(ABC):
    name: ClassVar[str]
    Options: ClassVar[type[ProbeOptions]] = ProbeOptions
    symmetric: ClassVar[bool] = True
    needs_data: ClassVar[bool] = True  # False: the catalog card is enough (expert)
    uses_source_models: ClassVar[bool] = False  # True: scores ProbeContext.source_models
    # True: embeds data with one network given by a ``weights`` option; in a suite it defaults
    # to a network the suite pretrained (``suite:SOURCE``)
    uses_probe_network: ClassVar[bool] = False
    # bumped when a change of the method changes its results, so that results stored by an
    # earlier version are not reused (part of a suite probe's config hash from version 2 on)
    version: ClassVar[int] = 1
    # what running it for a new target costs, by tier (``bench recommend`` breaks ties between
    # equally good methods towards the cheaper one): 1 reads the catalog card, 2 statistics of
    # the data, 3 a forward pass of every source model, 4 trains a network or solves optimal
    # transport
    cost: ClassVar[int] = 2
    # options that make it run in seconds on three tiny datasets: what the contract test
    # (tests/test_contracts.py) runs every registered probe with
    smoke_options: ClassVar[dict[str, Any]] = {}

    @classmethod
    def wants_probe_network(cls, options: Mapping[str, Any]) -> bool:
        """Whether these options embed the data with a probe network (a suite then gives the
        probe one of its pretrained networks, and the probe waits for its pretraining)."""
        return cls.uses_probe_network

    def __init__(self, options: dict[str, Any], context: ProbeContext) -> None:
        self.opts = validate_options(self.Options, options, f"probe '{self.name}'",
                                     "Fix the --option flags (or the suite's probe options).")
        self.context = context

    def check(self, records: list[DatasetRecord]) -> None:
        """Raise :class:`ProbeError` now for what :meth:`compute` would fail on with these
        datasets, from their records and labels alone (a suite checks its probes before any
        job runs). Nothing to check by default."""

    @abstractmethod
    def compute(self, records: list[DatasetRecord]) -> ProbeResult:
        """Distances between the datasets of ``records`` (square, in their order)."""


GUIDE = "docs/contributing.md, 'A probe or an estimator'"
# what the engine, the suite planner, `bench probe` and `bench recommend` read off a probe
PROBE_CONTRACT = (
    Requirement("name", is_name, 'set name = "my-probe" in the class body (lowercase words '
                "joined by dashes: the CLI and suites name it so)", own=True),
    Requirement("Options", subclass_of(ProbeOptions),
                "make Options a subclass of probes.base.ProbeOptions"),
    Requirement("symmetric", lambda v: isinstance(v, (bool, property)),
                "set symmetric = True when d(a, b) = d(b, a), else False (a property when "
                "it depends on the options)"),
    Requirement("needs_data", is_flag,
                "set needs_data = False only when the catalog card is enough"),
    Requirement("uses_source_models", is_flag,
                "set uses_source_models = True when it scores ProbeContext.source_models"),
    Requirement("uses_probe_network", is_flag,
                "set uses_probe_network = True when it embeds data with one network"),
    Requirement("version", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                "set version = 1 (bump it when a change alters results)"),
    Requirement("cost", lambda v: v in (1, 2, 3, 4),
                "set cost to its tier: 1 the card, 2 statistics of the data, 3 a forward pass "
                "of every source model, 4 training a network or solving optimal transport"),
    Requirement("smoke_options", lambda v: isinstance(v, dict),
                "set smoke_options = {...}: options that run it in seconds on tiny data"),
    Requirement("__init__", takes("self", "options", "context"),
                "keep the constructor's (options, context) arguments"),
    Requirement("compute", takes("self", "records"), "compute(self, records) -> ProbeResult"),
    Requirement("check", takes("self", "records"), "check(self, records) -> None"),
)


def check_probe_class(name: str, cls: Any) -> None:
    """Refuse ``cls`` unless it is a complete probe (:data:`PROBE_CONTRACT`, every abstract
    method implemented: an estimator's ``score(features, probs, labels)`` too) registered under
    its own name, naming what is missing and how to fix it."""
    check_extension(cls, "probe", Probe, PROBE_CONTRACT, GUIDE, name)


# every @register_probe class of this package, found by name without importing it (the CLI
# lists them without loading torch); installed plugins add theirs by entry point, checked the
# same way
PROBES: LazyRegistry[type[Probe]] = LazyRegistry("probe", "probes", "register_probe",
                                                 entry_points="transfer_bench.probes",
                                                 check=check_probe_class)


def register_probe(cls: type[Probe]) -> type[Probe]:
    """Class decorator: register ``cls`` under ``cls.name`` once it meets
    :data:`PROBE_CONTRACT` (else a ContractError naming what is missing and the fix)."""
    return PROBES.add_class(cls)


def card_only_record(card: dict[str, Any]) -> DatasetRecord:
    """A record for a catalog dataset that is not registered (for probes that need no data)."""
    return DatasetRecord(name=card["name"], card=card, root=None, loader=card["format"]["loader"],
                         fingerprint="", n_samples=card.get("n_samples") or 0,
                         classes=list(card["classes"]), class_counts={}, meta_features={},
                         cache_dir="")
