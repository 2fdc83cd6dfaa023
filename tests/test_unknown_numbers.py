"""Texts from numbers on no caseload: kept for triage, audited, and a crisis text is never
answered "we don't recognise this number"."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from assistant.care.mail import send_notifications
from assistant.care.notify import UNKNOWN_SUBJECT
from assistant.clock import FixedClock
from assistant.db.models import AuditLog, Message, Notification
from assistant.db.units import transaction
from assistant.runtime import Runtime

from .conftest import Inbox, Phone, mailing_service, outbound

STRANGER = "+447700900999"


@pytest.fixture
def duty(rt: Runtime, smtp: tuple[Inbox, int], caseload_file: Path) -> tuple[Runtime, Inbox]:
    settings = {"duty_contact_email": "duty@service.example", "duty_contact_phone": "+447700900500"}
    return rt, mailing_service(rt, smtp, caseload_file, settings)


def _kept(rt: Runtime) -> list[Message]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(Message).where(Message.direction == "in").order_by(col(Message.id))).all())


def test_a_crisis_text_from_an_unknown_number_gets_signposting_and_the_duty_contact_hears(
    duty: tuple[Runtime, Inbox], phone: Phone
) -> None:
    rt, inbox = duty
    assert phone.text(STRANGER, "new phone. i cant do this anymore, i want to end it").status_code == 200
    to_stranger = [m for m in outbound(rt) if m.phone == STRANGER]
    assert [m.message_key for m in to_stranger] == ["common/crisis"]
    assert to_stranger[0].body.startswith("If you feel you might act on these thoughts")
    assert "116 123" in to_stranger[0].body and "not watched around the clock" in to_stranger[0].body
    assert "recognise" not in to_stranger[0].body
    # The duty contact: an email at once and a text, neither saying what was written nor the number.
    assert [m["Subject"] for m in inbox.messages] == [UNKNOWN_SUBJECT]
    duty_texts = [m for m in outbound(rt) if m.phone == "+447700900500"]
    assert len(duty_texts) == 1 and duty_texts[0].status == "sent"
    for text in [inbox.messages[0].get_payload(), duty_texts[0].body]:
        assert "end it" not in text and STRANGER not in text and "7700900999" not in text
    [kept] = _kept(rt)
    assert kept.status == "triage_risk" and kept.participant_id is None
    with transaction(rt.engine) as db:
        [audit] = db.exec(select(AuditLog).where(AuditLog.action == "unknown_number_text")).all()
    assert audit.detail == {"message_id": kept.id, "reads_like_crisis": True}


def test_an_ordinary_text_from_an_unknown_number_is_kept_and_answered_once(
    duty: tuple[Runtime, Inbox], phone: Phone
) -> None:
    rt, inbox = duty
    phone.text(STRANGER, "hi who is this")
    phone.text(STRANGER, "hello?")
    assert [m.message_key for m in outbound(rt) if m.phone == STRANGER] == ["common/unknown_number"]
    assert [m.status for m in _kept(rt)] == ["triage", "triage"]
    assert inbox.messages == []


def test_a_flood_of_crisis_texts_from_one_number_tells_the_duty_contact_once(
    duty: tuple[Runtime, Inbox], phone: Phone, clock: FixedClock
) -> None:
    rt, inbox = duty
    start = clock.now()
    for minute in range(30):
        clock.set(start + timedelta(minutes=minute))
        phone.text(STRANGER, f"i want to die {minute}")
    send_notifications(rt, rt.clock.now())
    assert len(_kept(rt)) == 30  # every text kept
    with transaction(rt.engine) as db:
        alerts = db.exec(select(Notification).where(Notification.subject == UNKNOWN_SUBJECT)).all()
    assert len(alerts) == 1 and len(inbox.messages) == 1
    signposting = [m for m in outbound(rt) if m.phone == STRANGER and m.message_key == "common/crisis"]
    assert len(signposting) == 3  # at most one every ten minutes
    assert len([m for m in outbound(rt) if m.phone == "+447700900500"]) == 1


@pytest.mark.parametrize("sender", ["+12", "+999999999999", "+4477009009991234", "12345", "NHSINFO", "anonymous"])
@pytest.mark.parametrize("body", ["hi who is this", "new phone. i cant do this anymore, i want to end it"])
def test_no_reply_is_queued_to_a_sender_that_is_not_a_valid_e164_number(
    duty: tuple[Runtime, Inbox], phone: Phone, sender: str, body: str
) -> None:
    rt, inbox = duty
    assert phone.text(sender, body).status_code == 200
    assert [m.phone for m in outbound(rt) if m.phone != "+447700900500"] == []  # nothing but the duty text
    [kept] = _kept(rt)
    assert kept.participant_id is None and kept.status in ("triage", "triage_risk")
    if kept.status == "triage_risk":  # a crisis still reaches the duty contact, who can act on it
        assert [m["Subject"] for m in inbox.messages] == [UNKNOWN_SUBJECT]
    # A valid number is answered, so the refusal above is the number's, not the path's.
    phone.text(STRANGER, body)
    assert [m.phone for m in outbound(rt) if m.phone == STRANGER] == [STRANGER]


def test_is_e164_accepts_only_valid_numbers_as_stored() -> None:
    from assistant.phones import is_e164

    assert is_e164("+447911123456") and is_e164("+447700900999") and is_e164("+33612345678")
    for text in (
        "+44 7911 123456",
        "07911123456",
        "+447911123456\n",
        "+12",
        "+",
        "",
        "+44791112345６",
        "+0447911123456",
    ):
        assert not is_e164(text), text
