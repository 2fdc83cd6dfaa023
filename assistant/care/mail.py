"""Sending the email the notices queued: each claimed on its own, the crisis signposting's fate added
as it goes, delivered by SMTP (or held to the log or the console), retried with backoff."""

from __future__ import annotations

import logging
import smtplib
import sys
from datetime import datetime, timedelta
from email.message import EmailMessage

import sqlalchemy as sa
from sqlmodel import Session, col, select

from assistant.content.library import CRISIS_KEY
from assistant.db.driver import Prepared
from assistant.db.models import Flag, Message, MessageStatus, Notification, NotificationStatus, table
from assistant.db.rows import claim, write_now, write_row
from assistant.db.units import transaction
from assistant.runtime import Runtime

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8


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
    if sms.status in (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ):
        delivered = " and delivered" if sms.status != MessageStatus.SENT else ""
        return (
            f"{text} was sent at {sms.sent_at or sms.at:{WHEN}}{delivered}. "
            "It tells them texts are not watched around the clock."
        )
    if sms.status == MessageStatus.QUEUED:
        tried = f" (Twilio error {sms.error_code} on the last try)" if sms.error_code else ""
        return f"{text} is queued, waiting to send at {max(sms.next_attempt_at or now, now):{WHEN}}{tried}."
    if sms.status == MessageStatus.SENDING:
        return f"{text} was being sent when this email went."
    if sms.status in (MessageStatus.FAILED, MessageStatus.UNDELIVERED):
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


_DUE_EMAILS = Prepared(
    sa.select(_notification.c.id)
    .where(
        _notification.c.status == NotificationStatus.QUEUED,
        _notification.c.next_attempt_at <= sa.bindparam("now", type_=_notification.c.next_attempt_at.type),
    )
    .order_by(_notification.c.id)
    .limit(sa.bindparam("limit", type_=sa.Integer))
)


def send_notifications(rt: Runtime, now: datetime, *, limit: int = 100) -> int:
    sent = 0
    ids = _DUE_EMAILS.read(rt.engine, {"now": now, "limit": limit}).scalars()  # each claimed below
    for note_id in ids:
        with transaction(rt.engine) as db:
            note = claim(db, Notification, note_id)
            if note is None or note.status != NotificationStatus.QUEUED:
                continue
            write_now(db, note, status=NotificationStatus.SENDING, attempts=note.attempts + 1)
            signposting = _signposting(db, note, now)
            body = f"{note.body}\n\n{signposting}" if signposting else note.body
        try:
            _deliver(rt, note, body)
            outcome, error = "sent", None
        except (OSError, smtplib.SMTPException) as exc:
            outcome, error = "failed", str(exc)[:300]
            log.warning("email %s failed: %s", note.id, type(exc).__name__)
        with transaction(rt.engine) as db:
            if outcome == "sent":  # the email as it went
                write_row(db, Notification, note_id, status=NotificationStatus.SENT, sent_at=now, body=body)
                sent += 1
            elif note.attempts < MAX_ATTEMPTS:
                later = now + timedelta(minutes=min(2**note.attempts, 60))
                write_row(
                    db, Notification, note_id, status=NotificationStatus.QUEUED, error=error, next_attempt_at=later
                )
            else:
                write_row(db, Notification, note_id, status=NotificationStatus.FAILED, error=error)
    return sent
