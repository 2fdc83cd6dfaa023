"""Disengagement rules: notice early, hand the decision to a person, never act on the participant.

Each rule raises (or adds evidence to) one open flag of its kind; thresholds are
service settings, and a rule the service turns off raises nothing new.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from assistant.care.flags import raise_flag
from assistant.care.rhythm import STILL_SUPPORTED, mark_told, silence_days_for, silent_since, support_cutoff, told
from assistant.db.driver import Prepared
from assistant.db.models import Answer, Appointment, Flag, FlowSession, Message, MessageStatus, Participant, table
from assistant.db.rows import get_row
from assistant.db.service_settings import ServiceSettings, all_services, settings_for
from assistant.db.units import among_param
from assistant.engine import RecordAnswer
from assistant.runtime import Runtime


def _on(settings: ServiceSettings, kind: str) -> bool:
    return kind not in settings.rules_off


_answer = table(Answer)
# A person's latest check-in answers, newest first: what the two rules read of them.
_RECENT_WEEKS = Prepared(
    sa.select(_answer.c.id, _answer.c.session_id, _answer.c.value)
    .where(
        _answer.c.participant_id == sa.bindparam("participant_id"),
        _answer.c.flow == "checkin",
        _answer.c.question == "week",
        _answer.c.late == False,  # noqa: E712
    )
    .order_by(_answer.c.id.desc())
    .limit(sa.bindparam("limit", type_=sa.Integer))
)


def checkin_answered(
    db: Session, rt: Runtime, participant: Participant, row: FlowSession, answer: RecordAnswer, now: datetime
) -> None:
    """The check-in flow's `on_answer` effect: the rules that read a run of check-ins."""
    if answer.value not in ("no_reply", "not_great"):
        return  # each rule needs a run ending in one of these: any other answer cannot complete one
    after_checkin_answer(db, participant, now)


def after_checkin_answer(db: Session, participant: Participant, now: datetime) -> None:
    """N check-ins in a row with no reply; 'not great' several weeks running."""
    assert participant.id is not None
    settings = settings_for(db, participant)
    limit = max(settings.not_responding_checkins, settings.not_great_weeks)
    recent = _RECENT_WEEKS.run(db, {"participant_id": participant.id, "limit": limit}).all()
    silent = recent[: settings.not_responding_checkins]
    # The fixed count is the ceiling whatever each person's rhythm says (care.rhythm may tell of
    # the silence earlier; then this does not tell it again).
    if (
        _on(settings, "not_responding")
        and len(silent) == settings.not_responding_checkins
        and all(a.value == "no_reply" for a in silent)
        and not _replied_since(db, participant, silent[-1].session_id)
        and not told(db, participant)
    ):
        raise_flag(
            db,
            participant,
            kind="not_responding",
            severity="action",
            reason=f"No reply to the last {settings.not_responding_checkins} check-ins",
            now=now,
            evidence={
                "checkins": [a.session_id for a in reversed(silent)],
                "silent_since": silent_since(participant).isoformat(),
            },
        )
        mark_told(db, participant)
    hard = recent[: settings.not_great_weeks]
    if (
        _on(settings, "not_great_weeks")
        and len(hard) == settings.not_great_weeks
        and all(a.value == "not_great" for a in hard)
    ):
        raise_flag(
            db,
            participant,
            kind="not_great_weeks",
            severity="action",
            reason=f"Said their week was not great {settings.not_great_weeks} weeks running",
            now=now,
            evidence={"answers": [a.id for a in reversed(hard)]},
        )


def _replied_since(db: Session, participant: Participant, session_id: int | None) -> bool:
    session = get_row(db, FlowSession, session_id)
    since = session.started_at if session and session.started_at else None
    return bool(since and participant.last_inbound_at and participant.last_inbound_at > since)


_participant, _flag = table(Participant), table(Flag)
_quiet_since = sa.func.coalesce(_participant.c.last_inbound_at, _participant.c.created_at)
_horizon = sa.bindparam("horizon", type_=_participant.c.created_at.type)


def _silent(*columns: Any, quiet_before: Any) -> sa.Select[Any]:
    """Who is quiet since before the horizon and not yet told of it, in one service."""
    return sa.select(*columns).where(
        _participant.c.service_id == sa.bindparam("service_id"),
        _participant.c.opted_out.is_(False),
        _participant.c.paused.is_(False),
        _participant.c.unreachable.is_(False),
        STILL_SUPPORTED,
        quiet_before,
        # Not yet told of: every rule's "not responding" is raised during the silence it is about,
        # so one raised after their last text is about this one. Without this, everyone still
        # silent was read again, with all their flags, on every tick: a read that grew all year.
        ~sa.exists().where(
            _flag.c.participant_id == _participant.c.id,
            _flag.c.kind == "not_responding",
            _flag.c.created_at > _quiet_since,
        ),
    )


