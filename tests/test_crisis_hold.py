"""Routine automated contact waits for a participant with an unacknowledged crisis flag, and goes
once someone acknowledges it; reminders and missed-appointment follow-ups do not wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from assistant.care.flags import acknowledge
from assistant.clock import FixedClock
from assistant.contact import campaigns
from assistant.db.models import CampaignRecipient, DueTask, Flag, Message, Participant, Service
from assistant.db.units import transaction
from assistant.imports.appointments import import_appointments
from assistant.imports.caseload import import_caseload
from assistant.jobs.tick import tick
from assistant.runtime import Runtime

from .conftest import Phone

MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ALEX = "+447700900101"


@pytest.fixture
def alex(rt: Runtime, caseload_file: Path) -> int:
    import_caseload(rt, caseload_file, rt.clock.now())
    with transaction(rt.engine) as db:
        person = db.exec(select(Participant).where(Participant.external_id == "P001")).one()
        assert person.id is not None
        return person.id


def _keys_to(rt: Runtime, participant_id: int) -> list[str]:
    with transaction(rt.engine) as db:
        return [
            m.message_key or ""
            for m in db.exec(
                select(Message)
                .where(Message.participant_id == participant_id, Message.direction == "out")
                .order_by(col(Message.id))
            ).all()
        ]


def _acknowledge(rt: Runtime, participant_id: int, now: datetime) -> None:
    with transaction(rt.engine) as db:
        flag = db.exec(select(Flag).where(Flag.participant_id == participant_id, Flag.kind == "crisis")).one()
        acknowledge(db, flag, by="sam.jones@example.org", note="Rang them", now=now)


def test_campaigns_and_questionnaires_wait_until_the_crisis_flag_is_acknowledged(
    rt: Runtime, alex: int, phone: Phone, clock: FixedClock
) -> None:
    clock.set(MONDAY_10 - timedelta(hours=1))
    phone.text(ALEX, "I want to end it all")
    assert _keys_to(rt, alex) == ["common/crisis"]
    with transaction(rt.engine) as db:
        service = db.exec(select(Service)).one()
        assert service.id is not None
        campaign = campaigns.create(
            db,
            service_id=service.id,
            now=clock.now(),
            flows=rt.flows,
            name="CV clinic",
            text="Hi {{ first_name }}, there's a CV clinic at the library on Tuesday. {{ specialist_name }}",
            audience={},
            created_by="admin@example.org",
            send_at=MONDAY_10,
        )
        db.add(
            DueTask(
                participant_id=alex,
                kind="questionnaire",
                due_at=MONDAY_10,
                payload={"instruments": ["gad7"], "reason": "now"},
            )
        )
    for minutes in (0, 15, 30, 45):  # an hour goes by: still nobody has acknowledged it
        clock.set(MONDAY_10 + timedelta(minutes=minutes))
        tick(rt, clock.now())
    assert _keys_to(rt, alex) == ["common/crisis"]  # held, for Alex only
    with transaction(rt.engine) as db:
        copies = {
            r.participant_id: r.status
            for r in db.exec(select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign.id)).all()
        }
        task = db.exec(select(DueTask).where(DueTask.kind == "questionnaire")).one()
    assert copies[alex] == "planned" and sorted(copies.values()) == ["planned", "queued", "queued"]
    assert task.status == "pending"  # deferred, not dropped
    _acknowledge(rt, alex, MONDAY_10 + timedelta(minutes=50))
    clock.set(MONDAY_10 + timedelta(hours=1))
    tick(rt, clock.now())
    assert _keys_to(rt, alex) == ["common/crisis", "questionnaire/intro", f"campaign/{campaign.id}"]


def test_reminders_and_missed_appointment_follow_ups_still_go(
    rt: Runtime, alex: int, phone: Phone, clock: FixedClock, tmp_path: Path
) -> None:
    rows = tmp_path / "appointments.csv"
    header = "appointment_id,participant_id,starts_at,kind,duration_minutes,location,outcome\n"
    rows.write_text(header + "A1,P001,2026-11-26 14:00,meeting,60,,\nA2,P001,2026-11-23 09:00,meeting,60,,\n")
    import_appointments(rt, rows, clock.now())
    clock.set(MONDAY_10 - timedelta(minutes=30))
    phone.text(ALEX, "I want to end it all")
    rows.write_text(header + "A2,P001,2026-11-23 09:00,meeting,60,,dna\n")  # marked as missed
    import_appointments(rt, rows, clock.now())
    clock.set(MONDAY_10)
    tick(rt, clock.now())
    assert _keys_to(rt, alex) == ["common/crisis", "dna_followup/attempt"]
    clock.set(MONDAY_10 + timedelta(minutes=30))  # the reminder gives the follow-up's question a moment first
    tick(rt, clock.now())
    assert _keys_to(rt, alex) == ["common/crisis", "dna_followup/attempt", "appointment_reminder/remind"]
    tuesday_checkin = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    clock.set(tuesday_checkin)
    tick(rt, clock.now())
    assert "checkin/ask_week" not in _keys_to(rt, alex)  # the routine check-in waits
    with transaction(rt.engine) as db:
        [checkin] = db.exec(
            select(DueTask).where(
                DueTask.participant_id == alex, DueTask.kind == "checkin", DueTask.status == "pending"
            )
        ).all()
    assert checkin.due_at == tuesday_checkin + timedelta(minutes=15)  # and looks again soon


def test_a_request_to_stop_in_their_own_words_holds_routine_texts_until_someone_sees_it(
    rt: Runtime, alex: int, phone: Phone, clock: FixedClock
) -> None:
    """Nothing routine goes to someone who has just asked for the texts to stop: the check-in
    waits until a person has acknowledged the request, then goes."""
    tuesday_checkin = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    clock.set(tuesday_checkin - timedelta(hours=2))
    phone.text(ALEX, "please stop contacting me, I don't want these anymore")
    assert _keys_to(rt, alex) == ["common/confirm_stop"]
    for minutes in (0, 15, 30):
        clock.set(tuesday_checkin + timedelta(minutes=minutes))
        tick(rt, clock.now())
    assert _keys_to(rt, alex) == ["common/confirm_stop"]  # held, not dropped
    with transaction(rt.engine) as db:
        flag = db.exec(select(Flag).where(Flag.participant_id == alex, Flag.kind == "wants_to_stop")).one()
        acknowledge(
            db, flag, by="sam.jones@example.org", note="Rang them: they want to keep the check-ins", now=clock.now()
        )
    clock.set(tuesday_checkin + timedelta(minutes=45))
    tick(rt, clock.now())
    assert _keys_to(rt, alex) == ["common/confirm_stop", "checkin/ask_week"]
