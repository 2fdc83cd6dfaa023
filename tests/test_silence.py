"""The silence rule: D days without a text, measured against each person's own cadence, said once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from assistant.care import flags, rhythm, rules
from assistant.db.models import DueTask, Flag, Participant
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload
from assistant.runtime import Runtime

from .conftest import START, Phone


def _not_responding(rt: Runtime) -> dict[str, list[str]]:
    with transaction(rt.engine) as db:
        found: dict[str, list[str]] = {}
        for flag, person in db.exec(
            select(Flag, Participant)
            .join(Participant, Participant.id == Flag.participant_id)  # type: ignore[arg-type]
            .where(Flag.kind == "not_responding")
            .order_by(Flag.id)  # type: ignore[arg-type]
        ).all():
            found.setdefault(person.external_id, []).append(flag.status)
        return found


def _sweep(rt: Runtime, days: float) -> None:
    with transaction(rt.engine) as db:
        rules.silence_sweep(db, START + timedelta(days=days))


def _asked_every(rt: Runtime, caseload_file: Path, weeks: dict[str, int]) -> None:
    """The caseload, each person checked in with every so many weeks (1 unless given); Priya (P003)
    paused, automation off: never "silent"."""
    import_caseload(rt, caseload_file, START)
    with transaction(rt.engine) as db:
        for person in db.exec(select(Participant)).all():
            person.checkin_every_weeks = weeks.get(person.external_id, 1)
            person.paused = person.external_id == "P003"
            db.add(person)


def test_someone_asked_monthly_is_not_silent_at_day_21_but_is_at_day_35(rt: Runtime, caseload_file: Path) -> None:
    _asked_every(rt, caseload_file, {"P002": 4})
    _sweep(rt, 21)
    assert _not_responding(rt) == {"P001": ["open"]}
    _sweep(rt, 35 - 1 / 1440)
    assert _not_responding(rt) == {"P001": ["open"]}
    _sweep(rt, 35)
    assert _not_responding(rt) == {"P001": ["open"], "P002": ["open"]}
    with transaction(rt.engine) as db:
        flag = db.exec(select(Flag).where(Flag.kind == "not_responding")).first()
        assert flag is not None and flag.reason == "No text from them for 21 days"


def test_each_cadence_waits_its_own_silence_however_long(rt: Runtime, caseload_file: Path) -> None:
    """Fortnightly waits 21 days; asked every 12 weeks (a cadence the sweep has no horizon of its
    own for) waits 91."""
    _asked_every(rt, caseload_file, {"P001": 2, "P002": 12})
    _sweep(rt, 21 - 1 / 1440)
    assert _not_responding(rt) == {}
    _sweep(rt, 21)
    assert _not_responding(rt) == {"P001": ["open"]}
    _sweep(rt, 91 - 1 / 1440)
    assert _not_responding(rt) == {"P001": ["open"]}
    _sweep(rt, 91)
    assert _not_responding(rt) == {"P001": ["open"], "P002": ["open"]}


def test_a_resolved_silence_is_not_raised_again_until_a_new_silence(
    rt: Runtime, caseload_file: Path, phone: Phone
) -> None:
    import_caseload(rt, caseload_file, START)
    _sweep(rt, 21)
    with transaction(rt.engine) as db:
        for flag in db.exec(select(Flag).where(Flag.kind == "not_responding")).all():
            flags.resolve(db, flag, by="sam.jones@example.org", note="Rang them", now=START + timedelta(days=21))
    for day in (22, 30, 40):
        _sweep(rt, day)
    # P002 is in work, asked every four weeks: first silent at day 35, and said once.
    assert _not_responding(rt) == {"P001": ["resolved"], "P002": ["open"], "P003": ["resolved"]}
    rt.clock.set(START + timedelta(days=41))  # type: ignore[attr-defined]
    assert phone.text("+447700900101", "hello again").status_code == 200
    _sweep(rt, 41 + 21 - 1 / 1440)
    assert _not_responding(rt)["P001"] == ["resolved"]
    _sweep(rt, 41 + 21)
    assert _not_responding(rt)["P001"] == ["resolved", "open"]


def test_nobody_is_chased_for_silence_after_their_support_ended(rt: Runtime, caseload_file: Path) -> None:
    import_caseload(rt, caseload_file, START)
    ended = {"P001": START + timedelta(days=7), "P003": START + timedelta(days=21)}  # P003's ends on the day
    with transaction(rt.engine) as db:
        for person in db.exec(select(Participant)).all():
            person.support_ends_on = ended[person.external_id].date() if person.external_id in ended else None
            db.add(person)
            rhythm.note_ask(db, person, START + timedelta(days=1))  # each has a text unanswered since day 1
    rhythm.rhythm_sweep(rt.engine, START + timedelta(days=21))
    with transaction(rt.engine) as db:
        chased = {
            person.external_id
            for person, _task in db.exec(
                select(Participant, DueTask)
                .join(DueTask, DueTask.participant_id == Participant.id)  # type: ignore[arg-type]
                .where(DueTask.kind == rhythm.FOLLOW_UP)
            ).all()
        }
    _sweep(rt, 21)
    # P003's support goes on to the end of the day: chased. P002 is in work, asked monthly: not
    # silent yet. P001's support ended: neither rule chases them.
    assert chased | set(_not_responding(rt)) == {"P003"}
    assert "P001" not in chased and "P001" not in _not_responding(rt)
