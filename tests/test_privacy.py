"""Consent, erasure and retention do what PRIVACY.md says they do."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from assistant.care.privacy import due_for_retention, erase, record_consent
from assistant.config import ROOT
from assistant.db.models import Answer, Appointment, DueTask, Flag, Message, Participant
from assistant.db.service_settings import ServiceSettings
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload
from assistant.jobs.tick import tick
from assistant.outbox.writer import queue_sms
from assistant.reporting.export import export_participant, find_participant
from assistant.runtime import Runtime

from .conftest import CASELOAD_HEADER, Phone, outbound

PRIVACY = (ROOT / "PRIVACY.md").read_text()


def _person(rt: Runtime, external_id: str = "P001") -> Participant:
    with transaction(rt.engine) as db:
        return find_participant(db, external_id)


def test_withdrawing_text_consent_stops_texts_at_once(rt: Runtime, caseload_file: Path, phone: Phone) -> None:
    import_caseload(rt, caseload_file, rt.clock.now())
    with transaction(rt.engine) as db:
        alex = find_participant(db, "P001")
        queued_id = queue_sms(db, rt, alex, "common/help", rt.clock.now())
        record_consent(db, alex, "sms_contact", granted=False, by="sam.jones@example.org", now=rt.clock.now())
    with transaction(rt.engine) as db:
        assert db.get(Message, queued_id).status == "cancelled"  # type: ignore[union-attr]
        assert db.exec(select(Flag).where(Flag.kind == "consent_withdrawn")).one()
    tick(rt, datetime(2026, 11, 24, 10, 30, tzinfo=UTC))  # Alex's check-in time
    phone.text("+447700900101", "help")
    assert [m.status for m in outbound(rt) if m.participant_id == _person(rt).id] == ["cancelled", "suppressed"]
    phone.text("+447700900101", "I want to end it all")  # crisis signposting still goes
    assert outbound(rt)[-1].message_key == "common/crisis" and outbound(rt)[-1].status == "sent"
    with transaction(rt.engine) as db:
        record = export_participant(db, find_participant(db, "P001"))
    assert record["consent"]["sms_contact"]["granted"] is False
    assert record["consent"]["sms_contact"]["recorded_by"] == "sam.jones@example.org"


def test_no_recorded_consent_means_no_texts(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        CASELOAD_HEADER.strip()
        + ",consent_sms\nP001,Alex,07700900101,sam@example.org,Sam,north,out_of_work,Tue,10:30,no\n"
    )
    import_caseload(rt, path, rt.clock.now())
    tick(rt, datetime(2026, 11, 24, 10, 30, tzinfo=UTC))
    assert outbound(rt) == []


def test_erasure_removes_what_privacy_md_says_and_keeps_the_counts(
    rt: Runtime, caseload_file: Path, phone: Phone, tmp_path: Path
) -> None:
    import_caseload(rt, caseload_file, rt.clock.now())
    appointments = tmp_path / "a.csv"
    appointments.write_text(
        "appointment_id,participant_id,starts_at,kind,location\nA1,P001,2026-11-27 14:00,meeting,12 Acacia Avenue\n"
    )
    from assistant.imports.appointments import import_appointments

    import_appointments(rt, appointments, rt.clock.now())
    tick(rt, datetime(2026, 11, 24, 10, 30, tzinfo=UTC))
    phone.text("+447700900101", "My new flat is at 4 Elm Road, call me on 07700900999")
    phone.text("+447700900101", "call me")
    with transaction(rt.engine) as db:
        alex = find_participant(db, "P001")
        counts = (
            len(db.exec(select(Message).where(Message.participant_id == alex.id)).all()),
            len(db.exec(select(Answer).where(Answer.participant_id == alex.id)).all()),
        )
        report = erase(db, alex, rt.clock.now())
    assert "Removed or anonymised:" in report.lines()[0]
    with transaction(rt.engine) as db:
        gone = db.get(Participant, alex.id)
        assert gone is not None
        everything = json.dumps(export_participant(db, gone), default=str)
        for secret in ("Alex", "+447700900101", "07700900101", "Elm Road", "Acacia", "P001", "How has your week"):
            assert secret not in everything, secret
        # the counts stay
        assert len(db.exec(select(Message).where(Message.participant_id == alex.id)).all()) == counts[0]
        assert len(db.exec(select(Answer).where(Answer.participant_id == alex.id)).all()) == counts[1]
        assert db.exec(select(Appointment)).one().kind == "meeting"
        assert (
            db.exec(select(DueTask).where(DueTask.participant_id == alex.id, DueTask.status == "pending")).all() == []
        )
    # What PRIVACY.md promises is removed is exactly what the code says it removed.
    for promise in (
        "first name, mobile number, service id and tags",
        "text of every message",
        "free-text answers",
        "appointment places",
        "notes on flags and contact logs",
    ):
        assert promise in PRIVACY, promise
    # Their old number is now just an unknown number.
    phone.text("+447700900101", "hello?")
    assert outbound(rt)[-1].message_key == "common/unknown_number"


def test_retention_applies_the_period_privacy_md_states(rt: Runtime, tmp_path: Path) -> None:
    default = ServiceSettings().retention_months_after_support
    stated = re.search(r"\*\*(\d+) months\*\* by default", PRIVACY)
    assert stated and int(stated.group(1)) == default
    path = tmp_path / "c.csv"
    path.write_text(
        CASELOAD_HEADER.strip() + ",support_end\n"
        "P001,Alex,07700900101,sam@example.org,Sam,north,out_of_work,Tue,10:30,2024-06-30\n"
        "P002,Jo,07700900102,sam@example.org,Sam,north,out_of_work,Tue,10:30,2025-06-30\n"
    )
    import_caseload(rt, path, rt.clock.now())
    with transaction(rt.engine) as db:
        assert [p.external_id for p in due_for_retention(db, rt.clock.now().date())] == ["P001"]
    night = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    tick(rt, night)
    with transaction(rt.engine) as db:
        people = {p.id: p for p in db.exec(select(Participant)).all()}
    assert sorted(p.first_name for p in people.values()) == ["Jo", "[erased]"]
    tick(rt, night + timedelta(minutes=1))  # idempotent


def test_privacy_md_names_the_roles_the_code_has() -> None:
    from assistant.care.access import ROLES

    for role in ROLES:
        assert f"**{role.replace('_', ' ')}**" in PRIVACY


def test_the_export_includes_the_reply_rhythm_kept_about_them(rt: Runtime, caseload_file: Path, phone: Phone) -> None:
    import_caseload(rt, caseload_file, rt.clock.now())
    checkin = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)  # Alex's check-in time
    tick(rt, checkin)
    with transaction(rt.engine) as db:
        before = export_participant(db, find_participant(db, "P001"))["reply_rhythm"]
    assert (before["texts_asking_for_an_answer"], before["answered"], before["unanswered_since_their_last_text"]) == (
        1,
        0,
        1,
    )
    assert before["last_asked_at"] == checkin.isoformat()
    assert before["in_words"].startswith("new: no usual pattern yet")
    rt.clock.set(checkin + timedelta(minutes=20))  # type: ignore[attr-defined]
    phone.text("+447700900101", "1")
    with transaction(rt.engine) as db:
        after = export_participant(db, find_participant(db, "P001"))["reply_rhythm"]
    assert (after["answered"], after["unanswered_since_their_last_text"]) == (1, 0)


def test_the_export_includes_the_journey(rt: Runtime, caseload_file: Path) -> None:
    """A subject access request gets the referral, the jobs with their sustainment answers, and the exit."""
    from datetime import date

    from assistant.contact.support_end import end_support
    from assistant.contact.work import record_job_start

    import_caseload(rt, caseload_file, rt.clock.now())
    now = rt.clock.now()
    with transaction(rt.engine) as db:
        alex = find_participant(db, "P001")
        alex.referral_date, alex.referral_source = date(2026, 10, 1), "gp"
        job = record_job_start(
            db, alex, started_on=date(2026, 11, 2), hours=16, employer="Tesco", sector="retail", by="sam@x.org", now=now
        )
        job.sustainment = {"13": "yes"}
        db.add(job)
        end_support(db, alex, reason="job", ends_on=date(2026, 11, 20), by="sam@x.org", now=now)
    with transaction(rt.engine) as db:
        journey = export_participant(db, find_participant(db, "P001"))["journey"]
    assert (journey["referral_date"], journey["referral_source"], journey["exit_reason"]) == ("2026-10-01", "gp", "job")
    assert journey["exit_recorded_by"] == "sam@x.org"
    [exported] = journey["job_starts"]
    assert (exported["employer"], exported["hours_per_week"], exported["sustainment_answers_by_weeks"]) == (
        "Tesco",
        16,
        {"13": "yes"},
    )
