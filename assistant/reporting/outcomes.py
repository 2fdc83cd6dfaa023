"""The outcomes report for a period: referrals, starts, time to first contact and to start, job
starts, sustainment, exits by reason, and clinical outcomes on paired measures, for the service
and by cohort and by referral source, every rate with its denominator.

Fields the record may not have yet (referral date and source, exit reason, job starts) are read
defensively and reported as "not recorded" when absent. Clinical outcomes follow
assistant/care/clinical_outcomes.py, for people whose last paired sitting fell in the period (scores
after the period are left out).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from assistant.care.clinical_outcomes import COMBINED, SCALES, ClinicalOutcome, paired_outcomes
from assistant.care.measures import sitting_scores
from assistant.db import models
from assistant.db.models import Appointment, ContactLog, JobStart, Measure, MeasureStatus, Message, Participant
from assistant.timing import local_at

NOT_RECORDED = "not recorded"
JOB_HOURS = 7  # a job start counts at 7 or more hours a week
SUSTAIN_WEEKS = (13, 26)
SMALL = 5  # counts under this are suppressed in exports
CLINICAL = ("caseness_first", "recovery", "reliable_improvement", "reliable_deterioration", "reliable_recovery")


@dataclass(frozen=True)
class Rate:
    numerator: int
    denominator: int

    @property
    def percent(self) -> float | None:
        return round(100 * self.numerator / self.denominator, 1) if self.denominator else None


@dataclass
class Group:
    """One column of the report: the whole service, or one cohort, or one referral source."""

    dimension: str  # all, cohort, referral_source
    value: str
    referrals: int | None = None  # None: not recorded
    starts: int = 0
    days_to_first_contact: list[int] = field(default_factory=list)
    days_to_start: list[int] = field(default_factory=list)
    job_starts: int | None = None
    sustained: dict[int, Rate] = field(default_factory=dict)
    exits: dict[str, int] = field(default_factory=dict)
    clinical: dict[str, dict[str, Rate]] = field(default_factory=dict)  # scale -> measure -> rate


@dataclass
class OutcomesReport:
    start: date
    end: date
    groups: list[Group]
    recorded: dict[str, bool]  # which optional fields the record has


def _field(person: Participant, name: str) -> Any:
    return getattr(person, name, None)


def median_of(values: list[int]) -> float | None:
    return statistics.median(values) if values else None


def outcomes_report(db: Session, start: date, end: date, tz: str, people_query: Any) -> OutcomesReport:
    """Outcomes for [start, end] (local dates, inclusive) among the participants `people_query` finds."""
    if end < start:
        raise ValueError("the period ends before it starts")
    since, until = local_at(start, time(0, 0), tz), local_at(end + timedelta(days=1), time(0, 0), tz)
    people = [p for p in db.exec(people_query).all() if p.erased_at is None]
    recorded = {
        "referral_date": hasattr(Participant, "referral_date"),
        "referral_source": hasattr(Participant, "referral_source"),
        "exit_reason": hasattr(Participant, "exit_reason"),
        "job_starts": getattr(models, "JobStart", None) is not None,
    }
    ids = [p.id for p in people]
    first_contact = _first_contacts(db, ids)
    jobs = _job_starts(db, ids) if recorded["job_starts"] else {}
    outcomes = _clinical(db, ids, since, until)
    groups = [Group("all", "all")]
    groups += [Group("cohort", c) for c in sorted({p.cohort for p in people})]
    groups += [
        Group("referral_source", s) for s in sorted({_field(p, "referral_source") or NOT_RECORDED for p in people})
    ]
    for group in groups:
        members = [p for p in people if _member(group, p)]
        _counts(group, members, start, end, recorded, first_contact, jobs)
        _clinical_rates(group, [outcomes[p.id] for p in members if p.id in outcomes])
    return OutcomesReport(start, end, groups, recorded)


def _member(group: Group, person: Participant) -> bool:
    if group.dimension == "cohort":
        return person.cohort == group.value
    if group.dimension == "referral_source":
        return (_field(person, "referral_source") or NOT_RECORDED) == group.value
    return True


def _in(day: Any, start: date, end: date) -> bool:
    return isinstance(day, date) and start <= (day.date() if isinstance(day, datetime) else day) <= end


def _counts(
    group: Group,
    members: list[Participant],
    start: date,
    end: date,
    recorded: dict[str, bool],
    first_contact: dict[int, datetime],
    jobs: dict[int, list[tuple[date, float, dict[str, Any]]]],
) -> None:
    referred = [p for p in members if _in(_field(p, "referral_date"), start, end)]
    group.referrals = len(referred) if recorded["referral_date"] else None
    group.starts = sum(1 for p in members if _in(p.support_started_on, start, end))
    for person in referred:
        referral = _field(person, "referral_date")
        referral = referral.date() if isinstance(referral, datetime) else referral
        assert person.id is not None
        if person.id in first_contact:
            group.days_to_first_contact.append((first_contact[person.id].date() - referral).days)
        if person.support_started_on is not None:
            group.days_to_start.append((person.support_started_on - referral).days)
    for person in members:
        if _in(person.support_ends_on, start, end):
            reason = str(_field(person, "exit_reason") or NOT_RECORDED)
            group.exits[reason] = group.exits.get(reason, 0) + 1
    if not recorded["job_starts"]:
        return
    held = [job for p in members for job in jobs.get(p.id or 0, []) if job[1] >= JOB_HOURS]
    group.job_starts = sum(1 for job in held if start <= job[0] <= end)
    for weeks in SUSTAIN_WEEKS:  # jobs whose N-week mark fell in the period: in work at it, by their word?
        due = [job for job in held if start <= job[0] + timedelta(weeks=weeks) <= end]
        kept = [job for job in due if job[2].get(str(weeks)) in IN_WORK_ANSWERS]
        group.sustained[weeks] = Rate(len(kept), len(due))


def _clinical_rates(group: Group, outcomes: list[dict[str, ClinicalOutcome]]) -> None:
    for scale in (*SCALES, COMBINED):
        paired = [o[scale] for o in outcomes if scale in o]
        at_caseness = [o for o in paired if o.caseness_first]
        group.clinical[scale] = {
            "caseness_first": Rate(len(at_caseness), len(paired)),
            "recovery": Rate(sum(1 for o in at_caseness if o.recovery), len(at_caseness)),
            "reliable_improvement": Rate(sum(1 for o in paired if o.reliable_improvement), len(paired)),
            "reliable_deterioration": Rate(sum(1 for o in paired if o.reliable_deterioration), len(paired)),
            "reliable_recovery": Rate(sum(1 for o in at_caseness if o.reliable_recovery), len(at_caseness)),
        }


def _first_contacts(db: Session, ids: list[Any]) -> dict[int, datetime]:
    """Each person's first contact of any kind: a reply, an attended appointment, a logged contact."""
    found: dict[int, datetime] = {}
    queries = [
        select(Message.participant_id, func.min(Message.at))
        .where(col(Message.participant_id).in_(ids), Message.direction == "in")
        .group_by(col(Message.participant_id)),
        select(Appointment.participant_id, func.min(Appointment.starts_at))
        .where(col(Appointment.participant_id).in_(ids), Appointment.outcome == "attended")
        .group_by(col(Appointment.participant_id)),
        select(ContactLog.participant_id, func.min(ContactLog.at))
        .where(col(ContactLog.participant_id).in_(ids))
        .group_by(col(ContactLog.participant_id)),
    ]
    for query in queries:
        for pid, at in db.exec(query).all():
            if pid is not None and at is not None and (pid not in found or at < found[pid]):
                found[pid] = at
    return found


