"""What the dashboard shows, gathered in a few queries whatever the caseload's size."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, false, func, true
from sqlmodel import Session, col, select

from assistant.db.models import (
    Answer,
    Appointment,
    DueTask,
    Flag,
    FlagStatus,
    FlowSession,
    Measure,
    MeasureStatus,
    Message,
    Participant,
    SessionStatus,
    Specialist,
    TaskStatus,
)

SEVERITY_ORDER = {"urgent": 0, "action": 1, "info": 2}
CONTACT_KINDS = {
    "checkin": "Check-in",
    "appt_reminder": "Appointment reminder",
    "interview_good_luck": "Good-luck text",
    "dna_attempt": "Missed-appointment follow-up",
    "questionnaire": "Questionnaire",
}


def ago(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "never"
    seconds = (now - then).total_seconds()
    if seconds < 3600:
        return f"{max(1, int(seconds // 60))} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


@dataclass
class Row:
    participant: Participant
    specialist: str
    last_reply: datetime | None
    next_contact: tuple[datetime, str] | None
    flags: list[Flag] = field(default_factory=list)
    last_outcome: str | None = None
    next_appointment: datetime | None = None
    measures: dict[str, tuple[int, str]] = field(default_factory=dict)  # instrument -> (latest, direction)

    @property
    def status(self) -> str:
        p = self.participant
        if p.exit_reason is not None:  # recorded on or after the day it ended: nothing automated goes
            return "support ended"
        if p.opted_out:
            return "opted out"
        if p.unreachable:
            return "cannot be reached"
        if p.paused:
            return "paused"
        return "active"

    @property
    def worst(self) -> int:
        return min((SEVERITY_ORDER[f.severity] for f in self.flags), default=9)


def caseload_rows(db: Session, participants: list[Participant]) -> list[Row]:
    ids = [p.id for p in participants]
    if not ids:
        return []
    owners = {p.specialist_id for p in participants}
    names = {s.id: (s.name or s.email) for s in db.exec(select(Specialist).where(col(Specialist.id).in_(owners))).all()}
    nexts = _next_contacts(db, ids)
    flags: dict[int, list[Flag]] = {}
    for flag in db.exec(
        select(Flag).where(col(Flag.participant_id).in_(ids), Flag.status != FlagStatus.RESOLVED)
    ).all():
        flags.setdefault(flag.participant_id, []).append(flag)
    last_outcome, next_appt = _appointment_outcomes(db, ids)
    history = _score_history(db, ids)
    rows = []
    for p in participants:
        assert p.id is not None
        rows.append(
            Row(
                participant=p,
                specialist=names.get(p.specialist_id, "?"),
                last_reply=p.last_inbound_at,
                # Nothing automated goes while they are paused, opted out or unreachable: no date to show.
                next_contact=nexts.get(p.id) if not (p.paused or p.opted_out or p.unreachable) else None,
                flags=sorted(flags.get(p.id, []), key=lambda f: SEVERITY_ORDER[f.severity]),
                last_outcome=last_outcome.get(p.id),
                next_appointment=next_appt.get(p.id),
                measures=_latest_scores(history.get(p.id, {})),
            )
        )
    return rows


def _next_contacts(db: Session, ids: list[int | None]) -> dict[int, tuple[datetime, str]]:
    """Each participant's next planned contact: when, and what it is."""
    nexts: dict[int, tuple[datetime, str]] = {}
    for task in db.exec(
        select(DueTask)
        .where(
            col(DueTask.participant_id).in_(ids),
            DueTask.status == TaskStatus.PENDING,
            col(DueTask.kind).in_(list(CONTACT_KINDS)),
        )
        .order_by(col(DueTask.due_at))
    ).all():
        if task.due_at is not None:
            nexts.setdefault(task.participant_id, (task.due_at, CONTACT_KINDS[task.kind]))
    return nexts


def _appointment_outcomes(db: Session, ids: list[int | None]) -> tuple[dict[int, str], dict[int, datetime]]:
    """Each participant's latest appointment outcome, and the start of their next appointment with none yet."""
    last_outcome: dict[int, str] = {}
    next_appt: dict[int, datetime] = {}
    for appt in db.exec(
        select(Appointment).where(col(Appointment.participant_id).in_(ids)).order_by(col(Appointment.starts_at))
    ).all():
        if appt.outcome:
            last_outcome[appt.participant_id] = appt.outcome
        elif appt.starts_at and appt.participant_id not in next_appt:
            next_appt[appt.participant_id] = appt.starts_at
    return last_outcome, next_appt


