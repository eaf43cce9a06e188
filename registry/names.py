"""Registries keyed by name, filled by decorator (as timm's model registry is).

A duplicate name raises; an unknown name raises an error that lists close matches.

:class:`LazyRegistry` is how extensions (dataset loaders, probes, estimators, executors, shift
transforms) are found: every module of one package folder that holds a class decorated with the
registry's decorator and carrying ``name = "..."`` is one extension. Their names (and the first
line of their docstrings) are read from the source without importing anything, so the CLI lists
them without loading torch; a module is imported when its extension is first used, and its
decorator registers it. Installed plugins add theirs through an entry-point group.
Functions register the same way with ``@decorator("name")`` (the embedded-dataset builders).

:func:`check_extension` is how a registry's decorator holds an extension to its written
contract (the base class, its abstract methods, the attributes its users read): a class that
lacks one is refused when it registers, with a :class:`ContractError` naming it and the fix.
"""

from __future__ import annotations

from pydantic import ValidationError

import ast
import difflib
import importlib
import importlib.metadata
import importlib.util
import inspect
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, TypeVar

from registry.errors import BenchError, CardError, DuplicateNameError, UnknownNameError

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
                unknown_name_message(self.kind, name, self.names()),
                f"Known {self.kind}s: {', '.join(self.names())}.",
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


@dataclass(frozen=True)
class Extension:
    """Where an extension lives, found without importing it: ``module:attr`` and the first
    line of its docstring."""

    name: str
    target: str  # "package.module:Class"
    summary: str = ""

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]


def scan_source(path: Path, module: str, decorator: str) -> list[Extension]:
    """The extensions of one source file: classes decorated with ``@decorator`` (or
    ``@x.decorator``) that set ``name = "literal"`` in their body, and classes or functions
    decorated with ``@decorator("literal")`` (the embedded-dataset builders)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in tree.body:
        if not isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            continue
        for deco in node.decorator_list:
            name = _registered_name(node, deco, decorator)
            if name is not None:
                doc = (ast.get_docstring(node) or "").strip().split("\n\n")[0]
                found.append(Extension(name, f"{module}:{node.name}", " ".join(doc.split())))
                break
    return found


def _registered_name(node: ast.ClassDef | ast.FunctionDef, deco: ast.expr, decorator: str
                     ) -> str | None:
    """The name ``deco`` registers ``node`` under, when it is ``decorator``; else None."""
    if isinstance(deco, ast.Call):
        first = deco.args[0] if deco.args else None
        if _decorator_name(deco.func) == decorator and isinstance(first, ast.Constant) \
                and isinstance(first.value, str):
            return first.value
        return None
    if isinstance(node, ast.ClassDef) and _decorator_name(deco) == decorator:
        return _name_literal(node)
    return None


def _name_literal(node: ast.ClassDef) -> str | None:
    """The string a class body assigns to ``name`` (``name = "x"`` or ``name: T = "x"``)."""
    for stmt in node.body:
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
            else stmt.target if isinstance(stmt, ast.AnnAssign) else None
        value = getattr(stmt, "value", None)
        if isinstance(target, ast.Name) and target.id == "name" and \
                isinstance(value, ast.Constant) and isinstance(value.value, str):
            return value.value
    return None


def _decorator_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


class LazyRegistry(Registry[T]):
    """A registry whose entries are the extension modules of ``package`` (and of the
    ``entry_points`` group of installed plugins), listed without importing them.

    ``names()`` and ``extensions()`` read the source; ``get(name)`` imports the one module that
    holds ``name``, whose ``decorator`` registers it. Objects registered directly (a notebook,
    a test) are listed too. ``check(name, obj)``, when given, holds every object added (by the
    decorator or through an entry point) to the kind's contract: it raises to refuse one."""

    def __init__(self, kind: str, package: str, decorator: str,
                 entry_points: str | None = None,
                 check: Callable[[str, T], None] | None = None) -> None:
        super().__init__(kind)
        self.package, self.decorator, self.group = package, decorator, entry_points
        self.check = check

    @cached_property
    def _found(self) -> dict[str, Extension]:
        found: dict[str, Extension] = {}
        spec = importlib.util.find_spec(self.package)
        roots = list(spec.submodule_search_locations or []) if spec else []
        for root in map(Path, roots):
            for path in sorted(root.rglob("*.py")):
                rel = path.relative_to(root).with_suffix("")
                module = ".".join((self.package, *rel.parts)).removesuffix(".__init__")
                for ext in scan_source(path, module, self.decorator):
                    self._add_found(found, ext)
        for ep in importlib.metadata.entry_points(group=self.group) if self.group else ():
            self._add_found(found, Extension(ep.name, ep.value))
        return found

    def _add_found(self, found: dict[str, Extension], ext: Extension) -> None:
        if ext.name in found and found[ext.name].target != ext.target:
            raise DuplicateNameError(
                f"Two {self.kind}s are named '{ext.name}': {found[ext.name].target} and "
                f"{ext.target}.", "Rename one of them.")
        found[ext.name] = ext

    def extensions(self) -> dict[str, Extension]:
        """Every extension by name (registered objects without a module scan included)."""
        out = dict(self._found)
        for name, obj in self._items.items():
            out.setdefault(name, Extension(name, f"{obj.__module__}:{obj.__qualname__}"))
        return dict(sorted(out.items()))

    def get(self, name: str) -> T:
        ext = self._found.get(name)
        if name not in self._items and ext is not None:
            module, _, attr = ext.target.partition(":")
            obj = getattr(importlib.import_module(module), attr)
            if name not in self._items:  # a plugin's entry point, or a module not decorated
                self.add(name, obj)
        return super().get(name)

    def add_class(self, cls: T) -> T:
        """Register class ``cls`` under its own ``name`` (held to the contract like any other
        entry); returns it, for the kinds' class decorators."""
        self.add(getattr(cls, "name", "") if isinstance(cls, type) else "", cls)
        return cls

    def add(self, name: str, obj: T) -> None:
        if name in self._items and self._items[name] is obj:
            return  # a module imported twice under one name registers once
        if self.check is not None:
            self.check(name, obj)
        super().add(name, obj)

    def names(self) -> list[str]:
        return sorted({*self._found, *self._items})

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._found


