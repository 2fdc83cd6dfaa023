"""Questionnaire results on the record: scored when complete, kept as partial when not,
and the participant's trajectory against their first scores."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from assistant import engine
from assistant.care.clinical_outcomes import COMBINED, RELIABLE_CHANGE, SCALES, Score, paired_outcomes
from assistant.care.flags import raise_flag
from assistant.care.quiet import next_allowed
from assistant.db.models import (
    Answer,
    DueTask,
    FlowSession,
    Measure,
    MeasureStatus,
    Participant,
    SessionStatus,
)
from assistant.db.open_items import pending_tasks
from assistant.db.service_settings import settings_for
from assistant.runtime import Runtime
from assistant.timing import local_at, parse_hhmm

STATUS_FOR_END = {
    "completed": MeasureStatus.COMPLETE,
    "expired": MeasureStatus.EXPIRED,
    "declined": MeasureStatus.DECLINED,
    "crisis": MeasureStatus.CRISIS,
    "opted_out": MeasureStatus.PARTIAL,
    engine.PAUSED_FOR_SAFETY: MeasureStatus.PAUSED,
}
# Answers that are kept on the record but are no item score.
NOT_SCORED = (None, "skipped", "free_text", "no_reply")
# A sitting paused after a risk item is taken up again by the next invitation to the same
# questionnaire (scheduled, or asked for with `send-questionnaire`) within this time: it asks
# only the items left, and the runs' answers are scored together (each instrument only once all
# its items have an answer). The items ask about "the last 2 weeks", so answers more than a week
# apart no longer describe much of the same fortnight: a sitting begun longer ago than this keeps
# what it has (partial, no total) and the next invitation starts afresh.
RESUME_WITHIN = timedelta(days=7)
RESUMES = "resumes_session"  # the state variable naming the paused run a new run continues


def sitting(db: Session, row: FlowSession) -> list[FlowSession]:
    """This run and the paused runs it continues, oldest first."""
    runs = [row]
    while (earlier := runs[0].state.get("vars", {}).get(RESUMES)) is not None:
        paused = db.get(FlowSession, int(earlier))
        if paused is None or paused.id in {r.id for r in runs}:
            break
        runs.insert(0, paused)
    return runs


def _answers(db: Session, runs: list[FlowSession]) -> dict[str, str]:
    ids = [r.id for r in runs]
    answers = db.exec(
        select(Answer)
        .where(col(Answer.session_id).in_(ids), Answer.late == False)  # noqa: E712
        .order_by(col(Answer.id))
    ).all()
    return {a.question: a.value for a in answers}


def _not_taken_up(db: Session, row: FlowSession) -> bool:
    """A run that continues a paused one but ended before any item was answered (LATER, no reply)."""
    if row.state.get("vars", {}).get(RESUMES) is None:
        return False
    return not any(_is_item(q) for q in _answers(db, [row]))


def _is_item(question: str) -> bool:
    return question.rpartition("_")[2].isdigit()  # items are <instrument>_<number>


def paused_sitting(
    db: Session, participant_id: int, flow: engine.Flow, now: datetime
) -> tuple[FlowSession, str] | None:
    """The participant's last run of this questionnaire, if it paused for safety lately, and the
    node to take it up again at (the invitation before its first unanswered item). An invitation
    to carry on that was not taken up does not count as a run: the paused one can still be."""
    recent = db.exec(
        select(FlowSession)
        .where(
            FlowSession.participant_id == participant_id,
            FlowSession.flow == flow.id,
            FlowSession.status == SessionStatus.ENDED,
        )
        .order_by(col(FlowSession.id).desc())
        .limit(20)
    ).all()
    last = next((r for r in recent if not _not_taken_up(db, r)), None)
    if last is None or last.end_reason != engine.PAUSED_FOR_SAFETY or last.flow_version != flow.version:
        return None
    runs = sitting(db, last)
    if runs[0].started_at is None or now - runs[0].started_at > RESUME_WITHIN:
        return None
    entry = engine.resume_entry(flow, _answers(db, runs))
    return (last, entry) if entry else None


def record_results(
    db: Session, rt: Runtime, participant: Participant, row: FlowSession, now: datetime
) -> list[Measure]:
    """When a questionnaire flow ends: one Measure per instrument, scored only if complete."""
    assert participant.id is not None
    ids = row.flow.removeprefix("questionnaire_").split("_")
    if _not_taken_up(db, row):
        return []  # an invitation to carry on, declined or unanswered: the paused sitting's results stand
    runs = sitting(db, row)
    by_question = _answers(db, runs)
    # An instrument already complete when the sitting paused (PHQ-9 ends with its risk item) has
    # its score: taking the sitting up again scores only the others.
    scored = set(
        db.exec(
            select(Measure.instrument).where(
                col(Measure.session_id).in_([r.id for r in runs[:-1]]), Measure.status == MeasureStatus.COMPLETE
            )
        ).all()
    )
    results = []
    for instrument_id in ids:
        if instrument_id in scored:
            continue
        instrument = rt.flows.instruments[instrument_id]
        given: dict[int, str | None] = {}
        for number in range(1, len(instrument.items) + 1):
            value = by_question.get(f"{instrument_id}_{number}")
            # "unclear" (a risk item's answer that fits no value) is kept, and is no score.
            given[number] = value if value not in NOT_SCORED else None
        result = engine.score(instrument, given)
        # Skipped items leave a finished questionnaire partial: never scored as complete.
        ended = STATUS_FOR_END.get(row.end_reason or "", MeasureStatus.PARTIAL)
        status = (
            MeasureStatus.COMPLETE
            if result.complete
            else (MeasureStatus.PARTIAL if ended == MeasureStatus.COMPLETE else ended)
        )
        measure = Measure(
            participant_id=participant.id,
            session_id=row.id,
            instrument=instrument_id,
            status=status,
            total=result.total,
            band=result.band,
            items={str(k): v for k, v in result.items.items()},
            started_at=runs[0].started_at,
            completed_at=now,
        )
        db.add(measure)
        results.append(measure)
    db.flush()
    check_trajectory(db, participant, now)
    return results


def sitting_scores(measures: list[Measure]) -> list[Score]:
    """Complete results as scores tagged with their sitting: the runs of one sitting share its start."""
    return [
        Score(
            instrument=m.instrument,
            total=m.total,
            sitting=m.started_at or ("run", m.session_id or -(m.id or 0)),
            at=m.completed_at,
        )
        for m in measures
        if m.status == MeasureStatus.COMPLETE and m.total is not None
    ]


def participant_trajectory(db: Session, participant_id: int) -> dict[str, Any] | None:
    complete = db.exec(
        select(Measure)
        .where(Measure.participant_id == participant_id, Measure.status == MeasureStatus.COMPLETE)
        .order_by(col(Measure.completed_at), col(Measure.id))
    ).all()
    return trajectory_of(sitting_scores(list(complete)))


def trajectory_of(scores: list[Score]) -> dict[str, Any] | None:
    """Per scale and combined outcomes from paired first and last sittings; None from one sitting."""
    found = paired_outcomes(scores)
    if not found:
        return None
    return {key: (found[key].as_dict() if key in found else None) for key in (*SCALES, COMBINED)}


def check_trajectory(db: Session, participant: Participant, now: datetime) -> None:
    """A reliable rise on either scale is flagged for a person to look at (whatever the other did)."""
    assert participant.id is not None
    result = participant_trajectory(db, participant.id)
    worse = [
        s for s in SCALES if result and result[s] and result[s]["last"][s] - result[s]["first"][s] >= RELIABLE_CHANGE[s]
    ]
    if result and worse:
        raise_flag(
            db,
            participant,
            kind="reliable_deterioration",
            severity="action",
            reason="Questionnaire scores show a reliable deterioration since the first ones",
            now=now,
            evidence={s: {"first": result[s]["first"][s], "latest": result[s]["last"][s]} for s in worse},
        )


def plan_questionnaires(
    db: Session, participant: Participant, now: datetime, *, after: datetime | None = None, reason: str = "start"
) -> DueTask | None:
    """The service's schedule: at start, every N weeks while supported, and at the end of support."""
    assert participant.id is not None
    settings = settings_for(db, participant)
    if not settings.questionnaire_instruments:
        return None
    pending = db.exec(pending_tasks(participant.id, "questionnaire")).all()
    if any(t.payload.get("reason") == reason for t in pending):
        return None
    at = parse_hhmm(settings.questionnaire_time)
    if reason == "end":
        if not participant.support_ends_on or not settings.questionnaire_at_end:
            return None
        due = local_at(participant.support_ends_on, at, participant.timezone)
        if due <= now:
            return None
    elif after is None:
        if not settings.questionnaire_at_start:
            reason, after = "every", now
        else:  # at the service's questionnaire time, the first allowed day from today
            day = now.astimezone(ZoneInfo(participant.timezone)).date()
            times = (local_at(day + timedelta(days=n), at, participant.timezone) for n in range(15))
            due = next(
                (t for t in times if t >= now and next_allowed(t, participant, settings) == t),
                next_allowed(now, participant, settings),
            )
    if after is not None:
        day = after.astimezone().date() + timedelta(weeks=settings.questionnaire_every_weeks)
        due = local_at(day, at, participant.timezone)
        if participant.support_ends_on and day >= participant.support_ends_on:
            return None
    task = DueTask(
        participant_id=participant.id,
        kind="questionnaire",
        due_at=due,
        created_at=now,
        payload={"instruments": list(settings.questionnaire_instruments), "reason": reason},
    )
    db.add(task)
    db.flush()
    return task


def _note(measure: Measure) -> str | None:
    """A total with an item answered "not applicable" (WSAS work) is partial: said, never banded."""
    if measure.total is None or measure.status != MeasureStatus.PARTIAL:
        return None
    skipped = sum(1 for v in measure.items.values() if v == "not_applicable")
    return f"{len(measure.items) - skipped}-item total, work not applicable: not banded" if skipped else None


def measures_for_export(db: Session, participant_id: int) -> list[dict[str, Any]]:
    rows = db.exec(select(Measure).where(Measure.participant_id == participant_id).order_by(col(Measure.id))).all()
    return [
        {
            "instrument": m.instrument,
            "status": m.status,
            "total": m.total,
            "band": m.band,
            "severity": m.band,
            "items": m.items,
            "note": _note(m),
            "started_at": m.started_at.isoformat() if m.started_at else None,
            "completed_at": m.completed_at.isoformat() if m.completed_at else None,
        }
        for m in rows
    ]
