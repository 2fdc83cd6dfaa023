"""Telling people about flags: queued in the same transaction as the flag, sent after commit.

An urgent flag is told at once (email to the specialist and the duty contact, a
text to the duty phone) and again at the service's interval until someone
acknowledges it: the flag row holds when the next notice is due, and the clock
claims due flags one at a time. Other flags wait for the daily digest.

Emails and texts say who needs attention and where to look, never what the
participant wrote: they leave the service's systems, the dashboard does not.
"""

from __future__ import annotations

import logging
import smtplib
import sys
from datetime import datetime, timedelta
from email.message import EmailMessage

import sqlalchemy as sa
from sqlmodel import Session, col, select

from assistant.content.library import CRISIS_KEY
from assistant.db.models import Flag, Message, Notification, Participant, Service, Specialist, table
from assistant.db.service_settings import ServiceSettings, all_services, for_service
from assistant.db.units import lock_participant, skip_locked, transaction
from assistant.outbox.writer import queue_text
from assistant.runtime import Runtime

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
SUBJECTS = {"urgent": "URGENT: a participant needs contact today"}
DIGEST_SUBJECT = "Your participant assistant digest"
# A participant who writes again about the same crisis brings the next notice forward, to no
# sooner than this after the last one: a run of texts is one notice, not one each.
NEWS_GAP = timedelta(minutes=15)
DUTY_TEXT_VALID_FOR = timedelta(hours=6)
ESCALATION_BATCH = 200


def _safe_header(text: str) -> str:
    """No line breaks in a header, whatever the data: header injection is refused."""
    return " ".join(text.split())[:180]


def queue_flag_emails(db: Session, flag: Flag, now: datetime, *, escalation: int = 0) -> list[Notification]:
    """Urgent flags at once, day or night; everything else waits for the daily digest.

    `escalation` counts the notices already sent: from the second notice on (the first
    reminder), the service's escalation contact is told as well."""
    if flag.severity not in SUBJECTS:
        return []
    participant = db.get(Participant, flag.participant_id)
    specialist = db.get(Specialist, flag.specialist_id)
    service = db.get(Service, participant.service_id) if participant else None
    settings = for_service(db, service.id if service else None)
    recipients = [specialist.email] if specialist else []
    if flag.severity == "urgent" and settings.duty_contact_email:
        recipients.append(settings.duty_contact_email)
    if flag.severity == "urgent" and escalation >= 1 and settings.escalation_contact_email:
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
    if escalation:
        body += (
            f"\n\nReminder {escalation}: nobody has acknowledged this flag yet. Reminders go on every "
            f"{settings.escalate_after_minutes} minutes until someone does. "
            f"Items of evidence on it so far: {len(flag.evidence)}."
        )
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


def _text_duty_contact(db: Session, phone: str, external_id: str, now: datetime, *, reminder: int) -> Message:
    """A short SMS to the duty contact: which record to open, nothing about what was said."""
    if reminder:
        body = (
            f"Participant assistant: urgent flag for participant {external_id} is not yet acknowledged "
            f"(reminder {reminder}). Please check the dashboard now."
        )
    else:
        body = f"Participant assistant: urgent flag for participant {external_id}. Please check the dashboard now."
    return _staff_text(db, phone, body, now)


def _staff_text(db: Session, phone: str, body: str, now: datetime) -> Message:
    return queue_text(db, phone=phone, body=body, key="staff/urgent_flag", now=now, valid_for=DUTY_TEXT_VALID_FOR)


UNKNOWN_SUBJECT = "URGENT: a text from an unknown number reads like a crisis"


