"""Suite files: the built-in suites (``builtin/*.yaml``) or a user's YAML file, with ``--set``
overrides and ``--sources``/``--targets`` selections applied, validated into a
:class:`~benchmark.suite.spec.Suite`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from benchmark.suite.spec import Suite, validation_errors
from registry.errors import CardError, UnknownNameError
from registry.names import unknown_name_message

SUITES_DIR = Path(__file__).parent / "builtin"
DEFAULT_SUITE = "mnist"  # what `bench run` runs when no --suite is given


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def load_suite_dict(name_or_path: str) -> tuple[dict[str, Any], str]:
    """The raw suite mapping and where it came from (a built-in name or a YAML path)."""
    path = Path(name_or_path).expanduser()
    if path.suffix in (".yaml", ".yml") or len(path.parts) > 1:  # a path, not a built-in name
        if not path.is_file():
            raise CardError(f"Suite file {path} does not exist"
                            f"{' (it is a folder)' if path.is_dir() else ''}.",
                            f"Check the path, or run a built-in suite: {', '.join(suite_names())}"
                            " (`--suite NAME`).")
    else:
        path = SUITES_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise UnknownNameError(unknown_name_message("suite", name_or_path, suite_names()),
                                   f"Built-in suites: {', '.join(suite_names())}; "
                                   "or give the path of a suite YAML file.")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise CardError(f"Suite file {path} is not valid YAML: {err}.", "Fix its syntax.") from None
    if not isinstance(data, dict):
        raise CardError(f"Suite file {path} must hold a mapping.", "See benchmark/suites/.")
    return data, str(path)


def apply_override(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in ``data``; list items are addressed by their ``name``
    (``sources.stl10.pretrain.epochs``)."""
    keys = dotted.split(".")
    node: Any = data
    for i, key in enumerate(keys[:-1]):
        if isinstance(node, list):
            match = [item for item in node if isinstance(item, dict) and item.get("name") == key]
            if not match:
                names = [item.get("name") for item in node if isinstance(item, dict)]
                raise CardError(f"--set {dotted}: no list item named '{key}' (have {names}).",
                                "Use the name of a source or target of the suite.")
            node = match[0]
        else:
            node = node.setdefault(key, {})
            if not isinstance(node, (dict, list)):
                raise CardError(f"--set {dotted}: '{'.'.join(keys[:i + 1])}' is not a section.",
                                "Check the key path against the suite file.")
    node[keys[-1]] = value


def select(data: dict[str, Any], field: str, names: list[str] | None, where: str = "the suite"
           ) -> None:
    """Keep only the named sources/targets (in the given order); unknown names are errors
    that name the suite (its file, when it has one)."""
    if not names:
        return
    items = {item["name"]: item for item in data.get(field, [])}
    missing = [name for name in names if name not in items]
    if missing:
        message = unknown_name_message(field[:-1], missing[0], sorted(items))
        hint = f"The {field} of {where}: {', '.join(items)}."
        elsewhere = suites_holding(field, names)
        if elsewhere:
            message = (f"{message[:-1]}: {where} has no {field[:-1]} "
                       f"{', '.join(repr(n) for n in missing)}.")
            hint = (f"{hint} Built-in suite(s) holding every one of them: "
                    f"{', '.join(elsewhere)}; run `{suggested_command(elsewhere[0], field, names)}`.")
        raise UnknownNameError(message, hint)
    data[field] = [items[name] for name in names]


def suites_holding(field: str, names: list[str]) -> list[str]:
    """The built-in suites whose ``field`` (sources or targets) holds every one of ``names``."""
    found = []
    for suite in suite_names():
        data, _ = load_suite_dict(suite)
        have = {item.get("name") for item in data.get(field, []) if isinstance(item, dict)}
        if set(names) <= have:
            found.append(suite)
    return found


def suggested_command(suite: str, field: str, names: list[str]) -> str:
    """The command that runs ``names`` in the built-in ``suite``, with the flag its
    weight-only sources need (``--imagenet-weights PATH``)."""
    data, _ = load_suite_dict(suite)
    command = f"bench run --suite {suite} --{field} {','.join(names)}"
    asks = [s["name"] for s in data.get("sources", [])
            if s.get("weights") == "ask" and (field != "sources" or s["name"] in names)]
    if "imagenet" in asks:
        command += " --imagenet-weights PATH"
    for other in (a for a in asks if a != "imagenet"):
        command += f" --set sources.{other}.weights=file:PATH"
    return command


def resolve_suite(name_or_path: str, overrides: list[tuple[str, Any]] = (),
                  sources: list[str] | None = None, targets: list[str] | None = None) -> Suite:
    """Load a suite, apply ``--set`` overrides and source/target selection, validate."""
    data, where = load_suite_dict(name_or_path)
    for dotted, value in overrides:
        apply_override(data, dotted, value)
    select(data, "sources", sources, where)
    select(data, "targets", targets, where)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as err:
        raise CardError(f"Suite {where} is invalid: {validation_errors(err)}.",
                        "Fix the suite file or the --set flags.") from None
    for s in suite.sources:
        suite.pretrain_settings(s, f"suite file {where}")
    for t in suite.targets:
        suite.finetune_settings(t, f"suite file {where}")
    return suite

