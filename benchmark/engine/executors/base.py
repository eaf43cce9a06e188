"""The executor contract: run a graph of jobs honouring their dependencies, report outcomes.

A :class:`Job` is a picklable callable plus the keys of the jobs whose results it takes. An
executor runs every job once its dependencies have results (``call(results_of_deps)``),
reports each :class:`JobOutcome` through ``on_outcome`` as it lands, and returns them all. Jobs
whose results exist already (finished in an earlier run) come in ``done`` and are not run.
``inline`` jobs are cheap bookkeeping the driver runs itself, whatever the engine.

Failure rules, the same for every engine: a :class:`~registry.errors.BenchError` raised by a job
is a deterministic user-facing failure and is never retried; a job whose dependency failed is
not run and fails with that reason. What else is retried is the engine's: Ray retries a task
that raises any other exception or whose worker dies (``max_retries``); submitit requeues a
Slurm job only when it is preempted or times out, and any other exception fails the job.

Engines are registered by name (:data:`EXECUTORS`): a new engine is one new module in this
folder with a ``@register_executor`` subclass of :class:`Executor`, whose documented attributes
are the whole contract (:data:`EXECUTOR_CONTRACT`, checked when the class is registered: a
missing one is a :class:`~registry.names.ContractError` naming it and the fix). Its constructor
takes the :class:`ExecutorContext` and its own options as keywords with defaults; those
keywords are the options the CLI accepts for it (``inspect.signature``), so nothing else lists
them. Its ``run`` usually hands the graph to :func:`.driver.drive` with an :class:`Engine`
(``submit``, ``wait``, ``chains``, ``slots``), whose contract is checked when it is defined.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

from registry.errors import BenchError
from registry.names import ContractError, LazyRegistry, Requirement, check_extension, is_name

OutcomeCallback = Callable[["JobOutcome"], None]


@dataclass(frozen=True)
class Job:
    key: str
    label: str
    kind: str  # pretrain | fold | pair | probe
    call: Callable[[dict[str, Any]], Any]
    deps: tuple[str, ...] = ()
    gpus: float = 0.0
    inline: bool = False


@dataclass(frozen=True)
class JobOutcome:
    key: str
    label: str
    kind: str
    ok: bool
    value: Any = None
    error: str | None = None
    seconds: float = 0.0
    host: str = ""


@dataclass(frozen=True)
class Failed:
    """A job's deterministic failure, carried as a value (so engines do not retry it)."""

    message: str


class ExecutorError(BenchError):
    """An engine that cannot start or cannot run this plan."""


@dataclass(frozen=True)
class ExecutorContext:
    """What the driver tells every engine: whether the tracking store is a local file that
    only this machine reaches, and a folder of this session the engine may keep files in."""

    local_store: bool = False
    folder: Path | None = None


Placement = Literal["process", "machine", "cluster"]
PLACEMENTS: tuple[str, ...] = get_args(Placement)


@dataclass(frozen=True)
class Needs:
    """What an engine needs beyond this package, declared on its class (``needs = ...``).

    ``module`` is an optional package the engine imports lazily (through :meth:`load`), and
    ``extra`` the extra of ``pyproject.toml`` that installs it: a run checks it before any
    work (:func:`check_installed`). ``commands`` are programs on PATH the engine drives (a
    cluster's, such as Slurm's ``sbatch``). The contract test skips an engine whose needs this
    machine does not meet, with :meth:`missing` as the reason."""

    module: str | None = None
    extra: str | None = None
    commands: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.module is None) != (self.extra is None):
            raise ContractError(
                f"Needs(module={self.module!r}, extra={self.extra!r}) names one of the two.",
                "Give both: the optional module and the extra of pyproject.toml installing it.")

    def load(self) -> Any:
        """The optional module, imported (or an error naming the extra to install)."""
        return import_extra(self.module, self.extra) if self.module else None

    def absent_commands(self) -> list[str]:
        """The declared commands that are not on PATH here."""
        return [c for c in self.commands if shutil.which(c) is None]

    def missing(self) -> str | None:
        """What this machine lacks of these needs, in words (None when nothing); the module
        is looked up without being imported."""
        if self.module and importlib.util.find_spec(self.module) is None:
            return (f"needs {self.module}, which is not installed "
                    f'(pip install -e ".[{self.extra}]")')
        absent = self.absent_commands()
        if absent:
            return f"needs {', '.join(absent)} on PATH (a cluster's tools), not found here"
        return None


