"""Reading the docs' markdown in tests: a section under a heading and the first table in it."""

from __future__ import annotations


def section(text: str, heading: str) -> str:
    """The text under the markdown heading ``heading`` up to the next heading of that level."""
    start = text.index(heading)
    level = heading.split(" ")[0]
    end = text.find(f"\n{level} ", start + len(heading))
    return text[start:] if end < 0 else text[start:end]


def first_table(text: str) -> list[list[str]]:
    """The body rows of the first markdown table in ``text`` (header and rule left out), each
    as its list of stripped cells."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [[c.strip() for c in row.strip("|").split("|")] for row in lines[start + 2:end]]