def tell_duty_contacts_about_unknown_number(db: Session, now: datetime) -> None:
    """A crisis text from a number on no caseload: every service's duty contact hears at once,
    by email and text, where to look. Nothing about what was said, nor the number, leaves."""
    told = 0
    for service_id, settings in all_services(db).items():
        body = (
            "A text from a phone number that is on no caseload reads like a crisis. The assistant has "
            "sent that number the crisis signposting. It may be someone on a caseload with a new or "
            "shared phone.\n\nPlease open Unknown numbers on the dashboard today: read the text, link "
            "it to the participant if you can, and decide who contacts them."
        )
        if settings.duty_contact_email:
            db.add(
                Notification(
                    to_email=settings.duty_contact_email,
                    subject=UNKNOWN_SUBJECT,
                    body=body,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            db.info["emails_queued"] = True
            told += 1
        if settings.duty_contact_phone:
            text = _staff_text(
                db,
                settings.duty_contact_phone,
                "Participant assistant: a text from an unknown number reads like a crisis. "
                "Please check Unknown numbers on the dashboard now.",
                now,
            )
            assert text.id is not None
            db.info.setdefault("staff_outbox", []).append(text.id)
            told += 1
        if not (settings.duty_contact_email or settings.duty_contact_phone):
            log.warning("crisis text from an unknown number: service %s has no duty contact", service_id)
    if not told:
        log.error("crisis text from an unknown number: no service has a duty contact to tell")
    db.flush()


def staff_outbox(db: Session) -> list[int]:
    """Texts to staff this unit of work queued: the caller sends them once it commits, with its own."""
    found: list[int] = db.info.get("staff_outbox", [])
    return found


def tell_urgent(db: Session, flag: Flag, now: datetime) -> None:
    """One notice about an urgent flag: emails, a text to the duty phone, and the next notice planned.

    The notice goes to the specialist and the duty contact (from the second notice on, the
    escalation contact too). The next is due after the service's interval; acknowledging
    the flag cancels it. Emails and the text are sent as soon as this transaction commits.
    """
    participant = db.get(Participant, flag.participant_id)
    settings = for_service(db, participant.service_id if participant else None)
    if queue_flag_emails(db, flag, now, escalation=flag.notices):
        db.info["emails_queued"] = True
    if settings.duty_contact_phone and participant is not None:
        text = _text_duty_contact(db, settings.duty_contact_phone, participant.external_id, now, reminder=flag.notices)
        assert text.id is not None
        db.info.setdefault("staff_outbox", []).append(text.id)
    elif not settings.duty_contact_email:
        log.warning("urgent flag %s: service %s has no duty contact", flag.id, participant and participant.service_id)
    flag.notices += 1
    flag.last_notice_at = now
    flag.next_notice_at = now + timedelta(minutes=settings.escalate_after_minutes)
    db.add(flag)
    db.flush()


def urgent_news(db: Session, flag: Flag, now: datetime, *, at_once: bool = False) -> None:
    """More evidence on an urgent flag that is already open.

    After someone acknowledged it, new words from the participant need a person again: the
    flag is open once more and people are told at once. While nobody has acknowledged it, the
    next notice comes forward (to no sooner than NEWS_GAP after the last), so a run of texts
    brings one notice with the evidence gathered, not hundreds. `at_once` is for news that
    changes what people must do (the signposting could not be delivered): told now.
    """
    if flag.status == "acknowledged":
        flag.note = ((flag.note + "\n") if flag.note else "") + (
            f"{now:%Y-%m-%d %H:%M} assistant: new evidence after {flag.acknowledged_by} acknowledged this; "
            "it needs acknowledging again"
        )
        flag.status = "open"
        at_once = True
    if flag.status != "open":
        return
    if at_once:
        tell_urgent(db, flag, now)
        return
    soonest = max(now, (flag.last_notice_at or now) + NEWS_GAP)
    if flag.next_notice_at is None or soonest < flag.next_notice_at:
        flag.next_notice_at = soonest
    if flag.next_notice_at <= now:
        tell_urgent(db, flag, now)
        return
    db.add(flag)
    db.flush()


_flag = table(Flag)
_DUE_NOTICES = (
    sa.select(_flag.c.id, _flag.c.participant_id)
    .where(
        _flag.c.status == "open",
        _flag.c.next_notice_at <= sa.bindparam("now", type_=_flag.c.next_notice_at.type),
    )
    .order_by(_flag.c.next_notice_at, _flag.c.id)
    .limit(ESCALATION_BATCH)
)
_FLAG = select(Flag).where(Flag.id == sa.bindparam("id"))


def escalate_due(rt: Runtime, now: datetime) -> int:
    """Urgent flags nobody has acknowledged in the service's time: tell people again, each in its
    own transaction under the participant's lock (as their texts are handled), so two clocks never
    send the same reminder. The emails and texts are queued for the sends that follow in the tick."""
    told = 0
    with transaction(rt.engine) as db:
        due = db.execute(_DUE_NOTICES, {"now": now}).all()
    for flag_id, participant_id in due:
        try:
            with transaction(rt.engine) as db:
                lock_participant(db, participant_id)
                flag = db.exec(skip_locked(db, _FLAG), params={"id": flag_id}).first()
                if flag is None or flag.status != "open" or flag.next_notice_at is None or flag.next_notice_at > now:
                    continue  # acknowledged meanwhile, or another clock told them
                tell_urgent(db, flag, now)
                told += 1
        except Exception:  # one flag's fault stays with it (still due next tick); the rest are told
            log.exception("reminder for urgent flag %s failed", flag_id)
    return told


_specialist = table(Specialist)
_DIGEST_TIMES = sa.select(
    _specialist.c.id, _specialist.c.service_id, _specialist.c.digest_time, _specialist.c.last_digest_at
).order_by(_specialist.c.id)


def queue_digests(db: Session, now: datetime, default_timezone: str) -> int:
    """One email per specialist a day, at their chosen time, listing exactly the flags new since the last."""
    from zoneinfo import ZoneInfo

    from assistant.timing import local_at, parse_hhmm

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
    if not rt.settings.smtp_host and rt.settings.mail_log_only:
        # Log-only mode: no recipient, subject, body or link reaches the log (they hold personal
        # data and, for password resets, a working sign-in link).
        log.info("email %s not sent: no SMTP host (ASSISTANT_MAIL_LOG_ONLY), %d characters held", note.id, len(body))
        return
    if not rt.settings.smtp_host:  # development: the whole email on the console
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
