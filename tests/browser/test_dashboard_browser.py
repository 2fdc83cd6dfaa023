"""The dashboard in headless Chromium (Playwright, Debian's /usr/bin/chromium), as a specialist uses it.

The app runs on a real HTTP server on loopback; outbound texts go through the real
outbox to the Twilio API mock; axe-core checks every page. Screenshots are saved to
test-artifacts/screenshots/ for a reviewer to look at (not committed).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from werkzeug.serving import make_server

from assistant.app import create_app
from assistant.clock import FixedClock
from assistant.config import ROOT
from assistant.conversation.inbound import receive_sms
from assistant.db.models import (
    Appointment,
    AuditLog,
    ContactLog,
    DueTask,
    Flag,
    Message,
    Participant,
    Service,
    StaffTask,
)
from assistant.db.units import transaction
from assistant.runtime import Runtime, build_runtime
from assistant.transports import TwilioTransport

from ..conftest import IN_CI, test_settings
from ..dashboard.conftest import PASSWORD, World, world  # noqa: F401  (fixture)
from ..twilio_mock.server import TwilioMockUnavailable, start_twilio_mock

CHROMIUM = os.environ.get("ASSISTANT_CHROMIUM", "/usr/bin/chromium")
AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "test-artifacts" / "screenshots"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _need(thing: str, ok: bool) -> None:
    if not ok:
        if IN_CI:
            pytest.fail(f"{thing} is required under CI")
        pytest.skip(f"{thing} is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _need(f"Chromium at {CHROMIUM}", shutil.which(CHROMIUM) is not None)
    _need("axe-core (npm ci --prefix tests/browser)", AXE.exists())
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def twilio_api() -> Iterator[str]:
    try:
        mock = start_twilio_mock()
    except TwilioMockUnavailable as exc:
        _need(f"the Twilio API mock ({exc})", False)
        raise
    yield mock.url
    mock.stop()


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "assistant.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def rt(db_url: str, tmp_path: Path, clock: FixedClock, twilio_api: str) -> Iterator[Runtime]:
    settings = replace(
        test_settings(db_url, tmp_path),
        sms_transport="twilio",
        twilio_api_url=twilio_api,
        twilio_account_sid="AC" + "1" * 32,
        twilio_from_number="+447700900000",
    )
    runtime = build_runtime(settings, clock=clock, transport=TwilioTransport(settings))
    yield runtime
    runtime.engine.dispose()


def serve(rt: Runtime) -> Iterator[str]:
    """The app on a real HTTP server on a free loopback port: yields its address, then stops it."""
    server = make_server("127.0.0.1", 0, create_app(runtime=rt), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def site(rt: Runtime, world: World) -> Iterator[str]:  # noqa: F811
    yield from serve(rt)


@pytest.fixture
def page(browser: Any, site: str) -> Iterator[Any]:
    context = browser.new_context(base_url=site, viewport={"width": 1200, "height": 900}, bypass_csp=False)
    tab = context.new_page()
    yield tab
    context.close()


def accessible(page: Any, name: str) -> None:
    """axe-core finds no serious or critical problems; a screenshot is kept for review."""
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    serious = [(v["id"], v["help"]) for v in result["violations"] if v["impact"] in ("serious", "critical")]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert serious == [], f"{name}: {serious}"


def sign_in(page: Any, email: str) -> None:
    page.goto("/login")
    accessible(page, "sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


def test_specialist_day(page: Any, rt: Runtime, world: World, clock: FixedClock) -> None:  # noqa: F811
    receive_sms(rt, sid="SMcrisis", sender="+447700900101", body="I can't go on", now=clock.now())
    sign_in(page, "sam@example.org")
    accessible(page, "caseload")
    body = page.locator("main").inner_text()
    assert "Alex" in body and "Jordan" in body and "Priya" not in body and "Morgan" not in body
    assert "URGENT: crisis" in body

    page.get_by_role("link", name="Flags").click()
    accessible(page, "flags")
    page.get_by_role("button", name="Acknowledge").first.click()
    assert "Flag acknowledged." in page.locator("main").inner_text()
    with transaction(rt.engine) as db:
        assert db.exec(select(Flag).where(Flag.kind == "crisis")).one().status == "acknowledged"

    page.goto("/")
    page.get_by_role("link", name="Alex").click()
    accessible(page, "participant")
    main = page.locator("main")
    assert "I can't go on" in main.inner_text()

    # An appointment: add, move, then (after it) mark it missed: the follow-up is scheduled.
    page.get_by_text("Add an appointment").click()
    page.get_by_label("When (local time)").fill("2026-11-27T14:00")
    page.get_by_role("button", name="Add appointment").click()
    assert "Appointment added; 2 reminder texts planned." in main.inner_text()
    page.get_by_label("New time").fill("2026-11-30T09:30")
    page.get_by_role("button", name="Move").click()
    assert "Appointment moved; 2 reminder texts planned." in main.inner_text()
    with transaction(rt.engine) as db:
        appointment = db.exec(select(Appointment)).one()
        assert appointment.starts_at == datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
    clock.set(datetime(2026, 11, 30, 11, 0, tzinfo=UTC))
    # Days later the earlier sign-in has ended: the page asks to sign in again.
    page.reload()
    assert "/login" in page.url
    sign_in(page, "sam@example.org")
    page.get_by_role("link", name="Alex").click()
    page.get_by_label("Outcome").select_option("dna")
    page.get_by_role("button", name="Record outcome").click()
    assert "follow-up has started" in main.inner_text()
    with transaction(rt.engine) as db:
        assert [t.status for t in db.exec(select(DueTask).where(DueTask.kind == "dna_attempt")).all()] == ["pending"]

    # A one-off text: preview with its checks, then through the outbox to the Twilio API mock.
    page.get_by_label("Message (you will see a preview", exact=False).fill("Hi Alex, I'll ring you at 3. Sam")
    page.get_by_role("button", name="Preview").click()
    accessible(page, "message-preview")
    assert "1 text segment" in page.locator("main").inner_text()
    page.get_by_role("button", name="Send text").click()
    assert "Hi Alex, I'll ring you at 3. Sam" in page.locator("#thread ~ ol").inner_text()
    with transaction(rt.engine) as db:
        sent = db.exec(select(Message).where(Message.message_key == "staff/one_off")).one()
    assert sent.status == "sent" and (sent.provider_sid or "").startswith("SM"), (sent.error_code, sent.error_message)

    # Pause and resume.
    page.get_by_role("button", name="Pause automated texts").click()
    assert "paused" in page.locator("main").inner_text()
    assert world.participant("P001").paused
    page.get_by_role("button", name="Resume automated texts").click()
    assert not world.participant("P001").paused

    # Transfer to Chris: Alex leaves Sam's caseload, history kept.
    page.get_by_label("New specialist").select_option(label="Chris Lee")
    page.get_by_role("button", name="Transfer").click()
    assert "Transferred to Chris Lee" in page.locator("main").inner_text()
    assert ">Alex<" not in page.content()


def test_team_lead_and_admin_pages_are_accessible(
    browser: Any,
    site: str,
    rt: Runtime,
    world: World,  # noqa: F811
    clock: FixedClock,
) -> None:
    receive_sms(rt, sid="SMunknown1", sender="+447700900555", body="I can't go on", now=clock.now())
    receive_sms(rt, sid="SMunknown2", sender="+447700900556", body="Hi, is this Sam?", now=clock.now())
    context = browser.new_context(base_url=site, viewport={"width": 390, "height": 844})  # a phone screen
    page = context.new_page()
    sign_in(page, "admin@example.org")
    accessible(page, "admin-caseload-phone")
    page.goto("/team")
    accessible(page, "team")
    assert "Caseloads against the cap" in page.locator("main").inner_text()
    page.goto("/audit")
    accessible(page, "audit")
    page.goto("/sessions")
    accessible(page, "sessions-admin-phone")
    page.goto("/unknown-numbers")
    accessible(page, "unknown-numbers")
    assert "Reads like a crisis: signposting sent" in page.locator("main").inner_text()
    context.close()


def test_a_specialist_ends_a_session_in_another_browser(browser: Any, site: str, world: World) -> None:  # noqa: F811
    here = browser.new_context(base_url=site, viewport={"width": 1200, "height": 900}).new_page()
    there_context = browser.new_context(base_url=site, viewport={"width": 1200, "height": 900})
    there = there_context.new_page()
    sign_in(there, "sam@example.org")
    sign_in(here, "sam@example.org")
    here.get_by_role("link", name="Sessions").click()
    accessible(here, "sessions")
    assert "This browser" in here.locator("main").inner_text()
    here.get_by_role("button", name="End this session").click()
    assert "That session has ended." in here.locator("main").inner_text()
    there.goto("/")
    assert "/login" in there.url
    here.goto("/")
    assert "/login" not in here.url
    here.context.close()
    there_context.close()


def test_admin_links_a_text_from_an_unknown_number(page: Any, rt: Runtime, world: World, clock: FixedClock) -> None:  # noqa: F811
    receive_sms(
        rt, sid="SMunknown", sender="+447700900555", body="its Priya, new phone. I can't go on", now=clock.now()
    )
    sign_in(page, "admin@example.org")
    page.get_by_role("link", name="Unknown numbers").click()
    accessible(page, "unknown-numbers-crisis")
    page.get_by_label("Participant ID on your service's caseload").fill("P003")
    page.get_by_role("button", name="Link to participant").click()
    main = page.locator("main")
    assert "moved to Priya (P003)'s record" in main.inner_text()
    assert "No texts from unknown numbers waiting." in main.inner_text()
    accessible(page, "unknown-numbers-empty")
    with transaction(rt.engine) as db:
        flag = db.exec(select(Flag).where(Flag.kind == "crisis")).one()
        assert flag.participant_id == world.ids["P003"] and flag.severity == "urgent"


def test_admin_changes_a_setting_and_imports_a_file_with_an_error(
    page: Any,
    rt: Runtime,
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    sign_in(page, "admin@example.org")
    main = page.locator("main")

    # A setting: a mistake first (shown beside its field, nothing saved), then the fix.
    page.get_by_role("link", name="Settings").click()
    accessible(page, "settings")
    page.get_by_label("Caseload cap per specialist").fill("lots")
    page.get_by_role("button", name="Save settings").click()
    accessible(page, "settings-error")
    assert "There is a problem: nothing was saved" in main.inner_text()
    assert "give a whole number" in page.locator("#caseload_cap-error").inner_text()
    page.get_by_label("Caseload cap per specialist").fill("24")
    page.get_by_role("button", name="Save settings").click()
    assert "Settings saved: Caseload cap per specialist 20 to 24." in main.inner_text()
    with transaction(rt.engine) as db:
        north = db.exec(select(Service).where(Service.slug == "north")).one()
        assert north.settings["caseload_cap"] == 24
        assert db.exec(select(AuditLog).where(AuditLog.action == "service_settings")).one().user_email == (
            "admin@example.org"
        )

    # A caseload file with a bad row: refused whole, every problem listed by line and column.
    page.get_by_role("link", name="Imports").click()
    accessible(page, "imports")
    bad = tmp_path / "new-referrals.csv"
    bad.write_text(
        "participant_id,first_name,phone,specialist_email\n"
        "P010,Dana,07700900110,sam@example.org\n"
        "P011,Eli,12345,sam@example.org\n"
    )
    page.get_by_label("Caseload (participants)").check()
    page.get_by_label("CSV file").set_input_files(str(bad))
    page.get_by_role("button", name="Import").click()
    accessible(page, "import-errors")
    assert "new-referrals.csv was not imported: nothing was changed" in main.inner_text()
    report = page.get_by_role("table").inner_text()
    assert "3\tphone\t" in report
    with transaction(rt.engine) as db:
        assert db.exec(select(Participant).where(Participant.external_id == "P010")).first() is None
    page.get_by_role("link", name="All imports").click()
    assert "Not imported" in main.inner_text()


def test_today_page_task_done_by_keyboard(page: Any, rt: Runtime, world: World, clock: FixedClock) -> None:  # noqa: F811
    """The Today list, most urgent first; a call task done with the keyboard alone logs the contact."""
    with transaction(rt.engine) as db:
        db.add(
            StaffTask(
                participant_id=world.ids["P001"],
                kind="call",
                reason="Missed appointment on Fri 27 Nov, no reply yet: phone them (follow-up step 2 of 5)",
                source="dna_followup",
                payload={},
                due_at=clock.now(),
                created_at=clock.now(),
            )
        )
    sign_in(page, "sam@example.org")
    page.get_by_role("link", name="Today").click()
    page.wait_for_url("**/today")
    accessible(page, "today")
    main = page.locator("main")
    items = main.locator("ol.app-today > li")
    assert items.count() == 2
    assert "Call" in items.nth(0).inner_text() and "Alex" in items.nth(0).inner_text()
    assert "Not contacted this week" in items.nth(1).inner_text() and "Jordan" in items.nth(1).inner_text()

    # Keyboard only: to the first item's outcome, choose "Could not reach them", a note, then the button.
    page.get_by_label("Outcome").first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Tab")
    page.keyboard.type("rang twice, no answer")
    page.keyboard.press("Tab")
    with page.expect_navigation():  # the page the form leads to, not the one already loaded
        page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert "Done: contact with Alex logged (could not reach them)" in main.inner_text()
    accessible(page, "today-after")
    assert main.locator("ol.app-today > li").count() == 1
    with transaction(rt.engine) as db:
        task = db.exec(select(StaffTask)).one()
        log = db.exec(select(ContactLog)).one()
    assert task.status == "done" and task.contact_log_id == log.id
    assert (log.channel, log.outcome, log.logged_by) == ("phone", "not_reached", "sam@example.org")
    assert "rang twice, no answer" in log.note