def _score_history(db: Session, ids: list[int | None]) -> dict[int, dict[str, list[int]]]:
    """Each participant's completed PHQ-9 and GAD-7 totals, oldest first."""
    history: dict[int, dict[str, list[int]]] = {}
    for measure in db.exec(
        select(Measure)
        .where(
            col(Measure.participant_id).in_(ids),
            Measure.status == MeasureStatus.COMPLETE,
            col(Measure.instrument).in_(("phq9", "gad7")),
        )
        .order_by(col(Measure.completed_at))
    ).all():
        assert measure.total is not None
        history.setdefault(measure.participant_id, {}).setdefault(measure.instrument, []).append(measure.total)
    return history


def _latest_scores(history: dict[str, list[int]]) -> dict[str, tuple[int, str]]:
    """Per instrument, the latest total and which way it moved since the one before."""
    latest = {}
    for instrument, totals in history.items():
        direction = "no change"
        if len(totals) > 1:
            direction = (
                "down (better)" if totals[-1] < totals[-2] else "up (worse)" if totals[-1] > totals[-2] else "no change"
            )
        latest[instrument] = (totals[-1], direction)
    return latest


STATUS_FILTERS = ("active", "paused", "opted out", "cannot be reached", "support ended")
SEVERITY_RANK = case((col(Flag.severity) == "urgent", 0), (col(Flag.severity) == "action", 1), else_=2)


def caseload_query(query: Any, *, sort: str, show: str, cohort: str) -> Any:
    """Filter and order a (scoped) query over Participant in the database, so a page of 200 is
    the right 200 of 5,000, and the same rows whatever page they land on."""
    p = Participant
    open_flag = select(Flag.id).where(Flag.participant_id == p.id, Flag.status != FlagStatus.RESOLVED)
    if cohort in ("out_of_work", "in_work"):
        query = query.where(p.cohort == cohort)
    if show == "flagged":
        query = query.where(open_flag.exists())
    elif show == "support ended":
        query = query.where(col(p.exit_reason).is_not(None))
    elif show == "opted out":
        query = query.where(p.opted_out == true())
    elif show == "cannot be reached":
        query = query.where(p.opted_out == false(), p.unreachable == true())
    elif show == "paused":
        query = query.where(p.opted_out == false(), p.unreachable == false(), p.paused == true())
    elif show == "active":
        query = query.where(
            p.opted_out == false(), p.unreachable == false(), p.paused == false(), col(p.exit_reason).is_(None)
        )
    name = (func.lower(p.first_name), col(p.id))
    if sort == "name":
        return query.order_by(*name)
    if sort == "last_reply":
        return query.order_by(col(p.last_inbound_at).is_(None), col(p.last_inbound_at).desc(), *name)
    if sort == "next_contact":
        # Joined to one grouped pass over the pending tasks, not a lookup per participant.
        nexts = (
            select(DueTask.participant_id, func.min(DueTask.due_at).label("due"))
            .where(DueTask.status == TaskStatus.PENDING, col(DueTask.kind).in_(list(CONTACT_KINDS)))
            .group_by(col(DueTask.participant_id))
            .subquery()
        )
        query = query.outerjoin(nexts, nexts.c.participant_id == p.id)
        return query.order_by(nexts.c.due.is_(None), nexts.c.due, *name)
    # Flags: urgent first, then the most flags.
    worst = (
        select(
            Flag.participant_id,
            func.min(SEVERITY_RANK).label("rank"),
            func.count(col(Flag.id)).label("n"),
        )
        .where(Flag.status != FlagStatus.RESOLVED)
        .group_by(col(Flag.participant_id))
        .subquery()
    )
    query = query.outerjoin(worst, worst.c.participant_id == p.id)
    return query.order_by(func.coalesce(worst.c.rank, 9), func.coalesce(worst.c.n, 0).desc(), *name)


SORTS = {
    "name": lambda r: r.participant.first_name.lower(),
    "last_reply": lambda r: r.last_reply.timestamp() if r.last_reply else 0,
    "flags": lambda r: (r.worst, -len(r.flags)),
    "next_contact": lambda r: r.next_contact[0].timestamp() if r.next_contact else float("inf"),
}


