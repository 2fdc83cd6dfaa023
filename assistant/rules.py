"""Disengagement rules: notice early, hand the decision to a person, never act on the participant.

Each rule raises (or adds evidence to) one open flag of its kind; thresholds are
service settings, and a rule the service turns off raises nothing new.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from .flags import raise_flag, self_resolve
from .models import Answer, Appointment, Flag, FlowSession, Message, Participant, Service
from .service_settings import ServiceSettings, for_service


def settings_for(db: Session, participant: Participant) -> ServiceSettings:
    return for_service(db, participant.service_id)


def _on(settings: ServiceSettings, kind: str) -> bool:
    return kind not in settings.rules_off


_RECENT_WEEKS = (
    select(Answer)
    .where(
        Answer.participant_id == sa.bindparam("participant_id"),
        Answer.flow == "checkin",
        Answer.question == "week",
        Answer.late == False,  # noqa: E712
    )
    .order_by(col(Answer.id).desc())
    .limit(sa.bindparam("limit", type_=sa.Integer))
)


def after_checkin_answer(db: Session, participant: Participant, now: datetime) -> None:
    """N check-ins in a row with no reply; 'not great' several weeks running."""
    assert participant.id is not None
    settings = settings_for(db, participant)
    recent = db.exec(
        _RECENT_WEEKS,
        params={
            "participant_id": participant.id,
            "limit": max(settings.not_responding_checkins, settings.not_great_weeks),
        },
    ).all()
    silent = recent[: settings.not_responding_checkins]
    if (
        _on(settings, "not_responding")
        and len(silent) == settings.not_responding_checkins
        and all(a.value == "no_reply" for a in silent)
        and not _replied_since(db, participant, silent[-1].session_id)
    ):
        raise_flag(
            db,
            participant,
            kind="not_responding",
            severity="action",
            reason=f"No reply to the last {settings.not_responding_checkins} check-ins",
            now=now,
            evidence={"checkins": [a.session_id for a in reversed(silent)]},
        )
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
    session = db.get(FlowSession, session_id) if session_id else None
    since = session.started_at if session and session.started_at else None
    return bool(since and participant.last_inbound_at and participant.last_inbound_at > since)


def silence_sweep(db: Session, now: datetime) -> int:
    """No text from someone for D days while automation is active.

    Runs on every tick: only people silent for their own service's D days are loaded, each
    service's settings are read once, and their open flags come in one query.
    """
    raised = 0
    quiet_since = func.coalesce(Participant.last_inbound_at, Participant.created_at)
    for service in db.exec(select(Service)).all():
        settings = ServiceSettings.from_json(service.settings)
        if not _on(settings, "not_responding"):
            continue
        horizon = now - timedelta(days=settings.not_responding_days)
        silent = (
            select(Participant)
            .where(
                Participant.service_id == service.id,
                Participant.opted_out == False,  # noqa: E712
                Participant.paused == False,  # noqa: E712
                Participant.unreachable == False,  # noqa: E712
                quiet_since <= horizon,
            )
            .order_by(col(Participant.id))
        )
        candidates = db.exec(silent).all()
        if not candidates:
            continue
        said: dict[int, set[str]] = {}
        for flag in db.exec(
            select(Flag).where(
                col(Flag.participant_id).in_(silent.with_only_columns(col(Participant.id)).order_by(None)),
                # Resolved ones too: a specialist who closed it has heard about this silence.
                Flag.kind == "not_responding",
            )
        ).all():
            said.setdefault(flag.participant_id, set()).update(
                str(e["silent_since"]) for e in flag.evidence if e.get("silent_since")
            )
        for participant in candidates:
            last = participant.last_inbound_at or participant.created_at
            days = silence_days(settings, participant)
            if last is None or last > now - timedelta(days=days):
                continue
            if last.isoformat() in said.get(participant.id or 0, ()):
                continue  # already said for this silence
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
    return max(settings.not_responding_days, 7 * participant.checkin_every_weeks + 7)


def on_reply(db: Session, participant: Participant, now: datetime) -> None:
    """A reply ends 'not responding' on its own; the flag stays in the history."""
    assert participant.id is not None
    self_resolve(db, participant.id, "not_responding", now, note="They replied")


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
            col(Message.status).in_(("delivered", "undelivered", "failed")),
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
