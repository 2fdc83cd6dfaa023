"""The daily digest: one email per specialist a day, at their chosen time, of the flags new since the last."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from assistant.db.models import Flag, FlagStatus, Notification, Participant, Specialist, table
from assistant.db.service_settings import ServiceSettings, all_services

DIGEST_SUBJECT = "Your participant assistant digest"


_specialist = table(Specialist)


# Those who have had no digest yet today: the rest are passed over by the database, not one by one.
_DIGEST_TIMES = (
    sa.select(_specialist.c.id, _specialist.c.service_id, _specialist.c.digest_time, _specialist.c.last_digest_at)
    .where(
        sa.or_(
            _specialist.c.last_digest_at.is_(None),
            _specialist.c.last_digest_at < sa.bindparam("today_began", type_=_specialist.c.last_digest_at.type),
        )
    )
    .order_by(_specialist.c.id)
)


def queue_digests(db: Session, now: datetime, default_timezone: str) -> int:
    """One email per specialist a day, at their chosen time, listing exactly the flags new since the last.
    A specialist whose time moves later on a day their digest went has the next one the day after."""
    from zoneinfo import ZoneInfo

    from assistant.timing import local_at, parse_hhmm

    queued = 0
    services = all_services(db)
    today = now.astimezone(ZoneInfo(default_timezone)).date()
    # Runs on every tick and is due once a day: who is due is worked out from four columns, and
    # only their rows are loaded. Most share a few times: each moment is worked out once.
    moments: dict[str, datetime] = {}
    rows = db.execute(_DIGEST_TIMES, {"today_began": local_at(today, time(0, 0), default_timezone)}).all()
    for row in rows:
        settings = services.get(row.service_id) or ServiceSettings()
        at = row.digest_time or settings.digest_time
        if at not in moments:
            moments[at] = local_at(today, parse_hhmm(at), default_timezone)
        moment = moments[at]
        if now < moment or (row.last_digest_at and row.last_digest_at >= moment):
            continue
        specialist = db.get(Specialist, row.id)
        assert specialist is not None
        queued += _queue_digest(db, specialist, specialist.last_digest_at or moment - timedelta(days=1), now)
    return queued


def _queue_digest(db: Session, specialist: Specialist, since: datetime, now: datetime) -> int:
    """This specialist's digest of the flags new since `since`, if there are any (1 if queued)."""
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
        return 0  # only when there is something new
    people = {
        p.id: p
        for p in db.exec(select(Participant).where(col(Participant.id).in_({f.participant_id for f in new}))).all()
    }
    lines = [f"{len(new)} new flag(s) on your caseload since {since:%a %d %b %H:%M} UTC:", ""]
    for flag in new:
        person = people.get(flag.participant_id)
        label = f"{person.first_name} ({person.external_id})" if person else "?"
        done = " (resolved since)" if flag.status == FlagStatus.RESOLVED else ""
        lines.append(f"- [{flag.severity}] {label}: {flag.reason}{done}")
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
    return 1
