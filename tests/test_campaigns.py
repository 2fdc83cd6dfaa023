"""Campaigns: checked before anything is queued; sent once, in allowed hours, never mid-questionnaire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from assistant.clock import FixedClock
from assistant.contact import campaigns
from assistant.contact.campaigns import CampaignError, audience, queueing
from assistant.db.models import (
    Campaign,
    CampaignRecipient,
    DueTask,
    Flag,
    FlowSession,
    Message,
    Participant,
    Service,
    Specialist,
    User,
)
from assistant.db.send_pace import Pacer
from assistant.db.units import transaction
from assistant.imports.appointments import import_appointments
from assistant.imports.caseload import import_caseload
from assistant.jobs.tick import tick
from assistant.runtime import Runtime

from .conftest import CASELOAD_HEADER, Phone

MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def service_id(rt: Runtime, caseload_file: Path) -> int:
    import_caseload(rt, caseload_file, rt.clock.now())
    with transaction(rt.engine) as db:
        service = db.exec(select(Service).where(Service.slug == "north")).one()
        assert service.id is not None
        return service.id


def _create(rt: Runtime, service_id: int, **kwargs: Any) -> Campaign:
    values: dict[str, Any] = {
        "name": "CV clinic",
        "text": "Hi {{ first_name }}, there's a CV clinic at the library on Tuesday. {{ specialist_name }}",
        "audience": {},
        "created_by": "admin@example.org",
        "send_at": MONDAY_10,
    } | kwargs
    with transaction(rt.engine) as db:
        return campaigns.create(db, service_id=service_id, now=rt.clock.now(), flows=rt.flows, **values)


def _campaign_messages(rt: Runtime) -> list[Message]:
    with transaction(rt.engine) as db:
        return list(
            db.exec(
                select(Message).where(col(Message.message_key).startswith("campaign/")).order_by(col(Message.id))
            ).all()
        )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"text": "Hi {{ first_nam }}"}, "unknown merge field"),
        ({"text": "Hi {% for x in y %}{{ first_name }}{% endfor %}"}, "no other template code"),
        ({"text": "{{ first_name.__class__ }}"}, "merge field"),
        ({"send_at": datetime(2026, 11, 1, 10, 0, tzinfo=UTC)}, "in the past"),
        ({"audience": {"cohort": "retired"}}, "cohort"),
        ({"audience": {"service": "south"}}, "unknown audience filter"),
        ({"audience": {"specialist": "nobody@example.org"}}, "audience is empty"),
        ({"text": "x" * 400}, "segments"),
        ({"reply_keyword": "STOP"}, "reserved"),
        ({"text": "Hi {{ first_name }}, your mental health group is on Tuesday."}, "mental health.*lock screens"),
        ({"text": "Hi {{ first_name }}, if you don't attend your place may stop."}, "'if you don't attend'"),
        ({"text": "Hi {{ first_name }}, you must attend on Tuesday or lose your place."}, "'you must'.*voluntary"),
        ({"send_at": None}, "say when"),
        ({"name": "Open day\nBcc: everyone"}, "on one line"),
        ({"name": "Open day\x1b[2J"}, "on one line"),
    ],
)
def test_bad_campaigns_are_refused_before_anything_is_queued(
    rt: Runtime, service_id: int, changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(CampaignError, match=reason):
        _create(rt, service_id, **changes)
    with transaction(rt.engine) as db:
        assert db.exec(select(Campaign)).all() == [] and db.exec(select(CampaignRecipient)).all() == []


def test_sent_once_to_the_audience_rendered_per_person(rt: Runtime, service_id: int, phone: Phone) -> None:
    phone.text("+447700900103", "STOP")  # opted out: never in an audience
    campaign = _create(rt, service_id)
    with transaction(rt.engine) as db:
        assert len(db.exec(select(CampaignRecipient)).all()) == 2
    tick(rt, MONDAY_10 - timedelta(minutes=1))
    assert _campaign_messages(rt) == []
    tick(rt, MONDAY_10)
    tick(rt, MONDAY_10)  # and again: nothing twice
    with transaction(rt.engine) as db:
        assert campaigns.plan(db, db.get(Campaign, campaign.id), MONDAY_10) == 0  # type: ignore[arg-type]  # a re-run
    tick(rt, MONDAY_10 + timedelta(minutes=5))
    sent = _campaign_messages(rt)
    assert sorted(m.body for m in sent) == [
        "Hi Alex, there's a CV clinic at the library on Tuesday. Sam",
        "Hi Jordan, there's a CV clinic at the library on Tuesday. Sam",
    ]
    assert all(m.status == "sent" and m.automated for m in sent)
    with transaction(rt.engine) as db:
        report = campaigns.progress(db, db.get(Campaign, campaign.id))  # type: ignore[arg-type]
        assert db.get(Campaign, campaign.id).status == "done"  # type: ignore[union-attr]
    assert report["counts"]["sent"] == 2 and report["total"] == 2


def test_a_campaign_text_is_never_signed_by_a_specialist_who_has_left(rt: Runtime, service_id: int) -> None:
    """Sam's only dashboard account is deactivated: the caseload's texts are signed by the team,
    and a specialist with no account at all (set up by import only) still signs their own."""
    from assistant.care.signins import deactivate

    with transaction(rt.engine) as db:
        sam = db.exec(select(Specialist).where(Specialist.email == "sam.jones@example.org")).one()
        user = User(email=sam.email, password_hash="x", role="specialist", service_id=service_id, specialist_id=sam.id)
        db.add(user)
        db.flush()
        deactivate(db, user, rt.clock.now())
    _create(rt, service_id)
    tick(rt, MONDAY_10)
    tick(rt, MONDAY_10 + timedelta(minutes=5))
    assert sorted(m.body for m in _campaign_messages(rt)) == [
        "Hi Alex, there's a CV clinic at the library on Tuesday. The team",
        "Hi Jordan, there's a CV clinic at the library on Tuesday. The team",
        "Hi Priya, there's a CV clinic at the library on Tuesday. Chris",
    ]


def test_quiet_hours_and_bank_holidays_defer_never_drop(rt: Runtime, service_id: int) -> None:
    christmas_morning = datetime(2026, 12, 25, 9, 0, tzinfo=UTC)
    rt.clock.set(datetime(2026, 12, 20, 9, 0, tzinfo=UTC))  # type: ignore[attr-defined]
    _create(rt, service_id, send_at=christmas_morning, audience={"cohort": "in_work"})
    tick(rt, christmas_morning)
    tick(rt, datetime(2026, 12, 26, 9, 0, tzinfo=UTC))  # Boxing Day
    tick(rt, datetime(2026, 12, 27, 7, 59, tzinfo=UTC))  # before hours
    assert _campaign_messages(rt) == []
    tick(rt, datetime(2026, 12, 27, 8, 0, tzinfo=UTC))  # a Sunday, not a bank holiday
    assert len(_campaign_messages(rt)) == 1


def _invite_alex_to_a_questionnaire(rt: Runtime) -> Participant:
    """Alex is asked "Reply YES to start" a GAD-7 at 09:30 on Monday."""
    with transaction(rt.engine) as db:
        alex = db.exec(select(Participant).where(Participant.external_id == "P001")).one()
        db.add(
            DueTask(
                participant_id=alex.id,
                kind="questionnaire",
                due_at=MONDAY_10 - timedelta(minutes=30),
                payload={"instruments": ["gad7"], "reason": "now"},
            )
        )
    tick(rt, MONDAY_10 - timedelta(minutes=30))
    return alex


def test_never_interrupts_a_questionnaire(rt: Runtime, service_id: int, phone: Phone) -> None:
    _invite_alex_to_a_questionnaire(rt)
    phone.text("+447700900101", "yes")  # started the questionnaire
    _create(rt, service_id, audience={"specialist": "sam.jones@example.org", "cohort": "out_of_work"})
    tick(rt, MONDAY_10)
    assert _campaign_messages(rt) == []  # waits while the questionnaire is open
    rt.clock.set(MONDAY_10 + timedelta(days=8))  # type: ignore[attr-defined]
    tick(rt, MONDAY_10 + timedelta(days=8))  # the questionnaire has expired
    tick(rt, MONDAY_10 + timedelta(days=8, minutes=2))
    assert len(_campaign_messages(rt)) == 1


def test_an_invitation_not_taken_up_holds_nothing_back(rt: Runtime, service_id: int) -> None:
    """Asked "Reply YES to start" and not answered: the questionnaire is not under way, so
    the campaign text goes on time, and the next check-in is asked (the invitation ends
    as expired) instead of waiting days for it or being skipped."""
    alex = _invite_alex_to_a_questionnaire(rt)
    _create(rt, service_id, audience={"specialist": "sam.jones@example.org", "cohort": "out_of_work"})
    tick(rt, MONDAY_10)
    assert [m.body.split(",")[0] for m in _campaign_messages(rt)] == ["Hi Alex"]
    tuesday_checkin = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)  # Alex's check-in: Tue 10:30
    rt.clock.set(tuesday_checkin)  # type: ignore[attr-defined]
    tick(rt, tuesday_checkin)
    with transaction(rt.engine) as db:
        sessions = db.exec(select(FlowSession).where(FlowSession.participant_id == alex.id)).all()
        states = sorted((s.flow, s.status, s.end_reason) for s in sessions)
    assert states == [("checkin", "waiting", None), ("questionnaire_gad7", "ended", "expired")]


def test_pause_resume_and_cancel_withdraws_what_has_not_gone(rt: Runtime, service_id: int) -> None:
    campaign = _create(rt, service_id)
    with transaction(rt.engine) as db:
        campaigns.set_status(db, db.get(Campaign, campaign.id), "paused", rt.clock.now())  # type: ignore[arg-type]
    tick(rt, MONDAY_10)
    assert _campaign_messages(rt) == []
    with transaction(rt.engine) as db:
        campaigns.set_status(db, db.get(Campaign, campaign.id), "scheduled", rt.clock.now())  # type: ignore[arg-type]
    later = _create(rt, service_id, name="Employer event", send_at=MONDAY_10 + timedelta(days=1))
    tick(rt, MONDAY_10)
    assert len(_campaign_messages(rt)) == 3
    with transaction(rt.engine) as db:
        assert campaigns.set_status(db, db.get(Campaign, later.id), "cancelled", rt.clock.now()) == 3  # type: ignore[arg-type]
        with pytest.raises(CampaignError):
            campaigns.set_status(db, db.get(Campaign, later.id), "scheduled", rt.clock.now())  # type: ignore[arg-type]
    tick(rt, MONDAY_10 + timedelta(days=1))
    assert len(_campaign_messages(rt)) == 3


def test_cancelling_withdraws_queued_texts_but_not_one_already_sent(rt: Runtime, service_id: int) -> None:
    """Cancelled part way: the copy not yet due and the text still waiting are withdrawn; a copy
    whose text has gone stays queued, counted as sent."""
    campaign = _create(rt, service_id)
    with transaction(rt.engine) as db:
        copies = db.exec(
            select(CampaignRecipient)
            .where(CampaignRecipient.campaign_id == campaign.id)
            .order_by(col(CampaignRecipient.id))
        ).all()
        later = copies[-1]
        later.due_at = MONDAY_10 + timedelta(days=1)
        db.add(later)
        later_id = later.id
    assert campaigns.run_due(rt, MONDAY_10) == 2
    first, waiting = _campaign_messages(rt)
    with transaction(rt.engine) as db:
        sent = db.get(Message, first.id)
        assert sent is not None
        sent.status = "sent"
        db.add(sent)
    with transaction(rt.engine) as db:
        assert campaigns.set_status(db, db.get(Campaign, campaign.id), "cancelled", rt.clock.now()) == 2  # type: ignore[arg-type]
    assert [(m.status, m.error_message) for m in _campaign_messages(rt)] == [
        ("sent", None),
        ("cancelled", "campaign cancelled"),
    ]
    with transaction(rt.engine) as db:
        states = {
            c.id: (c.status, c.reason, c.message_id)
            for c in db.exec(select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign.id)).all()
        }
    assert sorted(states.values(), key=str) == sorted(
        [
            ("queued", None, first.id),
            ("withdrawn", "campaign cancelled", waiting.id),
            ("withdrawn", "campaign cancelled", None),
        ],
        key=str,
    )
    assert states[later_id] == ("withdrawn", "campaign cancelled", None)


def test_relative_to_support_end_and_replanned_when_it_changes(rt: Runtime, tmp_path: Path, clock: FixedClock) -> None:
    caseload = tmp_path / "c.csv"
    caseload.write_text(
        CASELOAD_HEADER.strip()
        + ",support_end\n"
        + "P001,Alex,07700900101,sam@example.org,Sam,north,out_of_work,Tue,10:30,2027-01-29\n"
    )
    import_caseload(rt, caseload, clock.now())
    with transaction(rt.engine) as db:
        service_id = db.exec(select(Service)).one().id
    _create(
        rt,
        service_id,
        text="Hi {{ first_name }}, your support ends in four weeks - let's plan together. {{ specialist_name }}",
        send_at=None,
        relative={"field": "support_end", "days": -28, "at": "10:00"},
    )
    with transaction(rt.engine) as db:
        [recipient] = db.exec(select(CampaignRecipient)).all()
    assert recipient.due_at == datetime(2027, 1, 1, 10, 0, tzinfo=UTC)
    caseload.write_text(caseload.read_text().replace("2027-01-29", "2027-03-26"))
    import_caseload(rt, caseload, clock.now())
    with transaction(rt.engine) as db:
        [recipient] = db.exec(select(CampaignRecipient)).all()
    assert recipient.due_at == datetime(2027, 2, 26, 10, 0, tzinfo=UTC)  # moved with the date, local 10:00


def _invite_to_the_employer_event(rt: Runtime, service_id: int) -> None:
    """Sam's caseload is invited on Monday at 10 to reply YES; ten minutes later, they reply."""
    _create(
        rt,
        service_id,
        name="Employer event",
        text="Hi {{ first_name }}, reply YES for a place at Friday's employer event.",
        reply_keyword="yes",
        audience={"specialist": "sam.jones@example.org"},
    )
    tick(rt, MONDAY_10)
    rt.clock.set(MONDAY_10 + timedelta(minutes=10))  # type: ignore[attr-defined]


