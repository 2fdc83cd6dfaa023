"""Telling people about flags: queued in the same transaction as the flag, sent after commit.

An urgent flag is told at once (email to the specialist and the duty contact, a
text to the duty phone) and again at the service's interval until someone
acknowledges it: the flag row holds when the next notice is due, and the clock
claims due flags one at a time. Other flags wait for the daily digest (`digests.py`); the
email goes out through `mail.py`.

Emails and texts say who needs attention and where to look, never what the
participant wrote: they leave the service's systems, the dashboard does not.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from assistant.db.driver import Prepared
from assistant.db.models import (
    Flag,
    FlagStatus,
    Notification,
    Participant,
    Service,
    Specialist,
    specialist_has_left,
    table,
)
from assistant.db.rows import claim
from assistant.db.service_settings import ServiceSettings, all_services, for_service
from assistant.db.units import participant_unit, queued
from assistant.outbox.writer import queue_text
from assistant.runtime import Runtime

log = logging.getLogger(__name__)

SUBJECTS = {"urgent": "URGENT: a participant needs contact today"}
# A participant who writes again about the same crisis brings the next notice forward, to no
# sooner than this after the last one: a run of texts is one notice, not one each.
NEWS_GAP = timedelta(minutes=15)
DUTY_TEXT_VALID_FOR = timedelta(hours=6)
ESCALATION_BATCH = 200


def _safe_header(text: str) -> str:
    """No line breaks in a header, whatever the data: header injection is refused."""
    return " ".join(text.split())[:180]


SOMEONE_AT_RISK = (
    "a text from their phone speaks of someone at risk: someone texting about them, or them about someone close to them"
)

FROM_OTHERS = "of what they said about someone threatening or hurting them"


def _why_raised(flag: Flag) -> str:
    """Danger from another person, or risk words about another person (someone texting about them,
    or them about someone close to them in danger): said so, never what was said."""
    evidence = [e for e in flag.evidence if isinstance(e, dict)]
    if any(e.get("from_others") for e in evidence):
        return FROM_OTHERS
    if any(e.get("by_someone_else") for e in evidence):
        return SOMEONE_AT_RISK
    return "of what the participant said"


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
    left = specialist is not None and has_left(db, specialist)
    recipients = _recipients(flag, specialist, settings, left=left, escalation=escalation)
    subject = SUBJECTS[flag.severity]
    if escalation:
        subject = f"Not yet acknowledged ({escalation}): {subject}"
    who = f"{participant.first_name} (participant {participant.external_id})" if participant else "a participant"
    why = _why_raised(flag)
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
            else f"This was raised because {why}. Please contact them today and "
            "acknowledge this flag on the dashboard.",
        ]
    )
    if left:
        body += "\n\nTheir specialist's dashboard account is deactivated: please move them to another specialist."
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


def _recipients(
    flag: Flag, specialist: Specialist | None, settings: ServiceSettings, *, left: bool, escalation: int
) -> list[str]:
    """The specialist (unless they have left); the duty contact for urgent flags; the escalation
    contact from the first reminder, or from the first notice when the specialist has left."""
    recipients = [specialist.email] if specialist and not left else []
    if flag.severity == "urgent" and settings.duty_contact_email:
        recipients.append(settings.duty_contact_email)
    escalate = left or (flag.severity == "urgent" and escalation >= 1)
    if escalate and settings.escalation_contact_email:
        recipients.append(settings.escalation_contact_email)
    return recipients


def has_left(db: Session, specialist: Specialist) -> bool:
    """The specialist had dashboard accounts and every one is deactivated: nobody reads their mail."""
    return bool(db.execute(sa.select(specialist_has_left(specialist.id))).scalar())


def _text_duty_contact(db: Session, phone: str, external_id: str, now: datetime, *, reminder: int) -> int:
    """A short SMS to the duty contact: which record to open, nothing about what was said."""
    if reminder:
        body = (
            f"Participant assistant: urgent flag for participant {external_id} is not yet acknowledged "
            f"(reminder {reminder}). Please check the dashboard now."
        )
    else:
        body = f"Participant assistant: urgent flag for participant {external_id}. Please check the dashboard now."
    return _staff_text(db, phone, body, now)


def _staff_text(db: Session, phone: str, body: str, now: datetime) -> int:
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
            queued(db).emails = True
            told += 1
        if settings.duty_contact_phone:
            text_id = _staff_text(
                db,
                settings.duty_contact_phone,
                "Participant assistant: a text from an unknown number reads like a crisis. "
                "Please check Unknown numbers on the dashboard now.",
                now,
            )
            queued(db).texts.append(text_id)
            told += 1
        if not (settings.duty_contact_email or settings.duty_contact_phone):
            log.warning("crisis text from an unknown number: service %s has no duty contact", service_id)
    if not told:
        log.error("crisis text from an unknown number: no service has a duty contact to tell")
    db.flush()


def tell_urgent(db: Session, flag: Flag, now: datetime) -> None:
    """One notice about an urgent flag: emails, a text to the duty phone, and the next notice planned.

    The notice goes to the specialist and the duty contact (from the second notice on, the
    escalation contact too). The next is due after the service's interval; acknowledging
    the flag cancels it. Emails and the text are sent as soon as this transaction commits.
    """
    participant = db.get(Participant, flag.participant_id)
    settings = for_service(db, participant.service_id if participant else None)
    if queue_flag_emails(db, flag, now, escalation=flag.notices):
        queued(db).emails = True
    if settings.duty_contact_phone and participant is not None:
        queued(db).texts.append(
            _text_duty_contact(db, settings.duty_contact_phone, participant.external_id, now, reminder=flag.notices)
        )
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
    if flag.status == FlagStatus.ACKNOWLEDGED:
        flag.note = ((flag.note + "\n") if flag.note else "") + (
            f"{now:%Y-%m-%d %H:%M} assistant: new evidence after {flag.acknowledged_by} acknowledged this; "
            "it needs acknowledging again"
        )
        flag.status = FlagStatus.OPEN
        at_once = True
    if flag.status != FlagStatus.OPEN:
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
_DUE_NOTICES = Prepared(
    sa.select(_flag.c.id, _flag.c.participant_id)
    .where(
        _flag.c.status == FlagStatus.OPEN,
        _flag.c.next_notice_at <= sa.bindparam("now", type_=_flag.c.next_notice_at.type),
    )
    .order_by(_flag.c.next_notice_at, _flag.c.id)
    .limit(ESCALATION_BATCH)
)


def escalate_due(rt: Runtime, now: datetime) -> int:
    """Urgent flags nobody has acknowledged in the service's time: tell people again, each in its
    own transaction under the participant's lock (as their texts are handled), so two clocks never
    send the same reminder. The emails and texts are queued for the sends that follow in the tick."""
    told = 0
    due = _DUE_NOTICES.read(rt.engine, {"now": now}).all()  # each claimed and checked again below
    for flag_id, participant_id in due:
        try:
            with participant_unit(rt.engine, participant_id) as (db, _participant):
                flag = claim(db, Flag, flag_id)
                if (
                    flag is None
                    or flag.status != FlagStatus.OPEN
                    or flag.next_notice_at is None
                    or flag.next_notice_at > now
                ):
                    continue  # acknowledged meanwhile, or another clock told them
                tell_urgent(db, flag, now)
                told += 1
        except Exception:  # one flag's fault stays with it (still due next tick); the rest are told
            log.exception("reminder for urgent flag %s failed", flag_id)
    return told
