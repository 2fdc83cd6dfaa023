"""The start of the journey: referral date and source, the welcome text, and the wait for support.

A participant added with a referral date is a new referral: they get one welcome text at
the next allowed time, saying who is texting and what to expect. A caseload moved over
without referral dates (people already in support) gets no welcome. Until support starts,
check-ins are lighter (see cadence.py): a short "while you wait" note, less often.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlmodel import Session, select

from assistant.contact.checkins import plan_checkin
from assistant.contact.journey_state import local_today, waiting_to_start
from assistant.db.journey_settings import referral_choices
from assistant.db.models import DueTask, Participant, Service
from assistant.db.service_settings import ServiceSettings, settings_for

# A new referral's first check-in comes at least this long after the welcome.
FIRST_CHECKIN_AFTER = timedelta(days=3)
DEFAULT_PUBLIC_NAME = "the employment team"


class ReferralError(ValueError):
    pass


def clean_referral(date_text: str, source_text: str, settings: ServiceSettings) -> tuple[date | None, str | None]:
    """A referral date and source as entered: the date read, the source one of the service's
    pre-coded list or "other". Blank means missing (kept as missing). Whether the date fits the
    journey (not in the future) is `journey_date_problems`, as for an import."""
    referral_date = None
    if date_text.strip():
        try:
            referral_date = date.fromisoformat(date_text.strip())
        except ValueError:
            raise ReferralError(f"referral date: not a date like 2026-11-30: {date_text.strip()[:20]!r}") from None
    source = source_text.strip().lower().replace(" ", "_") or None
    if source is not None and source not in referral_choices(settings):
        raise ReferralError(f"referral source: must be one of {', '.join(referral_choices(settings))}")
    return referral_date, source


# How far ahead a support start may be recorded: a first meeting already booked, not a guess.
SUPPORT_START_AHEAD = timedelta(days=60)


def journey_date_problems(
    referral_date: date | None, support_start: date | None, *, today: date
) -> list[tuple[str, str]]:
    """What is wrong with a referral date and a support start together, as (field, reason):
    the dashboard and the caseload import hold the same rule."""
    problems = []
    if referral_date is not None and referral_date > today:
        problems.append(("referral_date", "cannot be in the future"))
    if support_start is not None and support_start > today + SUPPORT_START_AHEAD:
        problems.append(("support_start", f"cannot be more than {SUPPORT_START_AHEAD.days} days ahead"))
    if support_start is not None and referral_date is not None and support_start < referral_date:
        problems.append(("support_start", "cannot be before the referral date"))
    return problems


def public_name(db: Session, participant: Participant) -> str:
    settings = settings_for(db, participant)
    if settings.public_name.strip():
        return settings.public_name.strip()
    service = db.get(Service, participant.service_id)
    # A service row named only by its slug (as an import creates it) has no public name yet.
    if service is not None and service.name and service.name != service.slug:
        return service.name
    return DEFAULT_PUBLIC_NAME


def plan_welcome(db: Session, participant: Participant, now: datetime) -> DueTask | None:
    """Plan the welcome text for a new referral, once; the clock sends it at the next allowed time."""
    assert participant.id is not None
    if participant.referral_date is None or not settings_for(db, participant).welcome_text:
        return None
    planned = db.exec(
        select(DueTask).where(DueTask.participant_id == participant.id, DueTask.kind == "welcome")
    ).first()
    if planned is not None:
        return None
    task = DueTask(participant_id=participant.id, kind="welcome", due_at=now, created_at=now, payload={})
    db.add(task)
    db.flush()

    plan_checkin(db, participant, now + FIRST_CHECKIN_AFTER)  # not the same morning as the welcome
    return task


def welcome_vars(db: Session, participant: Participant, now: datetime) -> dict[str, object]:
    settings = settings_for(db, participant)
    waiting = waiting_to_start(participant, local_today(participant, now))
    every = settings.waiting_checkin_every_weeks if waiting else participant.checkin_every_weeks
    return {"service_name": public_name(db, participant), "every_weeks": every}


def start_support(db: Session, participant: Participant, on: date, now: datetime) -> None:
    """Support starts (or started) on this day: check-ins move from the waiting cadence to the usual one."""

    participant.support_started_on, participant.updated_at = on, now
    db.add(participant)
    db.flush()
    plan_checkin(db, participant, now)
