"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright
(its Python package, pointed at that browser; Playwright's own browser download is never used).

Without Chromium the tests are skipped, unless BENCH_REQUIRE_BROWSER=1 (CI sets it, after
installing Debian's chromium): then they fail. Screenshots go to BENCH_TEST_ARTIFACTS
(default ``test-artifacts/`` in the repository)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Flags the machine needs: root (no sandbox), no GPU, and no background connections that a
# closed network refuses (they show up as console errors).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def chromium_path() -> str:
    """Debian's chromium, or skip (fail when BENCH_REQUIRE_BROWSER=1)."""
    path = os.environ.get("BENCH_CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")
    if path is None:
        message = ("no chromium on PATH: install Debian's `chromium` package "
                   "(apt-get install chromium) or set BENCH_CHROMIUM")
        if os.environ.get("BENCH_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def artifacts_dir() -> Path:
    root = Path(os.environ.get("BENCH_TEST_ARTIFACTS",
                               Path(__file__).resolve().parents[1] / "test-artifacts"))
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass
class PageLog:
    """What the page reported: console errors, uncaught exceptions, failed requests."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on("console", lambda m: self.errors.append(f"console: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.errors.append(
            f"request failed: {r.url} {r.failure}"))


@contextmanager
def browser_page(width: int = 1400, height: int = 1000) -> Iterator[tuple[object, PageLog]]:
    """A fresh page in headless Chromium and the log of its errors."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            log = PageLog()
            log.attach(page)
            yield page, log
        finally:
            browser.close()