def validate_options(model: type, options: dict, what: str, hint: str):
    """``options`` validated into the pydantic ``model``; a CardError naming every bad field."""

    try:
        return model.model_validate(options)
    except ValidationError as err:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise CardError(f"Options for {what} are invalid: {fields}.", hint) from None


# The written contract of an extension kind, checked at registration --------------------------

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")  # "chest-xray", "mnist-5k-rotated"
_MISSING = object()


class ContractError(BenchError, TypeError):
    """An extension that lacks what its registry's users rely on (refused when it registers)."""


@dataclass(frozen=True)
class Requirement:
    """One attribute an extension must have: ``check`` accepts its value, ``fix`` says what to
    write; ``own``: it must be set in the class body itself (not inherited), as ``name`` is."""

    attr: str
    check: Callable[[Any], bool]
    fix: str
    own: bool = False


def is_name(value: Any) -> bool:
    """A registry name: lowercase letters and digits in words joined by dashes."""
    return isinstance(value, str) and NAME_PATTERN.fullmatch(value) is not None


def is_flag(value: Any) -> bool:
    """A class attribute that must be True or False."""
    return isinstance(value, bool)


def subclass_of(base: type) -> Callable[[Any], bool]:
    """A check that an attribute is a class derived from ``base`` (an extension's Options)."""
    return lambda value: isinstance(value, type) and issubclass(value, base)


def takes(*params: str) -> Callable[[Any], bool]:
    """A check that a function (a method read off its class: ``self`` first) can be called
    with these positional arguments."""

    def check(fn: Any) -> bool:
        if not callable(fn):
            return False
        try:
            inspect.signature(fn).bind(*params)
        except (TypeError, ValueError):
            return False
        return True

    return check


def check_extension(cls: Any, kind: str, base: type, requirements: Sequence[Requirement],
                    guide: str, name: str | None = None) -> None:
    """Refuse ``cls`` as a ``kind`` unless it subclasses ``base``, implements every abstract
    method and meets every requirement: one :class:`ContractError` naming each problem and its
    fix, and ``guide`` (where the contract is written). With ``name`` (what it is offered as:
    the decorator's or the entry point's name) the class must carry that name."""
    where = f"{getattr(cls, '__module__', '?')}:{getattr(cls, '__qualname__', repr(cls))}"
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ContractError(f"{kind.capitalize()} {where} cannot be registered: it is not a "
                            f"subclass of {base.__module__}.{base.__qualname__}.",
                            f"Subclass {base.__qualname__}; {guide}.")
    problems, fixes = [], []
    for method in sorted(getattr(cls, "__abstractmethods__", ())):
        problems.append(f"{method}() is not implemented")
        fixes.append(f"implement {method}{_signature(getattr(cls, method))}")
    for req in requirements:
        value = vars(cls).get(req.attr, _MISSING) if req.own else getattr(cls, req.attr, _MISSING)
        if value is _MISSING:
            problems.append(f"`{req.attr}` is missing" + (" from the class body" if req.own else ""))
        elif not req.check(value):
            problems.append(f"`{req.attr}` = {value!r} is not valid")
        else:
            continue
        fixes.append(req.fix)
    if problems:
        raise ContractError(f"{kind.capitalize()} {where} cannot be registered: "
                            f"{'; '.join(problems)}.", f"Fix: {'; '.join(fixes)} ({guide}).")
    if name is not None and name != cls.name:
        raise ContractError(f"{kind.capitalize()} {where} is named '{cls.name}' but offered as "
                            f"'{name}'.", "Use one name for both (the entry point's and the "
                            "class's).")


def _signature(fn: Any) -> str:
    try:
        return str(inspect.signature(fn)).replace("'", "")
    except (TypeError, ValueError):
        return "(...)"
