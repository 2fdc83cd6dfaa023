# ruff: noqa: F811  (pytest fixtures imported from the browser tests, used as arguments)
"""Every page, in every role, at desktop and 360 px: axe-core finds nothing, nothing fails in the console,
nothing scrolls sideways; the main tasks by keyboard alone; what each page says, in words.

Screenshots of every page at both widths are kept under pytest's temporary directory (or
$ASSISTANT_SCREENSHOTS) for a reviewer to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from assistant.clock import FixedClock
from assistant.contact import campaigns as camp
from assistant.conversation.inbound import receive_sms
from assistant.db.models import AuditLog, Campaign, CampaignRecipient, Flag, Message, Service
from assistant.db.units import transaction
from assistant.runtime import Runtime

from ..dashboard.conftest import World, world  # noqa: F401  (fixture)
from .pages import Watch, check_page, enter, no_sideways_scroll, shots_dir, sign_in_by_keyboard, tab_to
from .test_dashboard_browser import browser, db_url, page, rt, sign_in, site, twilio_api  # noqa: F401  (fixtures)

DESKTOP = {"width": 1200, "height": 900}
PHONE = {"width": 360, "height": 740}
WHEN = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec), \d\d:\d\d")


@pytest.fixture
def shots(tmp_path_factory: Any) -> Path:
    return shots_dir(tmp_path_factory)


@pytest.fixture
def scene(rt: Runtime, world: World, clock: FixedClock) -> Iterator[dict[str, int]]:
    """A crisis text and an ordinary one from Alex, and a campaign, so every page has something on it."""
    receive_sms(rt, sid="SMcrisis", sender="+447700900101", body="I can't go on", now=clock.now())
    clock.set(datetime(2026, 11, 22, 14, 0, tzinfo=UTC))
    receive_sms(rt, sid="SMfree", sender="+447700900101", body="Can we talk about the job fair", now=clock.now())
    with transaction(rt.engine) as db:
        north = db.exec(select(Service).where(Service.slug == "north")).one()
        assert north.id is not None
        campaign = camp.create(
            db,
            service_id=north.id,
            name="CV clinic",
            text="Hi {{ first_name }}, there is a CV clinic on Thursday. Reply YES if you would like to come.",
            audience={},
            created_by="admin@example.org",
            now=clock.now(),
            send_at=datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
            reply_keyword="YES",
        )
        assert campaign.id is not None
        crisis = db.exec(select(Flag).where(Flag.kind == "crisis")).one()
        assert crisis.id is not None
        ids = {"campaign": campaign.id, "flag": crisis.id}
    yield ids


PAGES = {
    "specialist": [
        "/",
        "/today",
        "/flags",
        "/participants/{P001}",
        "/participants/{P001}?order=oldest",
        "/participants/{P001}/journey",
        "/sessions",
    ],
    "team_lead": [
        "/",
        "/today",
        "/flags",
        "/team",
        "/imports",
        "/participants/{P001}",
        "/reports/contact",
        "/reports/outcomes",
        "/sessions",
    ],
    "service_admin": [
        "/",
        "/today",
        "/flags",
        "/participants/{P001}",
        "/reports/contact",
        "/reports/outcomes",
        "/health",
        "/team",
        "/imports",
        "/campaigns",
        "/campaigns/{campaign}",
        "/settings",
        "/audit",
        "/sessions",
        "/unknown-numbers",
    ],
}
USERS = {"specialist": "sam@example.org", "team_lead": "lead@example.org", "service_admin": "admin@example.org"}


def _name(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.strip("/").lower()).strip("-") or "caseload"


def test_every_page_every_role_both_widths(
    browser: Any,
    site: str,
    world: World,
    scene: dict[str, int],
    shots: Path,
) -> None:
    values = {"P001": world.ids["P001"], "campaign": scene["campaign"]}
    for size_name, size in (("desktop", DESKTOP), ("360", PHONE)):
        context = browser.new_context(base_url=site, viewport=size, locale="en-GB")
        page = context.new_page()
        watch = Watch(page)
        for path in ("/login", "/reset"):
            page.goto(path)
            check_page(page, f"anonymous-{_name(path)}-{size_name}", shots)
            no_sideways_scroll(page, path)
        for role, paths in PAGES.items():
            sign_in(page, USERS[role])
            for path in paths:
                page.goto(path.format(**values))
                name = f"{role}-{_name(path.split('?')[0])}{'-oldest' if '?' in path else ''}-{size_name}"
                check_page(page, name, shots)
                no_sideways_scroll(page, name)
            page.get_by_role("button", name=re.compile("^Sign out")).click()
        assert watch.problems == [], watch.problems
        context.close()


def test_no_console_errors_and_a_favicon(page: Any, scene: dict[str, int]) -> None:
    watch = Watch(page)
    sign_in(page, "admin@example.org")
    for path in ("/", "/flags", "/campaigns", "/settings", "/audit", "/team"):
        page.goto(path)
    assert watch.problems == [], watch.problems
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon and page.request.get(icon).status == 200
    assert page.request.get("/favicon.ico").status == 200
    css = page.request.get("/static/nhsuk/nhsuk.min.css").text()
    assert "assets.nhs.uk" not in css  # no font the content security policy would block


def test_flag_cards_say_what_was_written_what_was_done_and_who_acknowledged(
    page: Any,
    rt: Runtime,
    scene: dict[str, int],
) -> None:
    sign_in(page, "sam@example.org")
    page.goto("/flags")
    card = page.locator(f"section[aria-labelledby=flag-{scene['flag']}]")
    text = card.inner_text()
    assert "I can't go on" in text  # Alex's own words
    assert "Crisis signposting sent." in text or "Crisis signposting queued" in text
    assert "Not acknowledged yet." in text
    assert re.search(r"Raised " + WHEN.pattern + r" \(2 hours ago\)", text), text
    assert "T12:00" not in page.content() and "+00:00" not in page.content()
    card.get_by_role("button", name="Acknowledge").click()
    card = page.locator(f"section[aria-labelledby=flag-{scene['flag']}]")
    assert "Acknowledged by sam@example.org, Sun 22 Nov, 14:00." in card.inner_text()


def test_record_opens_on_summary_then_newest_message_and_reads_at_360(
    browser: Any,
    site: str,
    world: World,
    scene: dict[str, int],
) -> None:
    context = browser.new_context(base_url=site, viewport=PHONE)
    page = context.new_page()
    sign_in(page, "sam@example.org")
    page.goto(f"/participants/{world.ids['P001']}")
    main = page.locator("main").inner_text()
    order = [main.index(s) for s in ("Summary", "Next contact", "Open flags", "Conversation", "Appointments")]
    assert order == sorted(order), order
    thread = page.locator("ol.app-thread").inner_text()
    assert thread.index("Can we talk about the job fair") < thread.index("I can't go on")  # newest first
    page.get_by_role("link", name="Read in order (oldest first)").click()
    thread = page.locator("ol.app-thread").inner_text()
    assert thread.index("I can't go on") < thread.index("Can we talk about the job fair")
    assert page.get_by_role("navigation", name="On this page").get_by_role("link", name="Preferences").count() == 1
    no_sideways_scroll(page, "participant at 360")
    context.close()


def test_settings_audit_and_campaign_state_in_plain_words(
    page: Any,
    rt: Runtime,
    world: World,
    scene: dict[str, int],
) -> None:
    sign_in(page, "admin@example.org")
    page.goto("/settings")
    page.get_by_label("Caseload cap per specialist").fill("24")
    page.get_by_role("button", name="Save settings").click()
    page.goto(f"/participants/{world.ids['P001']}")
    page.goto("/team")
    team = page.locator("main").inner_text()
    assert "[3, 1]" not in team and "True" not in team and "False" not in team
    assert "Remind this many days before\t3 and 1" in team or "3 and 1" in team
    page.goto("/audit")
    audit = page.locator("main").inner_text()
    assert "Caseload cap per specialist: 20" in audit and "24" in audit
    assert "Opened the record" in audit and "P001" in audit
    with transaction(rt.engine) as db:
        viewed = db.exec(select(AuditLog).where(AuditLog.action == "view_record")).first()
        assert viewed is not None and str(viewed.participant_id) != "P001"
    page.goto(f"/campaigns/{scene['campaign']}")
    assert "Scheduled" in page.locator("main").inner_text()
    assert "Waiting for its time" in page.locator("main").inner_text()


def test_campaign_form_keeps_the_template_and_sends_relative_to_a_date(
    page: Any,
    rt: Runtime,
    scene: dict[str, int],
) -> None:
    sign_in(page, "admin@example.org")
    page.goto("/campaigns")
    options = page.get_by_label("Start from a ready-made message (optional)").inner_text()
    assert "CV clinic:" in options and "Cv clinic" not in options
    page.get_by_label("Start from a ready-made message (optional)").select_option("support_ending")
    page.get_by_role("button", name="Use this message").click()
    assert page.get_by_label("Start from a ready-made message (optional)").input_value() == "support_ending"
    page.get_by_label("Name", exact=True).fill("Support ending soon")
    page.get_by_label("Relative to a date on each record").check()
    page.get_by_label("Days from that date (negative for before, e.g. -28)").fill("-28")
    page.get_by_label("The date").select_option("support_end")
    page.get_by_role("button", name="Schedule").click()
    assert "Campaign 'Support ending soon' scheduled." in page.locator("main").inner_text()
    assert "28 day(s) before the record's support end date, at 10:00" in page.locator("main").inner_text()
    with transaction(rt.engine) as db:
        made = db.exec(select(Campaign).where(Campaign.name == "Support ending soon")).one()
        assert made.relative == {"field": "support_end", "days": -28, "at": "10:00"} and made.send_at is None


def test_campaign_sent_now_reads_sending_until_every_copy_is_sent(
    page: Any,
    rt: Runtime,
    scene: dict[str, int],
) -> None:
    with transaction(rt.engine) as db:
        campaign = db.get(Campaign, scene["campaign"])
        assert campaign is not None
        campaign.status = "done"  # the planner finished; one copy still waits in the outbox
        db.add(campaign)
        db.flush()
        db.execute(
            CampaignRecipient.__table__.update()  # type: ignore[attr-defined]
            .where(CampaignRecipient.campaign_id == campaign.id)
            .values(status="queued")
        )
    sign_in(page, "admin@example.org")
    page.goto(f"/campaigns/{scene['campaign']}")
    main = page.locator("main").inner_text()
    assert "Sending" in main and "Finished" not in main


def test_main_tasks_by_keyboard_alone(page: Any, rt: Runtime, world: World, scene: dict[str, int]) -> None:
    # Sign in, find a person, read and act on a flag, send a one-off text: Tab, type and Enter only.
    sign_in_by_keyboard(page, "sam@example.org")
    tab_to(page, r"^Alex\b")
    enter(page)
    page.wait_for_url("**/participants/*")
    tab_to(page, r"^Acknowledge")
    enter(page)
    assert "Flag acknowledged." in page.locator("main").inner_text()
    tab_to(page, r"Message \(you will see a preview")
    page.keyboard.type("Hi Alex, I will ring you at 3. Sam")
    tab_to(page, r"^Preview")
    enter(page)
    tab_to(page, r"^Send text")
    enter(page)
    page.wait_for_url("**/participants/*")
    with transaction(rt.engine) as db:
        assert db.exec(select(Message).where(Message.message_key == "staff/one_off")).one().body.startswith("Hi Alex")
        assert db.exec(select(Flag).where(Flag.kind == "crisis")).one().acknowledged_by == "sam@example.org"
    # Schedule a campaign, as a service admin.
    page.context.clear_cookies()
    sign_in_by_keyboard(page, "admin@example.org")
    tab_to(page, r"^Campaigns \|")
    enter(page)
    page.wait_for_url("**/campaigns")
    tab_to(page, r"\| Name \|")
    page.keyboard.type("Job fair")
    tab_to(page, r"Message: you can use")
    page.keyboard.type("Hi {{ first_name }}, there is a job fair on Friday at the library.")
    tab_to(page, r"At a time")  # a radio group is one Tab stop: the arrow keys choose within it
    page.keyboard.press("ArrowUp")
    assert page.evaluate("document.activeElement.id") == "when-now"
    tab_to(page, r"^Schedule")
    enter(page)
    assert "Campaign 'Job fair' scheduled." in page.locator("main").inner_text()
