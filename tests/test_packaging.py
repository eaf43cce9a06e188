"""Dependencies: ranges in pyproject.toml (installable beside other tools), the exact set in
constraints.txt (what CI installs), and the two agree."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return [Requirement(r) for r in reqs]


def test_pyproject_declares_ranges_not_exact_pins():
    pinned = [str(r) for r in requirements() if any(s.operator == "==" for s in r.specifier)]
    assert not pinned, f"exact pins belong in constraints.txt: {pinned}"


def test_constraints_pin_every_requirement_inside_its_range():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt line is not NAME==VERSION: {line}"
            pins[canonicalize_name(name)] = version.strip()
    for req in requirements():
        version = pins.get(canonicalize_name(req.name))
        assert version is not None, f"{req.name} has no exact version in constraints.txt"
        assert req.specifier.contains(version, prereleases=True), f"{req.name}=={version} {req}"


def test_ci_and_the_readme_install_the_constraints():
    readme = (ROOT / "README.md").read_text()
    assert readme.count("-c constraints.txt") >= 2
    assert "ruff check ." in (ROOT / ".ci" / "run").read_text()
