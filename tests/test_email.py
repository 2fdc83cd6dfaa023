"""Flag emails through a real SMTP server on loopback: who hears, when, and again if nobody acknowledges."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from assistant.care.flags import acknowledge
from assistant.care.mail import send_notifications
from assistant.clock import FixedClock
from assistant.db.models import Flag, Notification, Service, Specialist
from assistant.db.service_settings import ServiceSettings
from assistant.db.units import transaction
from assistant.jobs.tick import tick
from assistant.runtime import Runtime
from assistant.transports import SendResult

from .conftest import Inbox, Phone, free_port, mailing_service, outbound


@pytest.fixture
def emailing(rt: Runtime, smtp: tuple[Inbox, int], caseload_file: Path) -> tuple[Runtime, Inbox]:
    settings = {"duty_contact_email": "duty@service.example", "escalate_after_minutes": 60}
    return rt, mailing_service(rt, smtp, caseload_file, settings)


def _to(inbox: Inbox) -> list[str]:
    return [m["To"] for m in inbox.messages]


def test_crisis_text_emails_the_specialist_and_duty_contact_at_once(
    emailing: tuple[Runtime, Inbox], phone: Phone
) -> None:
    _rt, inbox = emailing
    assert phone.text("+447700900101", "I want to end my life").status_code == 200
    assert sorted(_to(inbox)) == ["duty@service.example", "sam.jones@example.org"]
    email = inbox.messages[0]
    assert email["Subject"].startswith("URGENT")
    body = email.get_payload()
    assert "P001" in body and "end my life" not in body  # who, never what they wrote


def test_unacknowledged_urgent_flag_is_escalated_until_acknowledged(
    emailing: tuple[Runtime, Inbox], phone: Phone
) -> None:
    rt, inbox = emailing
    phone.text("+447700900101", "I can't go on")
    assert len(inbox.messages) == 2
    start = rt.clock.now()
    tick(rt, start + timedelta(minutes=59))
    assert len(inbox.messages) == 2
    tick(rt, start + timedelta(minutes=60))
    assert len(inbox.messages) == 4 and all("Not yet acknowledged (1)" in m["Subject"] for m in inbox.messages[2:])
    with transaction(rt.engine) as db:
        flag = db.exec(select(Flag).where(Flag.kind == "crisis")).one()
        acknowledge(
            db,
            flag,
            by="sam.jones@example.org",
            note="Rang them, safe, GP contacted",
            now=start + timedelta(minutes=70),
        )
    tick(rt, start + timedelta(minutes=125))
    assert len(inbox.messages) == 4  # acknowledged: nobody is chased again
    with transaction(rt.engine) as db:
        assert (
            db.exec(select(Flag).where(Flag.kind == "crisis")).one().status == "acknowledged"
        )  # never closed by itself


def test_non_urgent_flags_wait_for_one_daily_digest_of_exactly_the_new_ones(
    emailing: tuple[Runtime, Inbox], phone: Phone, clock: FixedClock
) -> None:
    rt, inbox = emailing
    clock.set(datetime(2026, 11, 23, 21, 30, tzinfo=UTC))  # Monday night
    phone.text("+447700900101", "call me")
    phone.text("+447700900102", "hello, quick question")
    assert inbox.messages == []  # nothing non-urgent at night, or at once
    with transaction(rt.engine) as db:  # Jordan's is dealt with before the digest goes
        from assistant.care.flags import resolve

        jordans = db.exec(select(Flag).where(Flag.reason.contains("message"))).one()  # type: ignore[attr-defined]
        resolve(db, jordans, by="sam.jones@example.org", note="Replied", now=clock.now())
    tick(rt, datetime(2026, 11, 24, 8, 29, tzinfo=UTC))
    assert inbox.messages == []
    tick(rt, datetime(2026, 11, 24, 8, 30, tzinfo=UTC))  # the service's digest time
    [digest] = inbox.messages
    assert digest["To"] == "sam.jones@example.org" and "digest" in digest["Subject"]
    body = digest.get_payload()
    assert "2 new flag(s)" in body and "Alex (P001): Asked for a call" in body and "Jordan (P002)" in body
    assert "(resolved since)" in body.split("Jordan (P002)")[1].splitlines()[0]
    assert "(resolved since)" not in body.split("Jordan (P002)")[0]
    assert "quick question" not in body  # never what they wrote
    tick(rt, datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    assert len(inbox.messages) == 1  # one a day
    clock.set(datetime(2026, 11, 24, 13, 0, tzinfo=UTC))
    phone.text("+447700900101", "call me please")  # evidence on the open flag: not new
    phone.text("+447700900103", "can you ring me")
    tick(rt, datetime(2026, 11, 25, 8, 30, tzinfo=UTC))
    assert [m["To"] for m in inbox.messages[1:]] == ["chris.lee@example.org"]  # Sam had nothing new
    assert "Priya (P003)" in inbox.messages[1].get_payload()


def test_digests_due_together_each_list_the_flags_since_their_own_last_one(
    emailing: tuple[Runtime, Inbox], phone: Phone, clock: FixedClock
) -> None:
    rt, inbox = emailing
    clock.set(datetime(2026, 11, 23, 21, 30, tzinfo=UTC))  # Monday night
    phone.text("+447700900101", "call me")  # Alex, Sam's
    phone.text("+447700900103", "can you ring me")  # Priya, Chris's
    with transaction(rt.engine) as db:  # Sam's last digest went after those; Chris's before them
        for email, last in (("sam.jones", 24), ("chris.lee", 23)):
            specialist = db.exec(select(Specialist).where(Specialist.email == f"{email}@example.org")).one()
            specialist.last_digest_at = datetime(2026, 11, last, 8, 30, tzinfo=UTC)
            db.add(specialist)
    tick(rt, datetime(2026, 11, 25, 8, 30, tzinfo=UTC))
    assert _to(inbox) == ["chris.lee@example.org"]  # nothing new for Sam since his
    assert "1 new flag(s)" in inbox.messages[0].get_payload() and "Priya (P003)" in inbox.messages[0].get_payload()
    with transaction(rt.engine) as db:
        marked = db.exec(select(Specialist.last_digest_at)).all()
    assert set(marked) == {datetime(2026, 11, 25, 8, 30, tzinfo=UTC)}  # both marked sent to now


def test_a_digest_time_moved_later_on_the_day_of_a_digest_waits_for_the_next_day(
    emailing: tuple[Runtime, Inbox], phone: Phone, clock: FixedClock
) -> None:
    rt, inbox = emailing
    clock.set(datetime(2026, 11, 23, 21, 30, tzinfo=UTC))  # Monday night
    phone.text("+447700900101", "call me")
    tick(rt, datetime(2026, 11, 24, 8, 30, tzinfo=UTC))  # the service's digest time
    assert _to(inbox) == ["sam.jones@example.org"]
    with transaction(rt.engine) as db:
        sam = db.exec(select(Specialist).where(Specialist.email == "sam.jones@example.org")).one()
        sam.digest_time = "17:00"
        db.add(sam)
    clock.set(datetime(2026, 11, 24, 13, 0, tzinfo=UTC))
    phone.text("+447700900102", "hello, quick question")
    tick(rt, datetime(2026, 11, 24, 17, 0, tzinfo=UTC))
    assert len(inbox.messages) == 1  # one a day, whenever it is set for
    tick(rt, datetime(2026, 11, 25, 16, 59, tzinfo=UTC))
    assert len(inbox.messages) == 1
    tick(rt, datetime(2026, 11, 25, 17, 0, tzinfo=UTC))  # the new time, the next day
    assert _to(inbox) == ["sam.jones@example.org"] * 2
    body = inbox.messages[1].get_payload()
    assert "1 new flag(s)" in body and "Jordan (P002)" in body  # nothing since the last one was lost


def test_mail_server_down_keeps_the_email_queued(emailing: tuple[Runtime, Inbox], phone: Phone) -> None:
    rt, inbox = emailing
    rt.settings = replace(rt.settings, smtp_port=free_port())  # nothing listens there
    phone.text("+447700900101", "I want to kill myself")
    with transaction(rt.engine) as db:
        notes = db.exec(select(Notification)).all()
        assert [(n.status, n.attempts) for n in notes] == [("queued", 1), ("queued", 1)]
    rt.settings = replace(rt.settings, smtp_port=inbox.port)
    assert send_notifications(rt, rt.clock.now() + timedelta(minutes=5)) == 2
    assert sorted(_to(inbox)) == ["duty@service.example", "sam.jones@example.org"]


@pytest.mark.parametrize("address", ["duty@x.org\r\nBcc: everyone@x.org", "a@b.c, d@e.f", "not-an-address"])
def test_duty_contact_cannot_smuggle_headers(address: str) -> None:
    with pytest.raises(ValueError, match="duty_contact_email"):
        ServiceSettings.from_json({"duty_contact_email": address})


def test_crisis_from_someone_who_opted_out_still_reaches_people(emailing: tuple[Runtime, Inbox], phone: Phone) -> None:
    from assistant.transports import SendResult

    rt, inbox = emailing
    phone.text("+447700900101", "STOP")

    class CarrierRefuses:
        name, senders = "scripted", 1

        def send(self, **_: object) -> SendResult:
            return SendResult(ok=False, error_code="21610", error_message="opted out")

        def lookup(self, **_: object) -> None:
            return None

    rt.transport = CarrierRefuses()  # type: ignore[assignment]
    phone.text("+447700900101", "I want to kill myself")
    # People are told at once, and again when the signposting could not be delivered.
    assert set(_to(inbox)) == {"duty@service.example", "sam.jones@example.org"} and len(inbox.messages) == 4
    with transaction(rt.engine) as db:
        flag = db.exec(select(Flag).where(Flag.kind == "crisis")).one()
    assert any(e.get("signposting_not_delivered") == "21610" for e in flag.evidence)


def _with_escalation_contact(db: Session) -> Service:
    """The one service, given manager@service.example as its escalation contact."""
    service = db.exec(select(Service)).one()
    service.settings = ServiceSettings.from_json(
        service.settings | {"escalation_contact_email": "manager@service.example"}
    ).to_json()
    db.add(service)
    return service


def test_escalation_contact_hears_from_the_second_notice_on(emailing: tuple[Runtime, Inbox], phone: Phone) -> None:
    rt, inbox = emailing
    with transaction(rt.engine) as db:
        _with_escalation_contact(db)
    phone.text("+447700900101", "I can't go on")
    start = rt.clock.now()
    assert "manager@service.example" not in _to(inbox)  # the first notice: the specialist and the duty contact
    tick(rt, start + timedelta(minutes=59))
    assert "manager@service.example" not in _to(inbox)
    tick(rt, start + timedelta(minutes=60))  # the first reminder: nobody has acknowledged it
    assert _to(inbox)[2:] == ["sam.jones@example.org", "duty@service.example", "manager@service.example"]


class SameAnswer:
    """Twilio's side, scripted: every send gets the same answer."""

    name, senders = "scripted", 1

    def __init__(self, result: SendResult) -> None:
        self.result = result

    def send(self, **_: object) -> SendResult:
        return self.result

    def lookup(self, **_: object) -> None:
        return None