def thread(db: Session, participant_id: int) -> list[Message]:
    return list(
        db.exec(select(Message).where(Message.participant_id == participant_id).order_by(col(Message.id))).all()
    )


def answers(db: Session, participant_id: int) -> list[Answer]:
    return list(
        db.exec(select(Answer).where(Answer.participant_id == participant_id).order_by(col(Answer.id).desc())).all()
    )


def chart(db: Session, participant_id: int, width: int = 640, height: int = 220) -> dict[str, Any]:
    """PHQ-9 and GAD-7 over time as SVG points, with the caseness thresholds (PHQ-9 10, GAD-7 8)."""
    measures = db.exec(
        select(Measure)
        .where(
            Measure.participant_id == participant_id,
            Measure.status == MeasureStatus.COMPLETE,
            col(Measure.instrument).in_(("phq9", "gad7")),
        )
        .order_by(col(Measure.completed_at))
    ).all()
    pad, top = 40, 27
    times = [m.completed_at for m in measures if m.completed_at]
    if not times:
        return {"series": {}, "width": width, "height": height, "thresholds": [], "points": []}
    first, last = min(times), max(times)
    span = max((last - first).total_seconds(), 86400.0)

    def xy(at: datetime, value: int) -> tuple[float, float]:
        x = pad + (width - 2 * pad) * (at - first).total_seconds() / span
        y = height - pad - (height - 2 * pad) * value / top
        return round(x, 1), round(y, 1)

    series: dict[str, list[tuple[float, float]]] = {}
    points = []
    for m in measures:
        assert m.completed_at is not None and m.total is not None
        point = xy(m.completed_at, m.total)
        series.setdefault(m.instrument, []).append(point)
        points.append(
            {"instrument": m.instrument, "x": point[0], "y": point[1], "total": m.total, "at": m.completed_at}
        )
    thresholds = [
        {"label": "PHQ-9 caseness (10)", "y": xy(first, 10)[1]},
        {"label": "GAD-7 caseness (8)", "y": xy(first, 8)[1]},
    ]
    return {
        # A line only joins two or more sittings: one questionnaire is a point, not a trajectory.
        "series": {k: " ".join(f"{x},{y}" for x, y in v) for k, v in series.items() if len(v) >= 2},
        "width": width,
        "height": height,
        "thresholds": thresholds,
        "points": points,
        "pad": pad,
    }


def trajectories(db: Session, participant_ids: Any) -> dict[int, dict[str, Any] | None]:
    """Each participant's paired outcomes in one query, for people with two or more complete
    sittings: the same answer as measures.participant_trajectory, person by person."""
    from assistant.care.measures import sitting_scores, trajectory_of

    complete = db.exec(
        select(Measure)
        .where(col(Measure.participant_id).in_(participant_ids), Measure.status == MeasureStatus.COMPLETE)
        .order_by(col(Measure.participant_id), col(Measure.completed_at), col(Measure.id))
    ).all()
    by_person: dict[int, list[Measure]] = {}
    for measure in complete:
        by_person.setdefault(measure.participant_id, []).append(measure)
    found = {pid: trajectory_of(sitting_scores(rows)) for pid, rows in by_person.items()}
    return {pid: result for pid, result in found.items() if result is not None}


def unacknowledged_urgent(db: Session, specialist_ids: list[int], now: datetime, minutes: int) -> list[Flag]:
    return list(
        db.exec(
            select(Flag).where(
                col(Flag.specialist_id).in_(specialist_ids),
                Flag.status == FlagStatus.OPEN,
                Flag.severity == "urgent",
                col(Flag.created_at) < now - timedelta(minutes=minutes),
            )
        ).all()
    )


def waiting_question(db: Session, participant_id: int) -> FlowSession | None:
    return db.exec(
        select(FlowSession).where(
            FlowSession.participant_id == participant_id, FlowSession.status == SessionStatus.WAITING
        )
    ).first()


def caseload_counts(db: Session, specialist_ids: list[int]) -> dict[int, int]:
    rows = db.exec(
        select(Participant.specialist_id, func.count())
        .where(col(Participant.specialist_id).in_(specialist_ids))
        .group_by(col(Participant.specialist_id))
    ).all()
    return {sid: int(n) for sid, n in rows}