def test_replies_are_understood_in_context(rt: Runtime, service_id: int, phone: Phone, tmp_path: Path) -> None:
    _invite_to_the_employer_event(rt, service_id)
    phone.text("+447700900101", "Yes please x")  # thanks and kisses do not change the answer
    with transaction(rt.engine) as db:
        flag = db.exec(select(Flag).where(Flag.kind == "campaign_interest")).one()
        assert flag.reason == "Replied YES to 'Employer event'"
    # Jordan gets an appointment reminder after the campaign: his YES is for the reminder.
    appointments = tmp_path / "a.csv"
    appointments.write_text("appointment_id,participant_id,starts_at,kind\nA1,P002,2026-11-27 14:00,meeting\n")
    import_appointments(rt, appointments, rt.clock.now())
    rt.clock.set(datetime(2026, 11, 24, 10, 0, tzinfo=UTC))  # type: ignore[attr-defined]
    tick(rt, rt.clock.now())
    phone.text("+447700900102", "yes")
    with transaction(rt.engine) as db:
        jordan = db.exec(select(Participant).where(Participant.external_id == "P002")).one()
        kinds = {f.kind for f in db.exec(select(Flag).where(Flag.participant_id == jordan.id)).all()}
        replies = [
            m.message_key
            for m in db.exec(
                select(Message).where(Message.participant_id == jordan.id, Message.direction == "out")
            ).all()
        ]
    assert "campaign_interest" not in kinds
    assert replies[-1] == "appointment_reminder/confirmed"


