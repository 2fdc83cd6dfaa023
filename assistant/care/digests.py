"""The daily digest: one email per specialist a day, at their chosen time, of the flags new since the last."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from assistant.db.driver import Prepared
from assistant.db.models import Flag, FlagStatus, Notification, Participant, Specialist, table
from assistant.db.service_settings import ServiceSettings, all_services

DIGEST_SUBJECT = "Your participant assistant digest"


_specialist, _participant = table(Specialist), table(Participant)


# Those who have had no digest yet today: the rest are passed over by the database, not one by one.
_DIGEST_TIMES = Prepared(
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

    services = all_services(db)
    today = now.astimezone(ZoneInfo(default_timezone)).date()
    # Runs on every tick and is due once a day: who is due is worked out from four columns. Most
    # share a few times: each moment is worked out once.
    moments: dict[str, datetime] = {}
    due: dict[int, datetime] = {}  # specialist -> the flags since when their digest lists
    rows = _DIGEST_TIMES.run(db, {"today_began": local_at(today, time(0, 0), default_timezone)}).all()
    for row in rows:
        settings = services.get(row.service_id) or ServiceSettings()
        at = row.digest_time or settings.digest_time
        if at not in moments:
            moments[at] = local_at(today, parse_hhmm(at), default_timezone)
        moment = moments[at]
        if now < moment or (row.last_digest_at and row.last_digest_at >= moment):
            continue
        due[row.id] = row.last_digest_at or moment - timedelta(days=1)
    return _queue_digests(db, due, now) if due else 0


def _queue_digests(db: Session, due: dict[int, datetime], now: datetime) -> int:
    """Each due specialist's digest of the flags new since `due[their id]`, for those with any (how
    many were queued). Most fall due at the same moment: the flags, the people and the specialists are
    each read once for them all, and every one of them is marked as sent to now."""
    flags = db.exec(
        select(Flag)
        .where(
            col(Flag.specialist_id).in_(due),
            col(Flag.severity).in_(("action", "info")),
            col(Flag.created_at) > min(due.values()),
            col(Flag.created_at) <= now,
        )
        .order_by(col(Flag.severity), col(Flag.created_at))
    ).all()
    new: dict[int, list[Flag]] = defaultdict(list)
    for flag in flags:
        if flag.specialist_id is not None and flag.created_at and flag.created_at > due[flag.specialist_id]:
            new[flag.specialist_id].append(flag)
    db.execute(sa.update(Specialist).where(col(Specialist.id).in_(due)).values(last_digest_at=now))
    if not new:
        return 0  # only when there is something new
    people = {
        row.id: row
        for row in db.execute(
            sa.select(_participant.c.id, _participant.c.first_name, _participant.c.external_id).where(
                _participant.c.id.in_({f.participant_id for listed in new.values() for f in listed})
            )
        )
    }
    emails = dict(db.execute(sa.select(_specialist.c.id, _specialist.c.email).where(_specialist.c.id.in_(new))).all())
    for specialist_id, listed in sorted(new.items()):
        since = due[specialist_id]
        lines = [f"{len(listed)} new flag(s) on your caseload since {since:%a %d %b %H:%M} UTC:", ""]
        for flag in listed:
            person = people.get(flag.participant_id)
            label = f"{person.first_name} ({person.external_id})" if person else "?"
            done = " (resolved since)" if flag.status == FlagStatus.RESOLVED else ""
            lines.append(f"- [{flag.severity}] {label}: {flag.reason}{done}")
        lines += ["", "Open the dashboard to see each one and acknowledge it."]
        db.add(
            Notification(
                to_email=emails[specialist_id],
                subject=DIGEST_SUBJECT,
                body="\n".join(lines),
                next_attempt_at=now,
                created_at=now,
            )
        )
    return len(new)