# Each check-in cadence a person may have (weeks), whose own horizon is given with every sweep:
# someone asked monthly is passed over by the database until their longer silence is up, not read
# and passed over in Python on every tick. Any other cadence is judged in Python alone.
CADENCES = range(1, 9)
_own_horizon = sa.case(
    {weeks: sa.bindparam(f"horizon_{weeks}", type_=_participant.c.created_at.type) for weeks in CADENCES},
    value=_participant.c.checkin_every_weeks,
    else_=_horizon,
)
# Quiet since before the horizon, as two ranges of the (service, last text, added) index: those who
# have texted, and those who never have. The coalesce() compared instead was worked out for every
# person of the service on every tick.
_QUIET_BEFORE = (
    sa.and_(_participant.c.last_inbound_at <= _horizon, _participant.c.last_inbound_at <= _own_horizon),
    sa.and_(
        _participant.c.last_inbound_at.is_(None),
        _participant.c.created_at <= _horizon,
        _participant.c.created_at <= _own_horizon,
    ),
)
# The few columns the sweep needs: it runs on every tick, and most ticks raise nothing.
_SILENT_COLUMNS = (
    _participant.c.id,
    _participant.c.last_inbound_at,
    _participant.c.created_at,
    _participant.c.checkin_every_weeks,
)
# (In no order: asked to sort by id, SQLite reads the whole service in id order to save the sort.)
_SILENT = Prepared(sa.union_all(*(_silent(*_SILENT_COLUMNS, quiet_before=q) for q in _QUIET_BEFORE)))
# Their "not responding" flags, resolved ones too (a specialist who closed one has heard about
# that silence), for the people silent long enough for their own cadence: by id, built once per database.
_SAID = {
    dialect: sa.select(_flag.c.participant_id, _flag.c.evidence).where(
        among_param(_flag.c.participant_id, "ids", dialect), _flag.c.kind == "not_responding"
    )
    for dialect in ("sqlite", "postgresql")
}


def silence_sweep(db: Session, now: datetime) -> int:
    """No text from someone for D days while automation is active.

    Runs on every tick: only people silent for their own service's D days are read, each
    service's settings are read once, and their open flags come in one query.
    """
    raised = 0
    for service_id, settings in all_services(db).items():
        if not _on(settings, "not_responding"):
            continue
        params: dict[str, object] = {
            "service_id": service_id,
            "horizon": now - timedelta(days=settings.not_responding_days),
            "today": support_cutoff(now),
        }
        for weeks in CADENCES:
            params[f"horizon_{weeks}"] = now - timedelta(days=silence_days_for(settings, weeks))
        # Silent for the service's D days, and for their own cadence's (someone asked monthly waits longer).
        candidates = []
        for row in sorted(_SILENT.run(db, params).all(), key=lambda row: row.id):
            last, days = silent_since(row), silence_days_for(settings, row.checkin_every_weeks)
            if last <= now - timedelta(days=days):
                candidates.append((row, last, days))
        if not candidates:
            continue
        said: dict[int, set[str]] = {}
        ids = [row.id for row, _last, _days in candidates]
        for participant_id, evidence in db.execute(_SAID[db.get_bind().dialect.name], {"ids": ids}).all():
            said.setdefault(participant_id, set()).update(
                str(e["silent_since"]) for e in evidence if e.get("silent_since")
            )
        for row, last, days in candidates:
            if last.isoformat() in said.get(row.id, ()):
                continue  # already said for this silence
            participant = db.get(Participant, row.id)
            assert participant is not None
            raise_flag(
                db,
                participant,
                kind="not_responding",
                severity="action",
                reason=f"No text from them for {days} days",
                now=now,
                evidence={"silent_since": last.isoformat()},
            )
            raised += 1
    return raised


def silence_days(settings: ServiceSettings, participant: Participant) -> int:
    """Days without a text before someone counts as silent: the service's D, but never less than
    their check-in cadence and a week's grace (someone asked monthly is not silent at day 21)."""
    return silence_days_for(settings, participant.checkin_every_weeks)


def after_dna(db: Session, appointment: Appointment, participant: Participant, now: datetime) -> None:
    """Two missed appointments in a row."""
    settings = settings_for(db, participant)
    if not _on(settings, "repeated_dna"):
        return
    previous = db.exec(
        select(Appointment)
        .where(
            Appointment.participant_id == participant.id,
            Appointment.id != appointment.id,
            col(Appointment.starts_at) < appointment.starts_at,
            col(Appointment.outcome).in_(("attended", "dna")),
        )
        .order_by(col(Appointment.starts_at).desc())
    ).first()
    if previous is not None and previous.outcome == "dna":
        raise_flag(
            db,
            participant,
            kind="repeated_dna",
            severity="action",
            reason="Missed two appointments in a row",
            now=now,
            evidence={"appointments": [previous.external_id, appointment.external_id]},
        )


def after_unreachable_error(db: Session, participant: Participant, now: datetime) -> None:
    """Twilio 30003 (handset unreachable) several times running: it may not be a passing thing."""
    settings = settings_for(db, participant)
    if not _on(settings, "unreachable"):
        return
    recent = db.exec(
        select(Message.error_code)
        .where(
            Message.participant_id == participant.id,
            Message.direction == "out",
            col(Message.status).in_((MessageStatus.DELIVERED, MessageStatus.UNDELIVERED, MessageStatus.FAILED)),
        )
        .order_by(col(Message.id).desc())
        .limit(settings.unreachable_30003_count)
    ).all()
    if len(recent) == settings.unreachable_30003_count and all(code == "30003" for code in recent):
        raise_flag(
            db,
            participant,
            kind="unreachable",
            severity="action",
            reason=f"The last {settings.unreachable_30003_count} texts could not reach their phone",
            now=now,
            evidence={"error_code": "30003"},
        )
