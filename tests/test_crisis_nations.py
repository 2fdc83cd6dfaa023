"""Crisis signposting gives the urgent-help numbers of the nation the participant's service is in.

Golden conversations show a Scottish and a Northern Irish service's replies to a crisis text;
these follow the same choice through a questionnaire and through a change of setting.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import col, select

from assistant.clock import FixedClock
from assistant.contact.settings_change import change_settings
from assistant.db.models import DueTask, Message, Participant, Service
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload
from assistant.jobs.tick import tick
from assistant.runtime import Runtime

from .conftest import Phone

ALEX = "+447700900101"


def _crisis_replies(rt: Runtime) -> list[str]:
    with transaction(rt.engine) as db:
        rows = db.exec(select(Message).where(Message.message_key == "common/crisis").order_by(col(Message.id))).all()
        return [m.body for m in rows]


def _set_nation(rt: Runtime, nation: str) -> None:
    with transaction(rt.engine) as db:
        north = db.exec(select(Service).where(Service.slug == "north")).one()
        change_settings(
            db,
            north,
            {"nation": nation, "duty_contact_email": "duty@example.org"},
            by="admin@example.org",
            now=rt.clock.now(),
        )


def test_item_9_in_a_welsh_service_signposts_nhs_111_wales(
    rt: Runtime, phone: Phone, clock: FixedClock, caseload_file: Path
) -> None:
    import_caseload(rt, caseload_file, clock.now())
    _set_nation(rt, "wales")
    with transaction(rt.engine) as db:
        alex = db.exec(select(Participant).where(Participant.external_id == "P001")).one()
        payload = {"instruments": ["phq9"], "reason": "now"}
        db.add(DueTask(participant_id=alex.id, kind="questionnaire", due_at=clock.now(), payload=payload))
    tick(rt, clock.now())
    for answer in ["yes"] + ["0"] * 8:
        clock.set(clock.now() + timedelta(minutes=1))
        phone.text(ALEX, answer)
    assert _crisis_replies(rt) == []
    clock.set(clock.now() + timedelta(minutes=1))
    phone.text(ALEX, "2")  # item 9: more than half the days
    [reply] = _crisis_replies(rt)
    assert "For urgent help call NHS 111 Wales and press 2 for mental health" in reply
    assert "Samaritans free on 116 123" in reply and "not watched around the clock" in reply


def test_the_reply_follows_a_change_of_nation_at_once(
    rt: Runtime, phone: Phone, clock: FixedClock, caseload_file: Path
) -> None:
    import_caseload(rt, caseload_file, clock.now())
    phone.text(ALEX, "I want to end it all")
    _set_nation(rt, "scotland")
    clock.set(clock.now() + timedelta(days=2))
    phone.text(ALEX, "I want to end it all")
    england, scotland = _crisis_replies(rt)
    assert "NHS 111 and choose the mental health option" in england and "NHS 24" not in england
    assert "NHS 24 on 111" in scotland and "Breathing Space on 0800 83 85 87" in scotland
    assert "NHS 111" not in scotland
