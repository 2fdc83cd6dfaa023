"""The journey page in headless Chromium: a specialist records a job start, then an exit with a
goodbye text (through the outbox to the Twilio API mock); axe-core checks each state of the page."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from assistant.clock import FixedClock
from assistant.db.models import AuditLog, DueTask, JobStart, Message
from assistant.db.units import transaction
from assistant.runtime import Runtime

from ..dashboard.conftest import World, world  # noqa: F401  (fixture)
from .test_dashboard_browser import (  # noqa: F401  (fixtures)
    accessible,
    browser,
    db_url,
    page,
    rt,
    sign_in,
    site,
    twilio_api,
)


def _open_journey(tab: Any, name: str) -> Any:
    tab.goto("/")
    tab.get_by_role("link", name=name).click()
    tab.get_by_role("link", name="Referral, work and end of support").click()
    return tab.locator("main")


def test_job_start_form(page: Any, rt: Runtime, world: World, clock: FixedClock) -> None:  # noqa: F811
    sign_in(page, "sam@example.org")
    main = _open_journey(page, "Alex")
    accessible(page, "journey")
    assert "No job start recorded." in main.inner_text()

    page.get_by_label("Start date").fill("2026-11-30")
    page.get_by_label("Hours a week").fill("abc")
    page.get_by_role("button", name="Record job start").click()
    assert "hours a week as a number" in main.inner_text()
    accessible(page, "journey-job-start-error")

    page.get_by_label("Start date").fill("2026-11-30")
    page.get_by_label("Hours a week").fill("6.5")
    page.get_by_label("Employer (optional)").fill("Corner Shop")
    page.get_by_label("Sector").select_option("retail")
    page.get_by_role("button", name="Record job start").click()
    text = main.inner_text()
    assert "Job start recorded." in text
    assert "Corner Shop" in text and "No (under 7 hours)" in text and "Not asked yet" in text
    accessible(page, "journey-job-start")
    alex = world.participant("P001")
    assert (alex.cohort, alex.checkin_time, alex.allowed_from, alex.allowed_until) == (
        "in_work",
        "18:00",
        "17:30",
        "20:00",
    )
    with transaction(rt.engine) as db:
        job = db.exec(select(JobStart)).one()
        assert (job.hours_per_week, job.sector, job.recorded_by) == (6.5, "retail", "sam@example.org")
        checks = db.exec(select(DueTask).where(DueTask.kind == "sustainment")).all()
        assert sorted(t.payload["weeks"] for t in checks) == [13, 26]
        assert db.exec(select(AuditLog).where(AuditLog.action == "job_start")).one().participant_id == alex.id


def test_exit_form(page: Any, rt: Runtime, world: World, clock: FixedClock) -> None:  # noqa: F811
    sign_in(page, "sam@example.org")
    main = _open_journey(page, "Jordan")
    page.get_by_role("button", name="End support").click()  # no reason chosen: the browser asks for one
    assert "Support ended." not in main.inner_text()

    page.get_by_label("Reason").select_option("unable_to_contact")
    page.get_by_label("Send a short goodbye text in my name").check()
    page.get_by_role("button", name="End support").click()
    text = main.inner_text()
    assert "Support ended. Automated texts have stopped. The goodbye text is on its way." in text
    assert "Unable to contact" in text and "sam@example.org" in text
    assert page.get_by_role("button", name="End support").count() == 0
    accessible(page, "journey-exit")
    jordan = world.participant("P002")
    assert jordan.exit_reason == "unable_to_contact" and jordan.support_ends_on == clock.now().date()
    with transaction(rt.engine) as db:
        goodbye = db.exec(select(Message).where(Message.message_key == "journey/goodbye")).one()
        assert goodbye.participant_id == jordan.id and goodbye.status == "sent", goodbye.error_message
        pending = db.exec(select(DueTask).where(DueTask.participant_id == jordan.id, DueTask.status == "pending")).all()
        assert pending == []