class Executor(ABC):
    """Runs a graph of jobs: the base class of every registered executor.

    Declared on the class (:data:`EXECUTOR_CONTRACT`, checked when it is registered):

    - ``name``: the name it is registered and chosen by (``--executor NAME``).
    - ``placement``: where its jobs run, which decides what the driver does here:
      ``"process"`` in the driver's process (the driver shows progress bars and resolves
      ``--device`` before any work); ``"machine"`` in other processes of this machine (with
      ``--device auto`` jobs want a GPU when this machine has CUDA); ``"cluster"`` possibly on
      other machines (with ``--device auto`` jobs ask for a GPU; the engine gives one where
      the cluster has it).
    - ``threads_per_job``: torch threads in each job (None: torch's default, every core); a
      class attribute, or a property when an option sets it.
    - ``run(jobs, done, on_outcome)``: run the graph, usually ``drive(engine, ...)``.

    With defaults: ``needs`` (:class:`Needs`: nothing beyond this package) and
    ``smoke_options`` (options that make the contract test's tiny graph run in seconds).
    The constructor takes the :class:`ExecutorContext` and the engine's options as keywords,
    each with a default: they are the options the CLI accepts for it."""

    name: ClassVar[str]
    placement: ClassVar[Placement]
    threads_per_job: int | None
    needs: ClassVar[Needs] = Needs()
    smoke_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, context: ExecutorContext) -> None:
        self.context = context

    @abstractmethod
    def run(self, jobs: Sequence[Job], done: Mapping[str, Any],
            on_outcome: OutcomeCallback) -> dict[str, JobOutcome]:
        """Run ``jobs`` (dependencies first); ``done`` holds results that exist already."""


# What the driver (session.py, driver.py) and the CLI read off an executor class, beside the
# abstract run()
EXECUTOR_CONTRACT = (
    Requirement("name", is_name, 'set name = "my-engine" in the class body (lowercase words '
                "joined by dashes: --executor my-engine)", own=True),
    Requirement("placement", lambda v: v in PLACEMENTS,
                f"set placement to where its jobs run: {', '.join(map(repr, PLACEMENTS))}"),
    Requirement("threads_per_job", lambda v: v is None or isinstance(v, (int, property)),
                "set threads_per_job = None (torch's default, every core), a number, or a "
                "property reading an option"),
    Requirement("needs", lambda v: isinstance(v, Needs),
                "declare needs = Needs(module=..., extra=..., commands=...)"),
    Requirement("smoke_options", lambda v: isinstance(v, dict),
                "set smoke_options to a dict of options"),
)
_GUIDE = ('the Executor contract: benchmark/engine/executors/base.py; docs/contributing.md, '
          '"An executor"')