def _texts(inbox: Inbox) -> list[str]:
    return [bytes(m.get_payload(decode=True)).decode().replace("\r\n", "\n") for m in inbox.messages]


WRITTEN = "The crisis signposting text to them (written Sun 22 Nov 12:00 UTC)"


def test_the_urgent_email_says_the_signposting_was_sent(emailing: tuple[Runtime, Inbox], phone: Phone) -> None:
    rt, inbox = emailing
    phone.text("+447700900101", "I want to end my life")
    texts = _texts(inbox)
    assert len(texts) == 2
    for text in texts:
        assert f"{WRITTEN} was sent at Sun 22 Nov 12:00 UTC." in text
        assert "not watched around the clock" in text
        assert "NOT" not in text and "end my life" not in text
    with transaction(rt.engine) as db:
        kept = [n.body for n in db.exec(select(Notification).order_by(col(Notification.id))).all()]
    assert [k + "\n" for k in kept] == texts  # the record is the email as it went


def test_the_urgent_email_says_twilio_refused_the_signposting(emailing: tuple[Runtime, Inbox], phone: Phone) -> None:
    rt, inbox = emailing
    rt.transport = SameAnswer(SendResult(ok=False, error_code="21610", error_message="opted out"))  # type: ignore[assignment]
    phone.text("+447700900101", "I want to end my life")
    texts = _texts(inbox)
    assert len(texts) == 4  # at once, and the notice that it was refused
    for text in texts:
        assert (
            f"{WRITTEN} was NOT delivered: Twilio refused it with error 21610: the number has blocked our texts "
            "(STOP). Phone them instead." in text
        )
        assert "was sent" not in text and "end my life" not in text


