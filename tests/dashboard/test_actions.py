"""What a specialist does on the dashboard, through the real app, outbox and schedule."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from sqlmodel import col, select

from assistant.clock import FixedClock
from assistant.db.models import Appointment, DueTask, Flag, Message, Notification, User
from assistant.db.units import transaction

from ..conftest import Phone
from .conftest import PASSWORD, World, csrf, sign_in


def _tasks(world: World, kind: str) -> list[DueTask]:
    with transaction(world.rt.engine) as db:
        return list(db.exec(select(DueTask).where(DueTask.kind == kind).order_by(col(DueTask.id))).all())


def test_the_page_says_when_no_reminder_text_is_planned(as_user: Any, world: World, clock: FixedClock) -> None:
    """What the page says comes from what was planned: one text now for tomorrow afternoon (its
    reminder times have passed), none for an appointment two hours off."""
    client = as_user("sam@example.org")
    pid = world.ids["P001"]
    token = csrf(client, f"/participants/{pid}")
    now = clock.now().astimezone(ZoneInfo("Europe/London"))
    for when, said in [
        (now + timedelta(days=1, hours=2), "Appointment added; 1 reminder text planned."),
        (now + timedelta(hours=2), "Appointment added. No reminder text is planned for it"),
    ]:
        page = client.post(
            f"/participants/{pid}/appointments",
            data={
                "csrf_token": token,
                "starts_at": when.strftime("%Y-%m-%dT%H:%M"),
                "kind": "meeting",
                "duration_minutes": "30",
            },
            follow_redirects=True,
        )
        assert said in page.get_data(as_text=True)
    assert len(_tasks(world, "appt_reminder")) == 1


def test_add_move_and_mark_dna(as_user: Any, world: World, clock: FixedClock) -> None:
    client = as_user("sam@example.org")
    pid = world.ids["P001"]
    token = csrf(client, f"/participants/{pid}")
    response = client.post(
        f"/participants/{pid}/appointments",
        data={"csrf_token": token, "starts_at": "2026-11-27T14:00", "kind": "meeting", "duration_minutes": "60"},
        follow_redirects=True,
    )
    assert "Appointment added; 2 reminder texts planned." in response.get_data(as_text=True)
    assert [t.due_at.isoformat() for t in _tasks(world, "appt_reminder") if t.due_at] == [
        "2026-11-24T10:00:00+00:00",
        "2026-11-26T10:00:00+00:00",
    ]
    with transaction(world.rt.engine) as db:
        appointment = db.exec(select(Appointment)).one()
    client.post(
        f"/participants/{pid}/appointments/{appointment.id}/move",
        data={"csrf_token": token, "starts_at": "2026-12-02T09:30"},
    )
    assert [t.status for t in _tasks(world, "appt_reminder")] == ["cancelled", "cancelled", "pending", "pending"]
    # Too early to mark it missed; then, after it, the follow-up is scheduled.
    client.post(
        f"/participants/{pid}/appointments/{appointment.id}/outcome", data={"csrf_token": token, "outcome": "dna"}
    )
    assert _tasks(world, "dna_attempt") == []
    clock.set(datetime(2026, 12, 2, 11, 0, tzinfo=UTC))
    # Days later the earlier sign-in has ended: sign in again.
    sign_in(client, "sam@example.org")
    token = csrf(client, f"/participants/{pid}")
    response = client.post(
        f"/participants/{pid}/appointments/{appointment.id}/outcome",
        data={"csrf_token": token, "outcome": "dna"},
        follow_redirects=True,
    )
    assert "follow-up has started" in response.get_data(as_text=True)
    [attempt] = _tasks(world, "dna_attempt")
    assert attempt.status == "pending" and attempt.due_at == clock.now()


def test_bad_appointment_input_changes_nothing(as_user: Any, world: World) -> None:
    client = as_user("sam@example.org")
    pid = world.ids["P001"]
    token = csrf(client, f"/participants/{pid}")
    for data in (
        {"starts_at": "2026-03-29T01:30", "kind": "meeting"},
        {"starts_at": "yesterday", "kind": "meeting"},
        {"starts_at": "2026-11-20T10:00", "kind": "meeting"},
        {"starts_at": "2026-12-01T10:00", "kind": "party"},
    ):
        response = client.post(
            f"/participants/{pid}/appointments", data={"csrf_token": token, **data}, follow_redirects=True
        )
        assert "There is a problem" in response.get_data(as_text=True)
    with transaction(world.rt.engine) as db:
        assert db.exec(select(Appointment)).all() == []


def test_one_off_message_preview_then_send(as_user: Any, world: World) -> None:
    client = as_user("sam@example.org")
    pid = world.ids["P001"]
    token = csrf(client, f"/participants/{pid}")
    preview = client.post(
        f"/participants/{pid}/message", data={"csrf_token": token, "body": "Hi Alex, about your therapy appointment"}
    )
    text = preview.get_data(as_text=True)
    assert "1 text segment" in text and "Lock-screen check" in text and "therapy" in text
    assert "Wording check" not in text
    pressing = client.post(
        f"/participants/{pid}/message", data={"csrf_token": token, "body": "Alex, you must attend on Tuesday."}
    ).get_data(as_text=True)
    assert "Wording check" in pressing and '"you must"' in pressing and "Lock-screen check" not in pressing
    with transaction(world.rt.engine) as db:
        assert db.exec(select(Message)).all() == []  # nothing sent from a preview
    sent = client.post(
        f"/participants/{pid}/message",
        data={"csrf_token": token, "body": "Hi Alex, see you Tuesday. Sam", "confirm": "yes"},
        follow_redirects=True,
    )
    assert "Message sent." in sent.get_data(as_text=True)
    with transaction(world.rt.engine) as db:
        [message] = db.exec(select(Message)).all()
    assert (message.body, message.status, message.message_key) == (
        "Hi Alex, see you Tuesday. Sam",
        "sent",
        "staff/one_off",
    )
    assert "Hi Alex, see you Tuesday. Sam" in client.get(f"/participants/{pid}").get_data(as_text=True)


def test_pause_and_resume(as_user: Any, world: World, clock: FixedClock) -> None:
    from assistant.jobs.tick import tick

    client = as_user("sam@example.org")
    pid = world.ids["P001"]
    token = csrf(client, f"/participants/{pid}")
    client.post(f"/participants/{pid}/pause", data={"csrf_token": token})
    assert world.participant("P001").paused
    tick(world.rt, datetime(2026, 11, 24, 10, 30, tzinfo=UTC))
    with transaction(world.rt.engine) as db:
        assert db.exec(select(Message).where(Message.participant_id == pid)).all() == []
    clock.set(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    sign_in(client, "sam@example.org")  # days later the earlier sign-in has ended
    token = csrf(client, f"/participants/{pid}")
    client.post(f"/participants/{pid}/resume", data={"csrf_token": token})
    assert not world.participant("P001").paused
    pending = [t for t in _tasks(world, "checkin") if t.participant_id == pid and t.status == "pending"]
    assert [t.due_at.isoformat() for t in pending if t.due_at] == ["2026-12-01T10:30:00+00:00"]


def test_while_paused_the_record_shows_no_next_contact_and_says_why(as_user: Any, world: World, phone: Phone) -> None:
    client = as_user("sam@example.org")
    pid = world.ids["P001"]

    def next_contact() -> str:
        page = client.get(f"/participants/{pid}").get_data(as_text=True)
        return page.split("<dt>Next contact</dt><dd>")[1].split("</dd>")[0]

    assert next_contact().startswith("Check-in, ")
    phone.text("+447700900101", "no texts for 2 weeks please")  # a break asked for by text
    assert world.participant("P001").paused
    # Their planned check-in is still on the schedule, but it will not go: the page must not promise it.
    assert next_contact() == "None while paused (until Sun 6 Dec, 12:00)"
    caseload = client.get("/").get_data(as_text=True)
    assert "None while paused" in caseload


def test_a_flag_card_keeps_the_text_that_raised_it_in_sight(as_user: Any, world: World, phone: Phone) -> None:
    first = "I want to end it all"
    later = ["i keep thinking about suicide", "i want to die", "no point going on", "i feel hopeless", "cant go on"]
    for body in [first, *later]:
        phone.text("+447700900101", body)
    client = as_user("sam@example.org")
    with transaction(world.rt.engine) as db:
        [flag] = db.exec(select(Flag).where(Flag.kind == "crisis")).all()
    assert len(flag.evidence) == 6  # every text gathered on the one open flag
    page = client.get("/flags").get_data(as_text=True)
    card = page.split("URGENT: crisis")[1].split("Acknowledge")[0]
    # The first text and the two latest, in order, and a count of the rest.
    assert card.index(f"<q>{first}</q>") < card.index(f"<q>{later[-2]}</q>") < card.index(f"<q>{later[-1]}</q>")
    assert f"<q>{later[0]}</q>" not in card
    assert "And 3 more texts behind this flag on Alex's record." in card
    assert '"end it all"' in card  # the words that raised it are named too


def test_acknowledge_an_urgent_flag_and_transfer_moves_open_flags(as_user: Any, world: World, phone: Phone) -> None:
    phone.text("+447700900101", "I want to end it all")
    client = as_user("sam@example.org")
    with transaction(world.rt.engine) as db:
        flag = db.exec(select(Flag).where(Flag.kind == "crisis")).one()
    page = client.get("/flags").get_data(as_text=True)
    assert "URGENT: crisis" in page
    # The card says why: the participant's own words the reader found.
    assert 'Read from their words: "end it all"' in page
    assert "Read from their words" in client.get(f"/participants/{world.ids['P001']}").get_data(as_text=True)
    client.post(f"/flags/{flag.id}/acknowledge", data={"csrf_token": csrf(client, "/flags")})
    with transaction(world.rt.engine) as db:
        acknowledged = db.get(Flag, flag.id)
        assert acknowledged and (acknowledged.status, acknowledged.acknowledged_by) == (
            "acknowledged",
            "sam@example.org",
        )
        chris = db.exec(select(User).where(User.email == "chris@example.org")).one()
    pid = world.ids["P001"]
    response = client.post(
        f"/participants/{pid}/transfer",
        data={"csrf_token": csrf(client, f"/participants/{pid}"), "specialist_id": chris.specialist_id},
    )
    assert response.status_code == 302
    assert world.participant("P001").specialist_id == chris.specialist_id
    with transaction(world.rt.engine) as db:
        moved = db.get(Flag, flag.id)
        assert moved and moved.specialist_id == chris.specialist_id
    assert client.get(f"/participants/{pid}").status_code == 404  # Sam no longer sees Alex
    assert as_user("chris@example.org").get(f"/participants/{pid}").status_code == 200


def test_password_reset_link_works_once_and_expires(app: Flask, world: World, clock: FixedClock) -> None:
    client = app.test_client()
    token = csrf(client, "/reset")
    answer = client.post("/reset", data={"csrf_token": token, "email": "sam@example.org"}).get_data(as_text=True)
    unknown = client.post("/reset", data={"csrf_token": token, "email": "ghost@example.org"}).get_data(as_text=True)
    assert answer == unknown  # says nothing about who has an account
    with transaction(world.rt.engine) as db:
        [note] = db.exec(select(Notification)).all()
    link = re.search(r"https?://\S+/reset/(\S+)", note.body)
    assert link and note.to_email == "sam@example.org"
    path = f"/reset/{link.group(1)}"
    page_token = csrf(client, path)
    weak = client.post(path, data={"csrf_token": page_token, "password": "short", "confirm": "short"})
    assert weak.status_code == 400
    done = client.post(
        path,
        data={"csrf_token": page_token, "password": "a brand new passphrase 7", "confirm": "a brand new passphrase 7"},
    )
    assert done.status_code == 302
    assert client.get(path).status_code == 400  # used: the link no longer works
    assert sign_in(app.test_client(), "sam@example.org", PASSWORD).status_code == 401
    assert sign_in(app.test_client(), "sam@example.org", "a brand new passphrase 7").status_code == 302


def test_preferences_validate_and_replan(as_user: Any, world: World) -> None:
    client = as_user("sam@example.org")
    pid = world.ids["P001"]
    token = csrf(client, f"/participants/{pid}")
    bad = client.post(
        f"/participants/{pid}/preferences",
        data={
            "csrf_token": token,
            "checkin_day": "Fri",
            "checkin_time": "22:00",
            "every_weeks": "1",
            "allowed_from": "08:00",
            "allowed_until": "20:00",
        },
        follow_redirects=True,
    )
    assert "inside the allowed hours" in bad.get_data(as_text=True)
    assert world.participant("P001").checkin_day == 1
    client.post(
        f"/participants/{pid}/preferences",
        data={
            "csrf_token": token,
            "checkin_day": "Fri",
            "checkin_time": "17:15",
            "every_weeks": "2",
            "allowed_from": "09:00",
            "allowed_until": "19:00",
        },
    )
    person = world.participant("P001")
    assert (person.checkin_day, person.checkin_time, person.checkin_every_weeks, person.allowed_from) == (
        4,
        "17:15",
        2,
        "09:00",
    )
    pending = [t for t in _tasks(world, "checkin") if t.participant_id == pid and t.status == "pending"]
    assert [t.due_at.isoformat() for t in pending if t.due_at] == ["2026-11-27T17:15:00+00:00"]


def test_admin_previews_schedules_and_cancels_a_campaign(as_user: Any, world: World, clock: FixedClock) -> None:
    from assistant.db.models import Campaign

    admin = as_user("admin@example.org")
    token = csrf(admin, "/campaigns")
    form = {
        "csrf_token": token,
        "name": "CV clinic",
        "text": "Hi {{ first_name }}, CV clinic on Tuesday. {{ specialist_name }}",
        "audience_cohort": "out_of_work",
        "send_at": "2026-11-23T10:00",
    }
    preview = admin.post("/campaigns", data=form | {"action": "preview"}).get_data(as_text=True)
    assert "3 participants would get it" in preview and "Hi Alex, CV clinic on Tuesday. Sam" in preview
    assert "How it reads for each:" in preview
    bad = admin.post("/campaigns", data=form | {"action": "create", "text": "Hi {{ nickname }}"})
    assert bad.status_code == 400 and "unknown merge field" in bad.get_data(as_text=True)
    created = admin.post("/campaigns", data=form | {"action": "create"})
    assert created.status_code == 302
    with transaction(world.rt.engine) as db:
        campaign = db.exec(select(Campaign)).one()
    page = admin.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "3 participant(s)" in page
    admin.post(f"/campaigns/{campaign.id}/status", data={"csrf_token": token, "status": "cancelled"})
    with transaction(world.rt.engine) as db:
        assert db.exec(select(Campaign)).one().status == "cancelled"
    assert as_user("sam@example.org").get("/campaigns").status_code == 404
    assert as_user("kim@example.org").get(f"/campaigns/{campaign.id}").status_code == 404


def test_admin_starts_a_campaign_from_a_ready_made_message(as_user: Any, world: World) -> None:
    admin = as_user("admin@example.org")
    page = admin.get("/campaigns").get_data(as_text=True)
    assert 'value="support_ending"' in page and 'value="cv_clinic"' in page
    form = {"csrf_token": csrf(admin, "/campaigns"), "name": "Ending", "template": "appointment_next_week"}
    filled = admin.post("/campaigns", data=form | {"action": "template"}).get_data(as_text=True)
    assert "Hi {{ first_name }}, a reminder that we&#39;re meeting on {{ appointment_time }}." in filled
    missing = admin.post("/campaigns", data=form | {"action": "template", "template": "../common/crisis"})
    assert missing.status_code == 400 and "no campaign template" in missing.get_data(as_text=True)


def test_preferences_take_a_window_across_midnight_and_two_parts(as_user: Any, world: World) -> None:
    client = as_user("sam@example.org")
    pid = world.ids["P001"]
    token = csrf(client, f"/participants/{pid}")
    form = {"csrf_token": token, "checkin_day": "Wed", "every_weeks": "1"}
    client.post(
        f"/participants/{pid}/preferences",
        data=form | {"checkin_time": "00:30", "allowed_from": "22:00", "allowed_until": "02:00"},
    )
    person = world.participant("P001")
    assert (person.allowed_from, person.allowed_until, person.contact_windows, person.checkin_time) == (
        "22:00",
        "02:00",
        None,
        "00:30",
    )
    overlap = client.post(
        f"/participants/{pid}/preferences",
        data=form
        | {"checkin_time": "07:00", "allowed_from": "06:00", "allowed_until": "07:30", "second_window": "07:00-09:00"},
        follow_redirects=True,
    )
    assert "do not overlap" in overlap.get_data(as_text=True)
    client.post(
        f"/participants/{pid}/preferences",
        data=form
        | {"checkin_time": "18:00", "allowed_from": "06:00", "allowed_until": "07:30", "second_window": "17:30-20:00"},
    )
    person = world.participant("P001")
    assert (person.contact_windows, person.checkin_time) == ("06:00-07:30,17:30-20:00", "18:00")


def test_resolving_without_a_note_keeps_the_flag_and_stays_on_the_page(
    as_user: Any, world: World, phone: Phone
) -> None:
    phone.text("+447700900101", "I want to end it all")
    client = as_user("sam@example.org")
    with transaction(world.rt.engine) as db:
        flag = db.exec(select(Flag).where(Flag.kind == "crisis")).one()
    page = client.get("/flags").get_data(as_text=True)
    assert f'id="note-{flag.id}" name="note" type="text" maxlength="2000" required' in page
    response = client.post(
        f"/flags/{flag.id}/resolve", data={"csrf_token": csrf(client, "/flags"), "back": "/flags", "note": "  "}
    )
    assert response.status_code == 303 and response.headers["Location"].endswith("/flags")
    shown = client.get("/flags").get_data(as_text=True)
    assert "a note is required to resolve a flag" in shown.split("URGENT: crisis")[0]  # the reason, above the flags
    with transaction(world.rt.engine) as db:
        kept = db.get(Flag, flag.id)
        assert kept is not None and kept.status == "open"


def test_a_one_off_text_to_someone_without_consent_is_refused_not_reported_sent(as_user: Any, world: World) -> None:
    from assistant.db.models import Participant

    pid = world.ids["P001"]
    with transaction(world.rt.engine) as db:
        alex = db.get(Participant, pid)
        assert alex is not None
        alex.sms_consent = False
        db.add(alex)
    client = as_user("sam@example.org")
    token = csrf(client, f"/participants/{pid}")
    page = client.post(
        f"/participants/{pid}/message",
        data={"csrf_token": token, "body": "Hi Alex, see you Tuesday. Sam", "confirm": "yes"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Message sent." not in page and "no consent to texts" in page
    with transaction(world.rt.engine) as db:
        assert db.exec(select(Message)).all() == []