def check_executor(name: str, cls: Any) -> None:
    """Refuse ``cls`` as the executor ``name`` unless it meets :data:`EXECUTOR_CONTRACT` and
    its constructor takes what the CLI passes: a :class:`~registry.names.ContractError` naming
    what is missing and the fix."""
    check_extension(cls, "executor", Executor, EXECUTOR_CONTRACT, _GUIDE, name)
    what = f"Executor {cls.__module__}:{cls.__qualname__}"
    params = list(inspect.signature(cls).parameters.values())
    if not params or params[0].name != "context":
        raise ContractError(f"{what}'s constructor does not take 'context' first.",
                            f"Define __init__(self, context, *, option=default, ...) ({_GUIDE}).")
    for p in params[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            raise ContractError(f"{what}'s constructor takes {p}: the CLI lists options by name.",
                                "Name each option as a keyword-only argument with a default.")
        if p.default is p.empty:
            raise ContractError(f"{what}'s option '{p.name}' has no default: the CLI passes only "
                                "the flags given.", f"Give '{p.name}' a default.")


# every @register_executor class of this package, found by name without importing it;
# installed plugins add theirs by entry point, held to the same contract
EXECUTORS: LazyRegistry[type[Executor]] = LazyRegistry(
    "executor", "benchmark.engine.executors", "register_executor",
    entry_points="transfer_bench.executors", check=check_executor)


def register_executor(cls: type[Executor]) -> type[Executor]:
    """Class decorator: register ``cls`` under ``cls.name`` once it meets
    :data:`EXECUTOR_CONTRACT` (else a ContractError naming what is missing and the fix)."""
    return EXECUTORS.add_class(cls)


def executor_options(name: str) -> list[str]:
    """The options engine ``name`` takes (its constructor's keywords after the context)."""
    params = inspect.signature(EXECUTORS.get(name)).parameters
    return [p.name for p in params.values() if p.name != "context"
            and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def make_executor(name: str, context: ExecutorContext, **options: Any) -> Executor:
    """The executor registered as ``name``, built with ``options`` (engine flags); options it
    does not take are an error naming them and the ones it takes."""
    wrong = sorted(set(options) - set(executor_options(name)))
    if wrong:
        raise ExecutorError(f"Option(s) {wrong} do not apply to --executor {name}.",
                            f"It takes: {', '.join(executor_options(name)) or 'none'}.")
    return EXECUTORS.get(name)(context, **options)


def check_installed(name: str) -> None:
    """Fail at once, naming the extra to install, if engine ``name`` (unknown names fail too)
    needs a package that is not installed: before a plan registers or downloads anything."""
    EXECUTORS.get(name).needs.load()


@dataclass(frozen=True)
class Ran:
    """What running a job produced, wherever it ran: its value (or :class:`Failed`), the
    seconds it took there and the host and process that ran it."""

    value: Any
    seconds: float
    host: str
    pid: int


class Engine(ABC):
    """What :func:`.driver.drive` needs from an engine, checked when a subclass is defined.

    ``slots`` (required, a class attribute or a property): jobs in flight at most, None for no
    limit (the engine queues them itself). ``chains`` (default False, always safe): whether a
    job may be submitted with handles of unfinished dependencies in place of their values."""

    chains: ClassVar[bool] = False
    slots: int | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = [a for a in ("slots", "submit", "wait") if not hasattr(cls, a)
                   or getattr(getattr(cls, a), "__isabstractmethod__", False)]
        if missing:
            raise ContractError(
                f"Engine {cls.__module__}:{cls.__qualname__} does not define "
                f"{', '.join(repr(a) for a in missing)}.",
                "Define slots (jobs in flight at most, None: no limit), submit(batch) and "
                "wait(handles) on the class; see Engine in benchmark/engine/executors/base.py.")

    @abstractmethod
    def submit(self, batch: list[tuple[Job, list[Any]]]) -> list[Any]:
        """Start each job with its dependencies' values (or handles); one handle per job."""

    @abstractmethod
    def wait(self, handles: list[Any]) -> list[tuple[int, Ran | BaseException]]:
        """Block until at least one handle is done; (index, what it produced) for each."""


def import_extra(module: str, extra: str) -> Any:
    """``import module`` for an optional engine, or say which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExecutorError(f"The '{extra}' executor needs {module}, which is not installed.",
                            f'Install the extra: pip install -e ".[{extra}]" '
                            f'(or pip install "transfer-bench[{extra}]").') from None