def test_the_urgent_email_says_the_signposting_is_waiting(emailing: tuple[Runtime, Inbox], phone: Phone) -> None:
    rt, inbox = emailing
    rt.transport = SameAnswer(SendResult(ok=False, error_code="20429", transient=True))  # type: ignore[assignment]
    phone.text("+447700900101", "I want to end my life")
    for text in _texts(inbox):
        assert (
            f"{WRITTEN} is queued, waiting to send at Sun 22 Nov 12:00 UTC (Twilio error 20429 on the last try)."
            in text
        )


def test_signposting_undelivered_after_the_email_is_a_new_notice(
    emailing: tuple[Runtime, Inbox], phone: Phone, clock: FixedClock
) -> None:
    rt, inbox = emailing
    phone.text("+447700900101", "I want to end my life")
    assert all("was sent at" in text for text in _texts(inbox))
    [crisis] = [m for m in outbound(rt) if m.message_key == "common/crisis"]
    assert crisis.provider_sid
    clock.set(clock.now() + timedelta(minutes=3))
    phone.status(crisis.provider_sid, "undelivered", "30003")
    phone.status(crisis.provider_sid, "undelivered", "30003")  # a repeated callback tells nobody twice
    assert send_notifications(rt, clock.now()) == 2
    later = _texts(inbox)[2:]
    assert sorted(m["To"] for m in inbox.messages[2:]) == ["duty@service.example", "sam.jones@example.org"]
    for text in later:
        assert (
            f"{WRITTEN} was NOT delivered: Twilio refused it with error 30003: their phone could not be reached."
            in text
        )


