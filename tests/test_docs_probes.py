"""The docs' lists of probes and estimators agree with the probe registry.

docs/probes.md names the probes and estimators in several tables written by hand (each row
carries a description no registry could write), and README.md lists the estimators in its
summary. These tests fail, naming the difference, when a probe or an estimator is added,
removed or renamed without the docs following.
"""

from __future__ import annotations

import re
from pathlib import Path

import markdown_doc as md
from probes.base import PROBES

ROOT = Path(__file__).resolve().parents[1]
PROBES_MD = ROOT / "docs" / "probes.md"
NAME = re.compile(r"`([^`]+)`")


def _built_in() -> dict[str, str]:
    """name -> module of the probes this repository ships (plugins installed beside it left
    out)."""
    return {n: e.module for n, e in PROBES.extensions().items() if e.module.startswith("probes.")}


def _estimators() -> set[str]:
    return {n for n, m in _built_in().items() if m.startswith("probes.estimators.")}


def _first_column(section: str) -> list[set[str]]:
    """The backticked names of the first cell of each body row of the section's first table."""
    return [set(NAME.findall(row[0])) for row in md.first_table(section)]


def _differ(listed: set[str], registered: set[str], where: str) -> str:
    return (f"{where}: missing {sorted(registered - listed)}, "
            f"not registered {sorted(listed - registered)}")


def test_the_probe_table_names_every_probe_once():
    cells = _first_column(md.section(PROBES_MD.read_text(), "## The probes"))
    listed = [n for cell in cells for n in cell]
    assert len(listed) == len(set(listed)), f"a probe listed twice: {sorted(listed)}"
    assert set(listed) == set(_built_in()), _differ(set(listed), set(_built_in()),
                                                    "docs/probes.md 'The probes'")


def test_the_estimator_rows_name_exactly_the_estimators():
    text = PROBES_MD.read_text()
    grouped = [c for c in _first_column(md.section(text, "## The probes")) if len(c) > 1]
    assert grouped == [_estimators()], _differ(set().union(*grouped), _estimators(),
                                               "the estimators' row of 'The probes'")
    table = set().union(*_first_column(md.section(text, "### The transferability estimators")))
    assert table == _estimators(), _differ(table, _estimators(), "the estimator table")
    options = [c for c in _first_column(md.section(text, "## Options per probe")) if len(c) > 1]
    assert options == [_estimators()], "the estimators' row of 'Options per probe'"


def test_the_options_table_has_a_row_for_every_probe():
    cells = _first_column(md.section(PROBES_MD.read_text(), "## Options per probe"))
    listed = set().union(*cells)
    assert listed == set(_built_in()), _differ(listed, set(_built_in()), "'Options per probe'")


def test_the_estimator_modules_named_in_the_docs_are_the_files():
    text = PROBES_MD.read_text()
    sentence = text[text.index("Each estimator is one module of `probes/estimators/`"):]
    sentence = sentence[:sentence.index(")")]
    named = {m.removesuffix(".py") for m in NAME.findall(sentence) if m.endswith(".py")}
    files = {p.stem for p in (ROOT / "probes" / "estimators").glob("*.py")} - {"__init__", "base"}
    modules = {_built_in()[n].rsplit(".", 1)[1] for n in _estimators()}
    assert named == files == modules, f"docs {sorted(named)}, files {sorted(files)}, " \
                                      f"registry {sorted(modules)}"


def _key(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


def test_readme_lists_every_estimator():
    """README's summary names each estimator by the name its summary opens with (LogME,
    H-score, k-NN, ...), in one parenthesised list with nothing else in it."""
    text = ROOT.joinpath("README.md").read_text()
    listed = re.search(r"transferability estimators \(([^)]*)\)", text.replace("\n", " "))
    assert listed, "README.md no longer lists the transferability estimators"
    items = {_key(item.split()[0]) for item in listed.group(1).split(",")}
    items = {i.removeprefix("and") for i in items}
    shown = {_key(PROBES.extensions()[n].summary.split(" (")[0].split(":")[0])
             for n in _estimators()}
    assert items == shown, _differ(items, shown, "README.md's estimator list")


def _option_rows() -> dict[str, str]:
    """probe name -> the text of its row in 'Options per probe' (a row that reads "as the
    estimators" includes the estimators' row)."""
    section = md.section(PROBES_MD.read_text(), "## Options per probe")
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    by_name = {n: row for row in rows for n in NAME.findall(row.split("|")[1])}
    shared = by_name[min(_estimators())]
    return {n: row + (shared if "as the estimators" in row else "") for n, row in by_name.items()}


def test_the_options_table_names_every_declared_option():
    """Each option a probe declares (its pydantic Options) is named in its row."""
    rows = _option_rows()
    missing = {n: [f for f in PROBES.get(n).Options.model_fields if f"`{f}`" not in rows[n]]
               for n in _built_in()}
    missing = {n: fields for n, fields in missing.items() if fields}
    assert not missing, f"options declared but not in docs/probes.md 'Options per probe': {missing}"