@pytest.mark.parametrize(
    ("reply", "counted", "to_read"),
    [
        ("YES please, see you there", True, True),
        ("Yes! can I bring my CV on a stick?", True, True),
        ("yes thanks x", True, False),
        ("yes but I can't make Friday, I'm at the dentist", False, True),
        ("yes I'll be there if I'm still here, not sure I will be", False, True),
        ("nope", False, True),
    ],
)
def test_a_reply_that_begins_with_the_keyword_counts_when_nothing_else_in_it_is_read(
    rt: Runtime, service_id: int, phone: Phone, reply: str, counted: bool, to_read: bool
) -> None:
    _invite_to_the_employer_event(rt, service_id)
    phone.text("+447700900101", reply)
    with transaction(rt.engine) as db:
        kinds = {f.kind for f in db.exec(select(Flag)).all()}
        [recipient] = [r for r in db.exec(select(CampaignRecipient)).all() if r.replied_at is not None] or [None]
    assert ("campaign_interest" in kinds) is counted
    assert (recipient is not None) is counted
    # Anything said beside the keyword, or instead of it, is read by a person (or by the crisis rules).
    assert bool(kinds & {"message", "crisis", "cancellation_requested"}) is to_read, kinds


def test_a_longer_text_that_begins_with_the_keyword_is_not_for_an_invitation_answered_since(
    rt: Runtime, service_id: int, phone: Phone
) -> None:
    _invite_to_the_employer_event(rt, service_id)
    phone.text("+447700900101", "I want to end my life")  # the signposting is written after the invitation
    phone.text("+447700900101", "yes I'm safe, just venting")
    phone.text("+447700900101", "yes")  # the keyword alone still answers it
    with transaction(rt.engine) as db:
        [interest] = db.exec(select(Flag).where(Flag.kind == "campaign_interest")).all()
        kinds = {f.kind for f in db.exec(select(Flag)).all()}
        answered = {e["message_id"] for e in interest.evidence}
        bodies = [m.body for m in db.exec(select(Message).where(col(Message.id).in_(answered))).all()]
    assert bodies == ["yes"]
    assert "message" in kinds  # "yes I'm safe, just venting" is read by a person


