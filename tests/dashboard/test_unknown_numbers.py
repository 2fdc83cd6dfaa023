"""The Unknown numbers page: texts from phones on no caseload, read and linked by service admins and duty contacts.

Texts arrive through the signed webhook, as Twilio sends them."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlmodel import col, select

from assistant.clock import FixedClock
from assistant.db.models import AuditLog, Flag, Message, Notification, Service
from assistant.db.units import transaction

from ..conftest import START, Phone
from .conftest import NORTH_DUTY, World, csrf

UNKNOWN = "+447700900555"
OTHER = "+447700900556"
CRISIS = "I want to end it all"
CRISIS_TAG = "Reads like a crisis: signposting sent"
LINK_NOTE = "update their number on the record if this is their new phone"


def _arrive(phone: Phone, clock: FixedClock, minutes: int, sender: str, body: str) -> None:
    clock.set(START + timedelta(minutes=minutes))
    assert phone.text(sender, body).status_code == 200


def _inbound(world: World, sender: str) -> list[Message]:
    with transaction(world.rt.engine) as db:
        return list(
            db.exec(
                select(Message).where(Message.direction == "in", Message.phone == sender).order_by(col(Message.id))
            ).all()
        )


def _audit(world: World, action: str) -> list[AuditLog]:
    with transaction(world.rt.engine) as db:
        return list(db.exec(select(AuditLog).where(AuditLog.action == action).order_by(col(AuditLog.id))).all())


def _flags(world: World, participant: str) -> list[Flag]:
    with transaction(world.rt.engine) as db:
        return list(
            db.exec(select(Flag).where(Flag.participant_id == world.ids[participant]).order_by(col(Flag.id))).all()
        )


def _error(page: str) -> str:
    found = re.search(r'<div class="nhsuk-error-summary__body"><p>(.*?)</p>', page, re.DOTALL)
    assert found, "no error shown"
    return found.group(1)


def _cards(page: str) -> list[str]:
    return page.split('<div class="nhsuk-card app-flag-card')[1:]


def _link(client: FlaskClient, message_id: int, external_id: str, **data: str) -> Any:
    token = csrf(client, "/unknown-numbers")
    return client.post(
        f"/unknown-numbers/{message_id}/link",
        data={"csrf_token": token, "external_id": external_id, **data},
        follow_redirects=True,
    )


def test_the_list_shows_every_text_from_unknown_numbers_crisis_first(
    as_user: Any, world: World, phone: Phone, clock: FixedClock
) -> None:
    _arrive(phone, clock, 0, OTHER, "Hi is this Sam? I got a new phone")
    _arrive(phone, clock, 5, UNKNOWN, CRISIS)
    _arrive(phone, clock, 10, UNKNOWN, "sorry, ignore that")
    _arrive(phone, clock, 15, "+447700900101", "Alex here, see you Tuesday")  # on a caseload: not listed
    page = as_user("admin@example.org").get("/unknown-numbers")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'href="/unknown-numbers">Unknown numbers</a>' in html  # in the menu
    cards = _cards(html)
    # Crisis first, then newest first; nothing grouped away.
    assert [next(b for b in (CRISIS, "sorry, ignore that", "Hi is this Sam?") if b in c) for c in cards] == [
        CRISIS,
        "sorry, ignore that",
        "Hi is this Sam?",
    ]
    assert CRISIS_TAG in cards[0] and all(CRISIS_TAG not in c for c in cards[1:])
    assert UNKNOWN in cards[0] and "Sun 22 Nov, 12:05" in cards[0]  # local time (GMT in November)
    assert "1 other unlinked text from this number" in cards[0]
    assert OTHER in cards[2] and "Sun 22 Nov, 12:00" in cards[2]
    assert "Alex here" not in html
    assert page.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "email,allowed",
    [
        ("sam@example.org", False),
        ("lead@example.org", False),
        ("kim@example.org", False),
        ("admin@example.org", True),
    ],
)
def test_only_service_admins_and_duty_contacts_see_it(
    as_user: Any, world: World, phone: Phone, email: str, allowed: bool
) -> None:
    phone.text(UNKNOWN, CRISIS)
    [text] = _inbound(world, UNKNOWN)
    client = as_user(email)
    # Refused as the other admin pages are (a 404: the page is not confirmed to exist for them).
    assert client.get("/unknown-numbers").status_code == (200 if allowed else 404)
    assert ('href="/unknown-numbers"' in client.get("/").get_data(as_text=True)) is allowed
    if not allowed:
        token = csrf(client, "/")
        assert client.post(f"/unknown-numbers/{text.id}/review", data={"csrf_token": token}).status_code == 404
        response = client.post(f"/unknown-numbers/{text.id}/link", data={"csrf_token": token, "external_id": "P001"})
        assert response.status_code == 404
        assert [(m.participant_id, m.status) for m in _inbound(world, UNKNOWN)] == [(None, "triage_risk")]


def test_the_duty_contact_sees_it_whatever_their_role(as_user: Any, world: World, phone: Phone) -> None:
    with transaction(world.rt.engine) as db:
        north = db.exec(select(Service).where(Service.slug == "north")).one()
        north.settings = {"duty_contact_email": "Chris@Example.org"}  # Chris is a specialist
        db.add(north)
    phone.text(UNKNOWN, CRISIS)
    chris = as_user("chris@example.org")
    page = chris.get("/unknown-numbers")
    assert page.status_code == 200 and CRISIS in page.get_data(as_text=True)
    assert 'href="/unknown-numbers"' in chris.get("/").get_data(as_text=True)
    assert as_user("sam@example.org").get("/unknown-numbers").status_code == 404
    # Being another service's duty contact gives nothing here: Kim is south's specialist, not its duty contact.
    assert as_user("kim@example.org").get("/unknown-numbers").status_code == 404


def test_linking_moves_every_text_from_that_phone_audits_it_and_raises_the_crisis_flag(
    as_user: Any, world: World, phone: Phone, clock: FixedClock
) -> None:
    _arrive(phone, clock, 0, UNKNOWN, CRISIS)
    _arrive(phone, clock, 3, UNKNOWN, "its Priya btw, new phone")
    _arrive(phone, clock, 4, OTHER, "who is this?")
    crisis, ordinary = _inbound(world, UNKNOWN)
    assert (crisis.status, ordinary.status) == ("triage_risk", "triage")
    with transaction(world.rt.engine) as db:
        told_before = len(db.exec(select(Notification)).all())
    admin = as_user("admin@example.org")
    clock.set(START + timedelta(minutes=30))
    # Linked from the ordinary text: the crisis text from the same phone goes too.
    page = _link(admin, ordinary.id, " P003 ").get_data(as_text=True)  # type: ignore[arg-type]
    assert "2 texts from this number moved to Priya (P003)" in page and LINK_NOTE in page
    assert "urgent crisis flag" in page
    priya = world.ids["P003"]
    assert [(m.participant_id, m.status) for m in _inbound(world, UNKNOWN)] == [(priya, "received")] * 2
    assert [(m.participant_id, m.status) for m in _inbound(world, OTHER)] == [(None, "triage")]
    assert world.participant("P003").phone == "+447700900103"  # the record's number is not changed
    [entry] = _audit(world, "unknown_number_linked")
    assert (entry.user_email, entry.participant_id) == ("admin@example.org", priya)
    assert entry.detail == {"message_ids": [crisis.id, ordinary.id], "reads_like_crisis": [crisis.id]}
    flags = {f.kind: f for f in _flags(world, "P003")}
    urgent = flags["crisis"]
    assert (urgent.severity, urgent.status) == ("urgent", "open")
    assert urgent.reason.startswith("Sent a message that reads like a crisis from a number not on their record")
    assert [(e["message_id"], e["from_unknown_number"]) for e in urgent.evidence] == [(crisis.id, True)]
    assert [e["message_id"] for e in flags["message"].evidence] == [ordinary.id]  # the rest is for reading
    with transaction(world.rt.engine) as db:
        told = db.exec(select(Notification).where(Notification.flag_id == urgent.id)).all()
        assert db.exec(select(Notification)).all()[told_before:] == told
    assert {n.to_email for n in told} == {"chris@example.org", NORTH_DUTY}  # Priya's specialist and the duty contact
    # Off the list, and on her record.
    listing = admin.get("/unknown-numbers").get_data(as_text=True)
    assert CRISIS not in listing and "who is this?" in listing
    record = admin.get(f"/participants/{priya}").get_data(as_text=True)
    assert CRISIS in record and "its Priya btw, new phone" in record


def test_an_id_in_another_service_gets_the_same_answer_as_a_missing_id(
    as_user: Any, world: World, phone: Phone
) -> None:
    phone.text(UNKNOWN, CRISIS)
    [text] = _inbound(world, UNKNOWN)
    admin = as_user("admin@example.org")
    assert text.id is not None
    south = _error(_link(admin, text.id, "P005").get_data(as_text=True))  # Casey, in the south service
    missing = _error(_link(admin, text.id, "P999").get_data(as_text=True))
    assert south.replace("P005", "P999") == missing
    assert "your service" in missing
    assert (
        _error(_link(admin, text.id, "   ").get_data(as_text=True))
        == "Enter the participant&#39;s ID from their record."
    )
    assert [(m.participant_id, m.status) for m in _inbound(world, UNKNOWN)] == [(None, "triage_risk")]
    assert _audit(world, "unknown_number_linked") == []
    assert _flags(world, "P005") == []


def test_link_and_review_need_the_csrf_token(as_user: Any, world: World, phone: Phone) -> None:
    phone.text(UNKNOWN, CRISIS)
    [text] = _inbound(world, UNKNOWN)
    admin = as_user("admin@example.org")
    for action, data in (("link", {"external_id": "P003"}), ("review", {})):
        assert admin.post(f"/unknown-numbers/{text.id}/{action}", data=data).status_code == 400
        forged = admin.post(f"/unknown-numbers/{text.id}/{action}", data={"csrf_token": "forged", **data})
        assert forged.status_code == 400
    assert [(m.participant_id, m.status) for m in _inbound(world, UNKNOWN)] == [(None, "triage_risk")]
    assert _flags(world, "P003") == []


def test_mark_reviewed_takes_it_off_the_list_and_a_later_link_still_raises_the_crisis_flag(
    as_user: Any, world: World, phone: Phone, clock: FixedClock
) -> None:
    _arrive(phone, clock, 0, UNKNOWN, CRISIS)
    _arrive(phone, clock, 1, OTHER, "wrong number sorry")
    [crisis] = _inbound(world, UNKNOWN)
    admin = as_user("admin@example.org")
    token = csrf(admin, "/unknown-numbers")
    page = admin.post(
        f"/unknown-numbers/{crisis.id}/review", data={"csrf_token": token}, follow_redirects=True
    ).get_data(as_text=True)
    assert "Marked as reviewed" in page
    assert CRISIS not in page and "wrong number sorry" in page
    assert [m.status for m in _inbound(world, UNKNOWN)] == ["triage_reviewed"]
    [entry] = _audit(world, "unknown_number_reviewed")
    assert entry.user_email == "admin@example.org"
    assert entry.detail == {"message_ids": [crisis.id], "reads_like_crisis": True}
    # Reviewing twice says so and changes nothing.
    again = admin.post(f"/unknown-numbers/{crisis.id}/review", data={"csrf_token": token}, follow_redirects=True)
    assert "already marked as reviewed" in _error(again.get_data(as_text=True))
    assert len(_audit(world, "unknown_number_reviewed")) == 1
    # Kept: shown on request, still marked as a crisis text.
    shown = _cards(admin.get("/unknown-numbers?show=reviewed").get_data(as_text=True))
    [reviewed] = [c for c in shown if CRISIS in c]
    assert "Reviewed" in reviewed and CRISIS_TAG in reviewed
    # Found to be Alex after all: linking it still tells Sam at once.
    assert crisis.id is not None
    _link(admin, crisis.id, "P001")
    [flag] = _flags(world, "P001")
    assert (flag.kind, flag.severity, flag.evidence[0]["message_id"]) == ("crisis", "urgent", crisis.id)


def test_the_list_is_paged(as_user: Any, world: World, phone: Phone, clock: FixedClock) -> None:
    for minute in range(51):
        _arrive(phone, clock, minute, OTHER, f"text number {minute}")
    _arrive(phone, clock, 60, UNKNOWN, CRISIS)
    admin = as_user("admin@example.org")
    first = admin.get("/unknown-numbers").get_data(as_text=True)
    assert len(_cards(first)) == 50 and CRISIS in _cards(first)[0]
    assert "52 texts" in first and 'href="/unknown-numbers?page=2"' in first
    second = _cards(admin.get("/unknown-numbers?page=2").get_data(as_text=True))
    assert len(second) == 2 and "text number 1<" in second[0] and "text number 0<" in second[1]
