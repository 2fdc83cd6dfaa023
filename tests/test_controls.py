"""Participant controls by text: never on a crisis text, and the words they read."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from assistant.conversation import controls
from assistant.conversation import router as routing
from assistant.db.models import ContactRequest, Flag, Message, Participant
from assistant.engine.contact_words import code_in, day_in, phone_in, time_in, weeks_in
from assistant.engine.understanding import read
from assistant.runtime import Runtime

from .conftest import Phone

CONTROLS = ("code for a new number", "new number", "how long a break", "pause", "less or more", "another day or time")


def test_risk_is_read_before_every_control() -> None:
    names = [step.name for step in routing.HANDLERS]
    assert names[0] == "risk to self"
    for name in CONTROLS:
        assert names.index("risk to self") < names.index(name) < names.index("waiting flow"), name


CRISIS_WITH_A_CONTROL = [
    "i want to end it all, pause the texts for 2 weeks",
    "pause for 2 weeks. kms",
    "less texts, i cant go on anymore",
    "text me on thursdays instead, i want to die",
    "im going to kill myself. new number 07700 900202",
]


@pytest.mark.parametrize("body", CRISIS_WITH_A_CONTROL)
def test_a_crisis_text_is_never_taken_as_a_control(rt: Runtime, unit: tuple[Session, Participant], body: str) -> None:
    db, participant = unit
    before = (participant.paused, participant.checkin_every_weeks, participant.checkin_day, participant.checkin_time)
    phone = participant.phone
    message = Message(
        participant_id=participant.id, direction="in", body=body, at=rt.clock.now(), status="received", phone=phone
    )
    db.add(message)
    db.flush()
    reading = read(body, rt.phrases.get(None))
    assert reading.has("risk") and len(reading.kinds()) > 1, reading.kinds()
    outcome = routing.handle_text(db, rt, participant, message, rt.clock.now())
    keys = [db.get(Message, i).message_key for i in outcome.outbox]  # type: ignore[union-attr]
    assert keys == ["common/crisis"]
    assert "crisis" in {f.kind for f in db.exec(select(Flag)).all()}
    after = (participant.paused, participant.checkin_every_weeks, participant.checkin_day, participant.checkin_time)
    assert after == before and participant.phone == phone
    assert db.exec(select(ContactRequest)).all() == []


def test_cadence_steps() -> None:
    assert [controls.next_cadence(w, less=True) for w in (1, 2, 4)] == [2, 4, 4]
    assert [controls.next_cadence(w, less=False) for w in (1, 2, 4)] == [1, 1, 2]
    assert controls.next_cadence(3, less=True) == 4 and controls.next_cadence(3, less=False) == 2


@pytest.mark.parametrize(
    ("text", "weeks"),
    [
        ("1", 1), ("2", 2), ("4", 4), ("4 weeks", 4), ("a week", 1), ("one week please", 1),
        ("a couple of weeks", 2), ("a fortnight", 2), ("for a month", 4), ("two", 2),
        ("not sure yet", None), ("pause", None),
    ],
)  # fmt: skip
def test_weeks_in(text: str, weeks: int | None) -> None:
    assert weeks_in(text) == weeks


@pytest.mark.parametrize(
    ("text", "day"),
    [("can you text on thursdays instead", 3), ("Thurs", 3), ("on a friday", 4), ("mondays are better", 0),
     ("after 6pm", None), ("sun is out", None)],
)  # fmt: skip
def test_day_in(text: str, day: int | None) -> None:
    assert day_in(text) == day


@pytest.mark.parametrize(
    ("text", "at"),
    [("after 6pm", "18:30"), ("before 9am", "08:30"), ("at 7.15pm", "19:15"), ("after 6", "18:30"),
     ("mornings are better", "09:30"), ("evenings", "18:30"), ("around 12pm", "12:00"), ("18:00 please", "18:00"),
     ("can you text on thursdays instead", None), ("i have 2 kids", None)],
)  # fmt: skip
def test_time_in(text: str, at: str | None) -> None:
    assert time_in(text) == at


def test_phone_and_code() -> None:
    assert phone_in("new number its 07700 900202 thanks") == "07700 900202"
    assert phone_in("+447700900202") == "+447700900202"
    assert phone_in("no number here") is None
    assert code_in("482913") == "482913"
    assert code_in("482 913") == "482913" and code_in("code is 482913 thanks") == "482913"
    assert code_in("new number 07700 900202") is None
    assert code_in("12345") is None


def test_changes_by_text_keep_one_flag_headed_by_the_latest(rt: Runtime, caseload_file: Path, phone: Phone) -> None:
    from assistant.db.units import transaction
    from assistant.imports.caseload import import_caseload

    import_caseload(rt, caseload_file, rt.clock.now())
    phone.text("+447700900101", "can you text on thursdays instead")
    phone.text("+447700900101", "mornings are better")
    with transaction(rt.engine) as db:
        [flag] = db.exec(select(Flag).where(Flag.kind == "contact_changed")).all()
    assert flag.reason.startswith("Asked by text for check-ins on Thursdays at 09:30"), flag.reason
    first, latest = flag.evidence
    assert first["reason"].startswith("Asked by text for check-ins on Thursdays at 10:30")  # its own words kept
    assert "reason" not in latest