def test_the_pacer_never_exceeds_the_rate_however_many_processes_send(rt: Runtime) -> None:
    """Two pacers on one database (two processes, say a web worker and a scheduler) share
    one reservation row: together they never go over the rate, from the very first second."""
    now = [1_800_000_000.0]
    sent_at: list[float] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    web, scheduler = (Pacer(10.0, clock=lambda: now[0], sleep=sleep) for _ in range(2))

    def send(pacer: Pacer, segments: int) -> None:  # as the outbox does: book with the claim, then wait
        with transaction(rt.engine) as db:
            start = pacer.reserve(db, segments)
        pacer.wait_for(start)

    started = now[0]
    for i in range(100):
        send(web if i % 3 else scheduler, 1)
        sent_at.append(now[0])
    # Never more than 10 segments in any one-second window...
    for start in (started + x / 10 for x in range(0, 100)):
        assert sum(1 for t in sent_at if start <= t < start + 1) <= 10
    assert 9.8 <= now[0] - started <= 10.0  # ...and at the limit: 100 segments in just under 10 seconds
    # A three-segment text takes three segments' time.
    send(web, 3)
    before = now[0]
    send(scheduler, 1)
    assert now[0] - before == pytest.approx(0.3, abs=1e-5)


def test_large_audiences_go_in_chunks_and_batches_each_text_to_its_own_person(
    rt: Runtime, service_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planning reads the audience a chunk at a time and queueing writes a batch of texts at
    once: with tiny chunks and batches, every copy still reaches exactly its own person."""
    monkeypatch.setattr(audience, "CHUNK", 2)
    monkeypatch.setattr(queueing, "BATCH", 2)
    with transaction(rt.engine) as db:
        for person in db.exec(select(Participant)).all():
            person.tags = ["library"] if person.external_id != "P002" else ["other"]
            db.add(person)
            specialist_id = person.specialist_id
        for i in range(4, 11):
            db.add(
                Participant(
                    service_id=service_id,
                    external_id=f"P{i:03d}",
                    first_name=f"Name{i}",
                    phone=f"+4477009001{i:02d}",
                    specialist_id=specialist_id,
                    checkin_day=1,
                    checkin_time="10:00",
                    tags=["library"] if i % 3 else [],
                    created_at=MONDAY_10,
                )
            )
    _create(rt, service_id, audience={"tag": "library"}, text="Hi {{ first_name }}, the library clinic is on.")
    with transaction(rt.engine) as db:
        wanted = {p.id for p in db.exec(select(Participant)).all() if "library" in (p.tags or [])}
        planned = db.exec(select(CampaignRecipient)).all()
        assert sorted(r.participant_id for r in planned) == sorted(wanted) and len(wanted) == 7
    tick(rt, MONDAY_10)
    with transaction(rt.engine) as db:
        for recipient in db.exec(select(CampaignRecipient)).all():
            message = db.get(Message, recipient.message_id)
            person = db.get(Participant, recipient.participant_id)
            assert message is not None and person is not None
            assert message.participant_id == person.id and message.phone == person.phone
            assert message.body == f"Hi {person.first_name}, the library clinic is on."
            assert recipient.status == "queued" or message.status == "sent"
    assert len({m.id for m in _campaign_messages(rt)}) == 7


def test_every_ready_made_campaign_message_passes_the_campaign_checks(rt: Runtime) -> None:
    found = campaigns.templates(rt.settings.messages_dir)
    assert {"cv_clinic", "employer_event", "support_ending", "appointment_next_week"} <= set(found)
    for name, text in found.items():
        assert campaigns.check_text(text, limit=1) == [], name  # each fits one segment with long names


def test_a_text_naming_the_appointment_goes_only_to_people_with_one(
    rt: Runtime, service_id: int, tmp_path: Path
) -> None:
    appointments = tmp_path / "a.csv"
    appointments.write_text("appointment_id,participant_id,starts_at,kind\nA1,P002,2026-11-27 14:00,meeting\n")
    import_appointments(rt, appointments, rt.clock.now())
    text = "Hi {{ first_name }}, a reminder that we're meeting on {{ appointment_time }}."
    with transaction(rt.engine) as db:
        shown = campaigns.preview(db, service_id, text, {}, rt.clock.now())
    assert shown.count == 1 and [s["body"] for s in shown.sample] == [
        "Hi Jordan, a reminder that we're meeting on Fri 27 Nov at 14:00."
    ]
    campaign = _create(rt, service_id, text=text)
    assert campaign.audience == {"appointment_from": rt.clock.now().isoformat()}
    tick(rt, MONDAY_10)
    assert [m.body for m in _campaign_messages(rt)] == [
        "Hi Jordan, a reminder that we're meeting on Fri 27 Nov at 14:00."
    ]
