"""The private questionnaire page in headless Chromium, on a 360-pixel phone screen, as a
participant uses it from the link in their text. axe-core checks every page.

The app runs on a real HTTP server on loopback; texts go through the real outbox to the console
transport; time is the injected clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from assistant.clock import FixedClock
from assistant.db.models import Flag, Message
from assistant.db.units import transaction
from assistant.runtime import Runtime

from ..test_questionnaire_link import answers, measures, sent_link
from .test_dashboard_browser import accessible, browser, db_url, serve  # noqa: F401  (fixtures)

PHONE = {"width": 360, "height": 740}
ANSWERS = ["Not at all", "Several days", "More than half the days", "Nearly every day"]


@pytest.fixture
def site(rt: Runtime) -> Iterator[str]:
    yield from serve(rt)


@pytest.fixture
def phone_page(browser: Any, site: str) -> Iterator[Any]:  # noqa: F811
    context = browser.new_context(base_url=site, viewport=PHONE, is_mobile=True, has_touch=True)
    yield context.new_page()
    context.close()


@pytest.fixture
def link(rt: Runtime, clock: FixedClock, caseload_file: Path) -> str:
    """A PHQ-9 and GAD-7 sitting by link for Alex: the path in the text they were sent."""
    return sent_link(rt, caseload_file, clock, ["phq9", "gad7"])[1]


def _answer(page: Any, label: str) -> None:
    page.get_by_role("radio", name=label, exact=True).check()
    page.get_by_role("button", name="Save and continue").click()


def _heading(page: Any) -> str:
    return str(page.get_by_role("heading", level=1).inner_text())


def _fits(page: Any) -> None:
    """Nothing wider than a 360-pixel screen: no sideways scrolling."""
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_whole_sitting_on_a_phone(phone_page: Any, rt: Runtime, link: str) -> None:
    page = phone_page
    page.goto(link)
    accessible(page, "questionnaire-item-phone")
    _fits(page)
    assert _heading(page).endswith("Little interest or pleasure in doing things")
    assert "Question 1 of 16" in _heading(page)
    # The question is the radio group's name, and the stem describes it, for a screen reader.
    group = page.get_by_role("group", name=re.compile("Little interest or pleasure"))
    assert group.get_attribute("aria-describedby") == "stem"
    assert "Over the last 2 weeks" in page.locator("#stem").inner_text()

    page.get_by_role("button", name="Save and continue").click()  # no answer chosen
    accessible(page, "questionnaire-item-error")
    assert "Choose an answer, or skip this question" in page.get_by_role("alert").inner_text()
    assert answers(rt) == []

    for label in ["Several days", "More than half the days"] + ["Not at all"] * 7:
        _answer(page, label)
    assert "Question 10 of 16" in _heading(page)
    assert _heading(page).endswith("Feeling nervous, anxious or on edge")
    page.get_by_role("button", name="Skip this question").click()
    for label in ["Nearly every day"] * 6:
        _answer(page, label)
    assert _heading(page) == "Thank you"
    accessible(page, "questionnaire-done")
    assert "Sam will look at your answers" in page.locator("main").inner_text()
    assert measures(rt) == [("phq9", "complete", 3), ("gad7", "partial", None)]
    assert ("gad7_1", "skipped") in answers(rt)

    page.goto(link)  # used: nothing shows
    assert _heading(page) == "This link is not available"
    assert "Question" not in page.locator("main").inner_text()
    accessible(page, "questionnaire-gone")


def test_a_sitting_left_part_way_carries_on_where_it_stopped(
    browser: Any,  # noqa: F811
    site: str,
    rt: Runtime,
    link: str,
) -> None:
    first = browser.new_context(base_url=site, viewport=PHONE)
    page = first.new_page()
    page.goto(link)
    for label in ["Several days"] * 3:
        _answer(page, label)
    first.close()  # they put the phone down
    later = browser.new_context(base_url=site, viewport=PHONE)
    page = later.new_page()
    page.goto(link)
    assert "Question 4 of 16" in _heading(page)
    assert _heading(page).endswith("Feeling tired or having little energy")
    assert answers(rt) == [("phq9_1", "1"), ("phq9_2", "1"), ("phq9_3", "1")]
    later.close()


def test_item_9_signposts_on_the_page_and_by_text_and_raises_an_urgent_flag(
    phone_page: Any, rt: Runtime, link: str
) -> None:
    page = phone_page
    page.goto(link)
    for _ in range(8):
        _answer(page, "Not at all")
    assert _heading(page).endswith("Thoughts that you would be better off dead or of hurting yourself in some way")
    _answer(page, "Several days")
    assert _heading(page) == "If you need help now"
    accessible(page, "questionnaire-help")
    _fits(page)
    main = page.locator("main").inner_text()
    for must in ("999", "NHS 111", "Samaritans free on 116 123", "SHOUT to 85258", "not watched around the clock"):
        assert must in main, must
    assert "We have also sent this to your phone by text" in main
    assert "Answers on this page are not watched" in main and "Texts to this number" not in main
    with transaction(rt.engine) as db:
        crisis = db.exec(select(Message).where(Message.message_key == "common/crisis")).one()
        assert crisis.status == "sent" and crisis.phone == "+447700900101"
        flag = db.exec(select(Flag).where(Flag.kind == "crisis")).one()
        assert (flag.severity, flag.status) == ("urgent", "open")
    page.goto(link)
    assert _heading(page) == "This link is not available"


def test_an_expired_link_shows_nothing(phone_page: Any, rt: Runtime, clock: FixedClock, link: str) -> None:
    page = phone_page
    page.goto(link)
    _answer(page, "Several days")
    clock.set(clock.now() + timedelta(hours=72))
    page.goto(link)
    assert _heading(page) == "This link is not available"
    assert "Little interest" not in page.content()
    assert page.get_by_role("radio").count() == 0


def test_a_tampered_link_shows_nothing(phone_page: Any, rt: Runtime, link: str) -> None:
    page = phone_page
    tampered = link[:-2] + ("xy" if not link.endswith("xy") else "yz")
    response = page.goto(tampered)
    assert response.status == 404
    assert _heading(page) == "This link is not available"
    assert page.get_by_role("radio").count() == 0
    page.goto(link)  # the real one still works
    assert "Question 1 of 16" in _heading(page)
