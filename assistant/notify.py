"""Email about flags: queued in the same transaction as the flag, sent after commit.

Emails say who needs attention and where to look, never what the participant
wrote: email leaves the service's systems, the dashboard does not.
"""

from __future__ import annotations

import logging
import smtplib
import sys
from datetime import datetime, timedelta
from email.message import EmailMessage

import sqlalchemy as sa
from sqlmodel import Session, col, select

from .content import CRISIS_KEY
from .db import skip_locked, transaction
from .models import Flag, Message, Notification, Participant, Service, Specialist, table
from .runtime import Runtime
from .service_settings import ServiceSettings, all_services, for_service

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
SUBJECTS = {"urgent": "URGENT: a participant needs contact today"}
DIGEST_SUBJECT = "Your participant assistant digest"


def _safe_header(text: str) -> str:
    """No line breaks in a header, whatever the data: header injection is refused."""
    return " ".join(text.split())[:180]


def queue_flag_emails(db: Session, flag: Flag, now: datetime, *, escalation: int = 0) -> list[Notification]:
    """Urgent flags at once, day or night; everything else waits for the daily digest."""
    if flag.severity not in SUBJECTS:
        return []
    participant = db.get(Participant, flag.participant_id)
    specialist = db.get(Specialist, flag.specialist_id)
    service = db.get(Service, participant.service_id) if participant else None
    settings = for_service(db, service.id if service else None)
    recipients = [specialist.email] if specialist else []
    if flag.severity == "urgent" and settings.duty_contact_email:
        recipients.append(settings.duty_contact_email)
    if flag.severity == "urgent" and escalation >= 2 and settings.escalation_contact_email:
        recipients.append(settings.escalation_contact_email)
    subject = SUBJECTS[flag.severity]
    if escalation:
        subject = f"Not yet acknowledged ({escalation}): {subject}"
    who = f"{participant.first_name} (participant {participant.external_id})" if participant else "a participant"
    body = "\n".join(
        [
            f"{flag.reason}.",
            "",
            f"Who: {who} (service {service.slug if service else '-'}), on the caseload of "
            f"{specialist.name or specialist.email if specialist else 'no specialist'}.",
            f"Raised: {flag.created_at:%a %d %b %Y %H:%M} UTC." if flag.created_at else "",
            "",
            "Open the participant's record on the dashboard to see the messages and acknowledge this flag."
            if flag.severity == "action"
            else "This was raised because of what the participant said. Please contact them today and "
            "acknowledge this flag on the dashboard.",
        ]
    )
    if settings.duty_contact_phone and participant is not None and not escalation:
        _text_duty_contact(db, settings.duty_contact_phone, participant.external_id, now)
    queued = []
    for address in dict.fromkeys(recipients):
        note = Notification(
            flag_id=flag.id,
            to_email=address,
            subject=_safe_header(subject),
            body=body,
            next_attempt_at=now,
            created_at=now,
        )
        db.add(note)
        queued.append(note)
    db.flush()
    return queued


def _text_duty_contact(db: Session, phone: str, external_id: str, now: datetime) -> None:
    """A short SMS to the duty contact: which record to open, nothing about what was said."""
    from .models import Message

    body = f"Participant assistant: urgent flag for participant {external_id}. Please check the dashboard now."
    db.add(
        Message(
            participant_id=None,
            direction="out",
            body=body,
            at=now,
            status="queued",
            message_key="staff/urgent_flag",
            phone=phone,
            next_attempt_at=now,
            expires_at=now + timedelta(hours=6),
        )
    )


_specialist = table(Specialist)
_DIGEST_TIMES = sa.select(
    _specialist.c.id, _specialist.c.service_id, _specialist.c.digest_time, _specialist.c.last_digest_at
).order_by(_specialist.c.id)


def queue_digests(db: Session, now: datetime, default_timezone: str) -> int:
    """One email per specialist a day, at their chosen time, listing exactly the flags new since the last."""
    from zoneinfo import ZoneInfo

    from .timing import local_at, parse_hhmm

    queued = 0
    services = all_services(db)
    today = now.astimezone(ZoneInfo(default_timezone)).date()
    # Runs on every tick and is due once a day: who is due is worked out from four columns, and
    # only their rows are loaded.
    for row in db.execute(_DIGEST_TIMES).all():
        settings = services.get(row.service_id) or ServiceSettings()
        moment = local_at(today, parse_hhmm(row.digest_time or settings.digest_time), default_timezone)
        if now < moment or (row.last_digest_at and row.last_digest_at >= moment):
            continue
        specialist = db.get(Specialist, row.id)
        assert specialist is not None
        since = specialist.last_digest_at or moment - timedelta(days=1)
        new = db.exec(
            select(Flag)
            .where(
                Flag.specialist_id == specialist.id,
                col(Flag.severity).in_(("action", "info")),
                col(Flag.created_at) > since,
                col(Flag.created_at) <= now,
            )
            .order_by(col(Flag.severity), col(Flag.created_at))
        ).all()
        specialist.last_digest_at = now
        db.add(specialist)
        if not new:
            continue  # only when there is something new
        people = {
            p.id: p
            for p in db.exec(select(Participant).where(col(Participant.id).in_({f.participant_id for f in new}))).all()
        }
        lines = [f"{len(new)} new flag(s) on your caseload since {since:%a %d %b %H:%M} UTC:", ""]
        for flag in new:
            person = people.get(flag.participant_id)
            label = f"{person.first_name} ({person.external_id})" if person else "?"
            lines.append(f"- [{flag.severity}] {label}: {flag.reason}")
        lines += ["", "Open the dashboard to see each one and acknowledge it."]
        db.add(
            Notification(
                to_email=specialist.email,
                subject=DIGEST_SUBJECT,
                body="\n".join(lines),
                next_attempt_at=now,
                created_at=now,
            )
        )
        queued += 1
    return queued


