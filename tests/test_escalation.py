"""Urgent flags: told at once by email and by a text to the duty phone, then again at the service's
interval until a person acknowledges, with no cap, through the real outbox, the Twilio API mock and
SMTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from assistant.care.flags import acknowledge, resolve
from assistant.clock import FixedClock
from assistant.contact.settings_change import change_settings
from assistant.db.models import Flag, Message, Notification, Service
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload
from assistant.jobs.tick import tick
from assistant.runtime import Runtime, build_runtime
from assistant.transports import TwilioTransport
from tests.conftest import Inbox, Phone, test_settings
from tests.test_twilio_api import twilio_mock  # noqa: F401
from tests.twilio_mock.server import TwilioMock

pytestmark = pytest.mark.prism

DUTY_PHONE = "+447700900999"
ALEX = "+447700900101"
INTERVAL = 30


@pytest.fixture
def mock(twilio_mock: TwilioMock) -> TwilioMock:  # noqa: F811
    twilio_mock.clear()
    return twilio_mock


@pytest.fixture
def rt(
    db_url: str,
    tmp_path: Path,
    clock: FixedClock,
    mock: TwilioMock,
    smtp: tuple[Inbox, int],
    caseload_file: Path,
) -> Iterator[Runtime]:
    """The conftest runtime, sending through the Twilio mock and a real SMTP server, with a service
    whose duty contact has an email address and a phone, and a manager to escalate to."""
    _inbox, port = smtp
    settings = replace(
        test_settings(db_url, tmp_path),
        sms_transport="twilio",
        twilio_api_url=mock.url,
        twilio_account_sid="AC" + "1" * 32,
        twilio_from_number="+447700900000",
        smtp_host="127.0.0.1",
        smtp_port=port,
        mail_from="assistant@service.example",
    )
    runtime = build_runtime(settings, clock=clock, transport=TwilioTransport(settings))
    import_caseload(runtime, caseload_file, clock.now())
    with transaction(runtime.engine) as db:
        service = db.exec(select(Service)).one()
        change_settings(
            db,
            service,
            {
                "duty_contact_email": "duty@service.example",
                "duty_contact_phone": DUTY_PHONE,
                "escalation_contact_email": "manager@service.example",
                "escalate_after_minutes": INTERVAL,
            },
            by="admin@example.org",
            now=clock.now(),
        )
    yield runtime
    runtime.engine.dispose()


@dataclass
class Duty:
    """What the tests here watch: the runtime, the participant's phone, the Twilio mock and the email inbox."""

    rt: Runtime
    phone: Phone
    mock: TwilioMock
    inbox: Inbox

    def texts(self) -> list[str]:
        """The bodies of the texts that reached Twilio for the duty phone, each a valid API request."""
        found = []
        for request in self.mock.recorded("POST", "/Messages.json"):
            if request.field("To") == DUTY_PHONE:
                assert request.valid, request.violations
                found.append(request.field("Body") or "")
        return found

    def emails(self) -> list[tuple[str, str]]:
        return [(m["To"], m["Subject"]) for m in self.inbox.messages]


@pytest.fixture
def duty(rt: Runtime, phone: Phone, mock: TwilioMock, smtp: tuple[Inbox, int]) -> Duty:
    return Duty(rt, phone, mock, smtp[0])


def test_the_duty_text_goes_before_the_webhook_returns_without_a_tick(duty: Duty) -> None:
    assert duty.phone.text(ALEX, "I want to end my life").status_code == 200
    # No tick has run: the dispatcher sent the reply, the duty text and the emails after commit.
    [text] = duty.texts()
    assert "P001" in text and "end my life" not in text  # which record, never what they wrote
    posts = duty.mock.recorded("POST", "/Messages.json")
    to_alex = [r for r in posts if r.field("To") == ALEX]
    assert len(to_alex) == 1  # the signposting
    assert posts[0].field("To") == ALEX, "the duty contact's text went before the person's signposting"
    assert sorted(to for to, _ in duty.emails()) == ["duty@service.example", "sam.jones@example.org"]
    with transaction(duty.rt.engine) as db:
        [sent] = db.exec(select(Message).where(Message.message_key == "staff/urgent_flag")).all()
        flag = db.exec(select(Flag)).one()
    assert sent.status == "sent" and sent.phone == DUTY_PHONE
    assert flag.next_notice_at == duty.rt.clock.now() + timedelta(minutes=INTERVAL)