def test_log_only_mail_sends_nothing_and_logs_no_recipient_subject_body_or_link(
    rt: Runtime, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    rt.settings = replace(rt.settings, smtp_host="", mail_log_only=True, dashboard_url="https://dash.example")
    now = rt.clock.now()
    with transaction(rt.engine) as db:
        db.add(
            Notification(
                to_email="sam.jones@example.org",
                subject="Reset your participant assistant password",
                body="Use this link: https://assistant.example/reset/SECRET-TOKEN for Alex (P001)",
                next_attempt_at=now,
                created_at=now,
            )
        )
    caplog.set_level("DEBUG")
    assert send_notifications(rt, now) == 1
    logged = capsys.readouterr().out + caplog.text
    assert "not sent" in caplog.text
    for secret in ("sam.jones", "Reset your", "SECRET-TOKEN", "https://", "Alex", "P001"):
        assert secret not in logged
    # Without log-only (development) the same email is printed whole: the mode is what hides it.
    rt.settings = replace(rt.settings, mail_log_only=False)
    with transaction(rt.engine) as db:
        db.add(
            Notification(to_email="a@b.example", subject="s", body="SECRET-TOKEN", next_attempt_at=now, created_at=now)
        )
    send_notifications(rt, now)
    assert "SECRET-TOKEN" in capsys.readouterr().out


def test_a_crisis_on_the_caseload_of_a_specialist_who_has_left_goes_to_those_who_can_act(
    emailing: tuple[Runtime, Inbox], phone: Phone
) -> None:
    """Sam's dashboard account is deactivated: the duty and escalation contacts hear at once,
    and are asked to move the caseload; nothing goes to an address nobody reads."""
    from assistant.care.signins import deactivate
    from assistant.db.models import Specialist, User

    rt, inbox = emailing
    with transaction(rt.engine) as db:
        service = _with_escalation_contact(db)
        sam = db.exec(select(Specialist).where(Specialist.email == "sam.jones@example.org")).one()
        user = User(email=sam.email, password_hash="x", role="specialist", service_id=service.id, specialist_id=sam.id)
        db.add(user)
        db.flush()
        deactivate(db, user, rt.clock.now())
    phone.text("+447700900101", "I want to end my life")
    assert sorted(_to(inbox)) == ["duty@service.example", "manager@service.example"]
    assert "please move them to another specialist" in _texts(inbox)[0].replace("\n", " ")
    # Nor is the person in crisis told that someone who has left will be in touch with them.
    reply = outbound(rt)[-1].body
    assert "Samaritans" in reply and "Sam " not in reply and reply.endswith("The team will be in touch.")
