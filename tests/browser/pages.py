"""Helpers for the page-by-page browser tests: axe-core on a page, console errors, screenshots, keyboard."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..dashboard.conftest import PASSWORD
from .test_dashboard_browser import AXE


def shots_dir(tmp_path_factory: Any) -> Path:
    """Screenshots go where ASSISTANT_SCREENSHOTS says, or under pytest's temporary directory."""
    chosen = os.environ.get("ASSISTANT_SCREENSHOTS")
    path = Path(chosen) if chosen else tmp_path_factory.getbasetemp() / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


class Watch:
    """Every console error and failed request on a page, from the moment it is attached."""

    def __init__(self, page: Any) -> None:
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _failed(self, request: Any) -> None:
        # A request the browser dropped because the page moved on is not a fault; a blocked one is.
        if "ERR_ABORTED" not in (request.failure or ""):
            self.problems.append(f"request failed: {request.url} ({request.failure})")

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def _response(self, response: Any) -> None:
        if response.status >= 400 and not response.url.endswith(("/login", "/settings")):
            self.problems.append(f"{response.status} {response.url}")


def check_page(page: Any, name: str, shots: Path) -> None:
    """axe-core finds nothing (any impact) and the page is kept as a screenshot."""
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    found = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]]
    assert found == [], f"{name}: {found}"


def no_sideways_scroll(page: Any, name: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.evaluate("window.innerWidth")
    if width > viewport:
        wide = page.evaluate(
            """(limit) => [...document.querySelectorAll('body *')]
              .filter(e => e.getBoundingClientRect().right > limit + 1 && !e.closest('.app-table-wrap'))
              .slice(0, 6).map(e => e.tagName.toLowerCase() + '.' + e.className)""",
            viewport,
        )
        raise AssertionError(f"{name}: {width}px wide in a {viewport}px window, by {wide}")


def tab_to(page: Any, pattern: str, limit: int = 150) -> None:
    """Press Tab until the focused element's text, label or value matches; fail if it never does."""
    wanted = re.compile(pattern)
    page.wait_for_load_state()
    for _ in range(limit):
        page.keyboard.press("Tab")
        found = page.evaluate(
            """() => { const e = document.activeElement; if (!e) return '';
            const label = e.labels && e.labels.length ? e.labels[0].innerText : '';
            return [e.innerText || '', e.getAttribute('aria-label') || '', label, e.value || ''].join(' | '); }"""
        )
        if wanted.search(found):
            return
    raise AssertionError(f"Tab never reached {pattern!r}")


def enter(page: Any) -> None:
    """Press Enter on a link or a submit button and wait for the page it leads to."""
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_load_state()


def sign_in_by_keyboard(page: Any, email: str) -> None:
    page.goto("/login")
    tab_to(page, "Email address")
    page.keyboard.type(email)
    tab_to(page, "Password")
    page.keyboard.type(PASSWORD)
    enter(page)
    page.wait_for_url("**/")