WHEN = "%a %d %b %H:%M UTC"
# What a Twilio error on the signposting text means, for the person who will phone instead.
TWILIO_ERRORS = {
    "21211": "not a valid number",
    "21610": "the number has blocked our texts (STOP)",
    "21614": "not a mobile number",
    "30003": "their phone could not be reached",
    "30005": "unknown number",
    "30006": "a landline",
}


def _signposting(db: Session, note: Notification, now: datetime) -> str:
    """What happened to the crisis signposting, read when the email goes (not when it was queued):
    sent, waiting to send, or refused by Twilio with its code. Never what the participant wrote."""
    flag = db.get(Flag, note.flag_id) if note.flag_id else None
    if flag is None or flag.kind != "crisis":
        return ""
    sms = db.exec(
        select(Message)
        .where(
            Message.participant_id == flag.participant_id,
            Message.direction == "out",
            Message.message_key == CRISIS_KEY,
            col(Message.at) <= (note.created_at or now),
        )
        .order_by(col(Message.id).desc())
    ).first()
    if sms is None or sms.at is None:
        return "No crisis signposting text has been sent to them: phone them."
    text = f"The crisis signposting text to them (written {sms.at:{WHEN}})"
    if sms.status in ("sent", "delivered", "read"):
        delivered = " and delivered" if sms.status != "sent" else ""
        return (
            f"{text} was sent at {sms.sent_at or sms.at:{WHEN}}{delivered}. "
            "It tells them texts are not watched around the clock."
        )
    if sms.status == "queued":
        tried = f" (Twilio error {sms.error_code} on the last try)" if sms.error_code else ""
        return f"{text} is queued, waiting to send at {max(sms.next_attempt_at or now, now):{WHEN}}{tried}."
    if sms.status == "sending":
        return f"{text} was being sent when this email went."
    if sms.status in ("failed", "undelivered"):
        code = sms.error_code or "none given"
        meaning = f": {TWILIO_ERRORS[code]}" if code in TWILIO_ERRORS else ""
        return f"{text} was NOT delivered: Twilio refused it with error {code}{meaning}. Phone them instead."
    return f"{text} was NOT sent ({sms.error_message or sms.status}). Phone them instead."


def _deliver(rt: Runtime, note: Notification, body: str) -> None:
    message = EmailMessage()
    message["From"] = rt.settings.mail_from
    message["To"] = note.to_email
    message["Subject"] = note.subject
    if rt.settings.dashboard_url and note.flag_id:
        message.set_content(f"{body}\n\n{rt.settings.dashboard_url.rstrip('/')}/flags/{note.flag_id}\n")
    else:
        message.set_content(body + "\n")
    if not rt.settings.smtp_host:
        print(f"\n[email to {note.to_email}] {note.subject}\n{body}\n", file=sys.stdout, flush=True)
        return
    with smtplib.SMTP(rt.settings.smtp_host, int(rt.settings.smtp_port), timeout=15) as smtp:
        if rt.settings.smtp_starttls:
            smtp.starttls()
        if rt.settings.smtp_user:
            smtp.login(rt.settings.smtp_user, rt.settings.smtp_password)
        smtp.send_message(message)


_notification = table(Notification)
_DUE_EMAILS = (
    sa.select(_notification.c.id)
    .where(
        _notification.c.status == "queued",
        _notification.c.next_attempt_at <= sa.bindparam("now", type_=_notification.c.next_attempt_at.type),
    )
    .order_by(_notification.c.id)
    .limit(sa.bindparam("limit", type_=sa.Integer))
)


def send_notifications(rt: Runtime, now: datetime, *, limit: int = 100) -> int:
    sent = 0
    with transaction(rt.engine) as db:
        ids = db.execute(_DUE_EMAILS, {"now": now, "limit": limit}).scalars().all()
    for note_id in ids:
        with transaction(rt.engine) as db:
            note = db.exec(skip_locked(db, select(Notification).where(Notification.id == note_id))).first()
            if note is None or note.status != "queued":
                continue
            note.status, note.attempts = "sending", note.attempts + 1
            db.add(note)
            signposting = _signposting(db, note, now)
            body = f"{note.body}\n\n{signposting}" if signposting else note.body
        try:
            _deliver(rt, note, body)
            outcome, error = "sent", None
        except (OSError, smtplib.SMTPException) as exc:
            outcome, error = "failed", str(exc)[:300]
            log.warning("email %s failed: %s", note.id, type(exc).__name__)
        with transaction(rt.engine) as db:
            row = db.get(Notification, note_id)
            assert row is not None
            if outcome == "sent":
                row.status, row.sent_at, row.body = "sent", now, body  # the email as it went
                sent += 1
            elif row.attempts < MAX_ATTEMPTS:
                row.status, row.error = "queued", error
                row.next_attempt_at = now + timedelta(minutes=min(2**row.attempts, 60))
            else:
                row.status, row.error = "failed", error
            db.add(row)
    return sent