# A sustainment check counts a job as held when the person said they are still in work, in it or
# another job; "no", no reply or an unclear one do not (sustainment.toml).
IN_WORK_ANSWERS = frozenset({"yes", "changed_job"})


def _job_starts(db: Session, ids: list[Any]) -> dict[int, list[tuple[date, float, dict[str, Any]]]]:
    """Job starts by participant: (start date, hours a week, the sustainment answers by weeks)."""
    found: dict[int, list[tuple[date, float, dict[str, Any]]]] = {}
    for job in db.exec(select(JobStart).where(col(JobStart.participant_id).in_(ids))).all():
        found.setdefault(job.participant_id, []).append((job.started_on, job.hours_per_week, dict(job.sustainment)))
    return found


def _clinical(db: Session, ids: list[Any], since: datetime, until: datetime) -> dict[int, dict[str, ClinicalOutcome]]:
    """Paired outcomes of people whose last complete sitting before the period's end fell in it."""
    rows = db.exec(
        select(Measure)
        .where(
            col(Measure.participant_id).in_(ids),
            Measure.status == MeasureStatus.COMPLETE,
            col(Measure.instrument).in_(SCALES),
            col(Measure.completed_at) < until,
        )
        .order_by(col(Measure.participant_id), col(Measure.completed_at), col(Measure.id))
    ).all()
    by_person: dict[int, list[Measure]] = {}
    for measure in rows:
        by_person.setdefault(measure.participant_id, []).append(measure)
    result = {}
    for pid, measures in by_person.items():
        last = max((m.completed_at for m in measures if m.completed_at), default=None)
        if last is not None and last >= since and (found := paired_outcomes(sitting_scores(measures))):
            result[pid] = found
    return result