def test_reminders_go_on_every_interval_widening_until_someone_acknowledges(duty: Duty, clock: FixedClock) -> None:
    start = clock.now()
    duty.phone.text(ALEX, "I can't go on")
    assert len(duty.texts()) == 1 and len(duty.inbox.messages) == 2
    reminders = 12  # six hours: far past any fixed number of repeats
    for n in range(1, reminders + 1):
        due = start + timedelta(minutes=INTERVAL * n)
        clock.set(due - timedelta(minutes=1))
        tick(duty.rt, clock.now())
        assert len(duty.texts()) == n and len(duty.inbox.messages) == 2 + 3 * (n - 1), f"reminder {n} came early"
        clock.set(due)
        tick(duty.rt, clock.now())
        tick(duty.rt, clock.now())  # the same instant again: nothing twice
        texts = duty.texts()
        assert len(texts) == n + 1, f"reminder {n}: one duty text"
        assert f"(reminder {n})" in texts[-1] and "P001" in texts[-1]
        # From the second notice on, the escalation contact is told too.
        assert sorted(duty.emails()[-3:]) == sorted(
            (to, f"Not yet acknowledged ({n}): URGENT: a participant needs contact today")
            for to in ("sam.jones@example.org", "duty@service.example", "manager@service.example")
        )
        assert len(duty.inbox.messages) == 2 + 3 * n
    with transaction(duty.rt.engine) as db:
        flag = db.exec(select(Flag)).one()
        assert flag.status == "open" and flag.notices == reminders + 1
        acknowledge(db, flag, by="sam.jones@example.org", note="Rang them", now=clock.now() + timedelta(minutes=5))
    told = (len(duty.texts()), len(duty.inbox.messages))
    for n in range(1, 10):
        clock.set(start + timedelta(minutes=INTERVAL * (reminders + n)))
        tick(duty.rt, clock.now())
    assert (len(duty.texts()), len(duty.inbox.messages)) == told  # acknowledged: nobody is chased again
    with transaction(duty.rt.engine) as db:
        flag = db.exec(select(Flag)).one()
        assert flag.status == "acknowledged" and flag.next_notice_at is None  # never closed by itself
        staff = db.exec(select(Message).where(Message.message_key == "staff/urgent_flag")).all()
    assert len(staff) == reminders + 1 and all(m.status == "sent" for m in staff)


def test_writing_again_after_acknowledgement_needs_a_person_again_and_resolving_stops_it(
    duty: Duty, clock: FixedClock
) -> None:
    start = clock.now()
    duty.phone.text(ALEX, "I want to kill myself")
    with transaction(duty.rt.engine) as db:
        acknowledge(db, db.exec(select(Flag)).one(), by="sam.jones@example.org", note=None, now=start)
    clock.set(start + timedelta(hours=2))
    duty.phone.text(ALEX, "going to end it all tonight")
    # Told at once, as a new urgent notice, and open to acknowledge again.
    assert len(duty.texts()) == 2 and len(duty.inbox.messages) == 4
    with transaction(duty.rt.engine) as db:
        flag = db.exec(select(Flag)).one()
        assert flag.status == "open" and len(flag.evidence) == 2
        assert "needs acknowledging again" in (flag.note or "")
    clock.set(start + timedelta(hours=2, minutes=INTERVAL))
    tick(duty.rt, clock.now())
    assert len(duty.texts()) == 3
    with transaction(duty.rt.engine) as db:
        resolve(db, db.exec(select(Flag)).one(), by="sam.jones@example.org", note="GP and crisis team", now=clock.now())
    for n in range(1, 5):
        tick(duty.rt, clock.now() + timedelta(minutes=INTERVAL * n))
    assert len(duty.texts()) == 3


def test_a_flood_of_crisis_texts_is_one_flag_and_a_notice_not_hundreds(duty: Duty, clock: FixedClock) -> None:
    start = clock.now()
    for n in range(40):  # forty texts in ten minutes
        clock.set(start + timedelta(seconds=15 * n))
        assert duty.phone.text(ALEX, f"I want to die {n}").status_code == 200
    with transaction(duty.rt.engine) as db:
        [flag] = db.exec(select(Flag).where(Flag.kind == "crisis")).all()
        assert len(flag.evidence) == 40  # the evidence gathered on the one flag
        assert len(db.exec(select(Notification)).all()) == 2
        signposting = db.exec(select(Message).where(Message.message_key == "common/crisis")).all()
        assert len(signposting) == 1  # again only after ten minutes, not forty times
    assert len(duty.texts()) == 1 and len(duty.inbox.messages) == 2
    # People hear once more about the run soon after it, not at every text, then at the interval.
    clock.set(start + timedelta(minutes=14))
    tick(duty.rt, clock.now())
    assert len(duty.texts()) == 1
    clock.set(start + timedelta(minutes=15))
    tick(duty.rt, clock.now())
    assert len(duty.texts()) == 2 and len(duty.inbox.messages) == 5
    assert "Items of evidence on it so far: 40" in duty.inbox.messages[-1].get_payload()
    clock.set(start + timedelta(minutes=15 + INTERVAL - 1))
    tick(duty.rt, clock.now())
    assert len(duty.texts()) == 2
