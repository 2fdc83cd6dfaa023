"""Each person's reply rhythm on the real clock jobs: the days-of-silence ceiling, the service's
switch, a reply ending the silence, the follow-up through the contact policy, and once per silence.

The person is imported on Sunday 22 November 2026 at noon (tests.conftest.START); their check-in
is on Tuesdays at 10:30, and in December London time is UTC.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from assistant.care import flags
from assistant.care.rhythm import FOLLOW_UP, LOOK_AGAIN_WITHIN, note_ask, rhythm_of
from assistant.clock import FixedClock
from assistant.contact.settings_change import change_settings
from assistant.db.models import DueTask, Flag, FlowSession, Participant, ReplyRhythm, Service
from assistant.db.service_settings import ServiceSettings
from assistant.db.units import transaction
from assistant.engine import rhythm as estimate
from assistant.imports.caseload import import_caseload
from assistant.jobs.tick import tick
from assistant.runtime import Runtime

from .conftest import CASELOAD_HEADER, START, Phone, outbound

ALEX = "+447700900101"
CHECKIN, FOLLOW_UP_TEXT = "checkin/ask_week", "gentle_followup/thinking_of_you"


def on(day: int, hhmm: str) -> datetime:
    """A time `day` days after the import's Sunday (2 is the first check-in's Tuesday)."""
    hours, minutes = (int(x) for x in hhmm.split(":"))
    return START.replace(hour=hours, minute=minutes) + timedelta(days=day)


def import_one(rt: Runtime, tmp_path: Path, *, rules_off: tuple[str, ...] = ()) -> int:
    path = tmp_path / "one.csv"
    path.write_text(
        CASELOAD_HEADER + "P001,Alex,07700 900101,sam.jones@example.org,Sam Jones,north,out_of_work,Tue,10:30\n",
        encoding="utf-8",
    )
    import_caseload(rt, path, START)
    with transaction(rt.engine) as db:
        person = db.exec(select(Participant)).one()
        if rules_off:
            service = db.get(Service, person.service_id)
            assert service is not None
            service.settings = ServiceSettings.from_json({"rules_off": list(rules_off)}).to_json()
            db.add(service)
        assert person.id is not None
        return person.id


History = tuple[list[float], int]


def set_history(rt: Runtime, person_id: int, history: History) -> None:
    """What their earlier months left in the rhythm: reply delays in hours, out of so many texts."""
    delays_hours, asks = history
    logs = [math.log(h) for h in delays_hours]
    with transaction(rt.engine) as db:
        row = db.get(ReplyRhythm, person_id) or ReplyRhythm(participant_id=person_id)
        row.asks, row.answered = asks, len(logs)
        row.log_hours_sum, row.log_hours_sq = sum(logs), sum(x * x for x in logs)
        db.add(row)


# Ten answers out of eleven, each within twelve minutes.
PROMPT: History = ([0.2] * 10, 11)
# Ten answers out of forty, each three days late.
SLOW_PATCHY: History = ([72.0] * 10, 40)


def ticks(rt: Runtime, *times: datetime) -> None:
    for at in times:
        tick(rt, at)


def daily(rt: Runtime, first: int, last: int, hhmm: str = "10:31") -> None:
    ticks(rt, *(on(day, hhmm) for day in range(first, last + 1)))


def not_responding(rt: Runtime) -> list[Flag]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(Flag).where(Flag.kind == "not_responding").order_by(col(Flag.id))).all())


def sent(rt: Runtime) -> list[str]:
    return [m.message_key for m in outbound(rt)]


def follow_ups(rt: Runtime) -> list[DueTask]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(DueTask).where(DueTask.kind == FOLLOW_UP)).all())


def rhythm_row(rt: Runtime, person_id: int) -> ReplyRhythm:
    with transaction(rt.engine) as db:
        row = db.get(ReplyRhythm, person_id)
        assert row is not None
        return row


def resolve_all(rt: Runtime, at: datetime) -> None:
    with transaction(rt.engine) as db:
        for flag in db.exec(select(Flag).where(Flag.kind == "not_responding", Flag.status != "resolved")).all():
            flags.resolve(db, flag, by="sam.jones@example.org", note="Rang them", now=at)


def test_the_fixed_count_is_the_ceiling_for_someone_whose_silence_looks_usual(rt: Runtime, tmp_path: Path) -> None:
    person_id = import_one(rt, tmp_path)
    set_history(rt, person_id, SLOW_PATCHY)
    daily(rt, 1, 20)
    # For someone who lets seven texts in ten go, two unanswered check-ins are usual: the rhythm
    # says nothing and sends nothing. The service's fixed count still tells their specialist, at
    # the moment the second check-in's wait ends, exactly as when the rhythm is off.
    [first, second, *_] = [m for m in outbound(rt) if m.message_key == CHECKIN]
    assert FOLLOW_UP_TEXT not in sent(rt)
    [flag] = not_responding(rt)
    assert flag.reason == "No reply to the last 2 check-ins"
    assert second.sent_at is not None and first.sent_at is not None
    assert second.sent_at + timedelta(hours=24) <= flag.created_at <= second.sent_at + timedelta(hours=25)
    with transaction(rt.engine) as db:
        person = db.get(Participant, person_id)
        assert person is not None
        rhythm, _ = rhythm_of(db, person)
    row = rhythm_row(rt, person_id)
    assert row.first_pending_at is not None and row.last_ask_at is not None
    assert (
        estimate.chance_of_silence(rhythm, row.first_pending_at, row.last_ask_at, flag.created_at)
        > estimate.FOLLOW_UP_BELOW
    )
    assert row.noted == "flagged"  # the rhythm will not tell this silence again
    # Told once for this silence: the weeks after add nothing, from any rule (the days rule included).
    daily(rt, 21, 42)
    assert [f.id for f in not_responding(rt)] == [flag.id]
    assert len(not_responding(rt)[0].evidence) == 1


def test_a_silence_the_rhythm_told_is_not_told_again_by_the_days_rule(rt: Runtime, tmp_path: Path) -> None:
    person_id = import_one(rt, tmp_path)
    set_history(rt, person_id, PROMPT)
    ticks(rt, on(2, "10:30"), on(3, "10:30"), on(3, "10:31"), on(4, "10:31"))
    [flag] = not_responding(rt)
    assert flag.reason.startswith("Quieter than usual for them")
    resolve_all(rt, on(4, "12:00"))
    daily(rt, 5, 21)
    row = rhythm_row(rt, person_id)
    assert (row.pending, row.noted, row.look_at) == (4, "flagged", None)  # asked again: still told of
    ticks(rt, START + timedelta(days=21))  # the days rule's moment for this silence
    daily(rt, 22, 35)
    assert [(f.id, f.status) for f in not_responding(rt)] == [(flag.id, "resolved")]


def test_a_silence_the_days_rule_told_is_not_told_again_by_the_rhythm(rt: Runtime, tmp_path: Path) -> None:
    person_id = import_one(rt, tmp_path)
    set_history(rt, person_id, SLOW_PATCHY)
    daily(rt, 1, 20)
    ticks(rt, START + timedelta(days=21))
    [flag] = not_responding(rt)
    resolve_all(rt, START + timedelta(days=21, hours=1))
    # The silence goes on until even for them it is unusual: fifteen texts unanswered.
    with transaction(rt.engine) as db:
        row = db.get(ReplyRhythm, person_id)
        assert row is not None
        row.pending = 15
        db.add(row)
    daily(rt, 22, 30)
    assert [(f.id, f.status) for f in not_responding(rt)] == [(flag.id, "resolved")]


def test_a_prompt_replier_is_followed_up_once_then_flagged_with_the_reason_in_words(
    rt: Runtime, tmp_path: Path
) -> None:
    person_id = import_one(rt, tmp_path)
    set_history(rt, person_id, PROMPT)
    ticks(rt, on(2, "10:30"), on(3, "10:29"))
    assert sent(rt) == [CHECKIN]  # under a day: nothing is judged yet
    ticks(rt, on(3, "10:30"), on(3, "10:31"))
    assert sent(rt) == [CHECKIN, FOLLOW_UP_TEXT]
    assert not_responding(rt) == []
    ticks(rt, on(4, "10:31"))
    [flag] = not_responding(rt)
    # Ten of eleven answered, within twelve minutes: see tests/engine/test_rhythm.py for the sums.
    assert flag.reason == (
        "Quieter than usual for them: usually replies within 3 hours; answers about 9 in 10 texts; "
        "no reply to the last 2 texts over 2 days"
    )
    assert flag.evidence[0]["silent_since"] == START.isoformat()


def test_a_silence_that_needs_nothing_yet_is_judged_again_when_it_will_not_every_tick(
    rt: Runtime, tmp_path: Path
) -> None:
    """A tick reads only the silences due a look. One judged to need nothing is looked at again at
    the moment its chance falls below a level that acts, or within six hours, whichever is first."""
    person_id = import_one(rt, tmp_path)
    set_history(rt, person_id, SLOW_PATCHY)
    tick(rt, on(2, "10:30"))  # the check-in: a silence begins, judged no sooner than a day on
    assert rhythm_row(rt, person_id).look_at == on(2, "10:30") + estimate.EARLIEST
    tick(rt, on(3, "10:31"))
    row = rhythm_row(rt, person_id)
    assert row.pending == 1 and row.look_at is not None, row
    look = row.look_at
    assert on(3, "10:31") < look <= on(3, "10:31") + LOOK_AGAIN_WITHIN
    tick(rt, look - timedelta(seconds=1))
    assert rhythm_row(rt, person_id).look_at == look  # not due a look: not read
    tick(rt, look)
    later = rhythm_row(rt, person_id).look_at
    assert later is not None and later > look
    assert later <= look + LOOK_AGAIN_WITHIN
    # A change its row does not see is still honoured: the service's days of silence, from 21 to the
    # 14 a weekly check-in allows (and the count of check-ins out of the way), bring the follow-up
    # four days before the ceiling to day 10 at noon.
    with transaction(rt.engine) as db:
        person = db.get(Participant, person_id)
        assert person is not None
        service = db.get(Service, person.service_id)
        assert service is not None
        change = {
            "not_responding_days": 14,
            "not_responding_checkins": 12,
            "duty_contact_email": "duty@service.example",
        }
        change_settings(db, service, change, by="admin@example.org", now=on(4, "09:00"))
    daily(rt, 4, 10, "11:59")
    assert follow_ups(rt) == []
    tick(rt, on(10, "12:00"))
    [planned] = follow_ups(rt)
    assert planned.due_at == on(10, "12:00")


def test_with_the_rhythm_turned_off_the_fixed_count_flags_and_no_follow_up_goes(rt: Runtime, tmp_path: Path) -> None:
    person_id = import_one(rt, tmp_path, rules_off=("reply_rhythm",))
    set_history(rt, person_id, PROMPT)
    ticks(rt, on(2, "10:30"))
    daily(rt, 3, 8)
    assert not_responding(rt) == []
    ticks(rt, on(9, "10:30"), on(10, "10:31"))
    assert sent(rt) == [CHECKIN, CHECKIN]
    [flag] = not_responding(rt)
    assert flag.reason == "No reply to the last 2 check-ins"
    daily(rt, 11, 20)
    assert FOLLOW_UP_TEXT not in sent(rt)
    assert follow_ups(rt) == []
    assert len(not_responding(rt)) == 1


def test_a_reply_ends_the_silence_and_a_new_silence_is_judged_afresh(
    rt: Runtime, tmp_path: Path, phone: Phone, clock: FixedClock
) -> None:
    person_id = import_one(rt, tmp_path)
    set_history(rt, person_id, PROMPT)
    ticks(rt, on(2, "10:30"), on(3, "10:31"), on(3, "10:32"), on(4, "10:32"))
    assert [f.status for f in not_responding(rt)] == ["open"]
    row = rhythm_row(rt, person_id)
    assert (row.asks, row.answered, row.pending, row.noted) == (13, 10, 2, "flagged")
    assert row.last_ask_at == on(3, "10:32")
    assert row.look_at is None  # told of: no tick reads it again
    clock.set(on(4, "12:32"))
    assert phone.text(ALEX, "sorry, been away").status_code == 200
    row = rhythm_row(rt, person_id)
    # The follow-up (a day and two hours ago) is answered; the check-in before it was not.
    assert (row.asks, row.answered, row.pending, row.noted, row.first_pending_at) == (13, 11, 0, "", None)
    assert row.log_hours_sum == pytest.approx(math.log(0.2) * 10 + math.log(26.0))
    assert [f.status for f in not_responding(rt)] == ["resolved"]
    # Nothing more goes for the silence that ended; the next check-in starts a new one.
    daily(rt, 5, 8)
    ticks(rt, on(9, "10:30"))
    assert sent(rt) == [CHECKIN, FOLLOW_UP_TEXT, "common/free_text_ack", CHECKIN]
    row = rhythm_row(rt, person_id)
    assert (row.asks, row.pending, row.first_pending_at, row.noted) == (14, 1, on(9, "10:30"), "")


def test_the_follow_up_waits_for_allowed_hours(rt: Runtime, tmp_path: Path) -> None:
    person_id = import_one(rt, tmp_path)
    set_history(rt, person_id, PROMPT)
    ticks(rt, on(2, "10:30"), on(3, "21:00"))  # first looked at after 20:00: planned, not sent
    ticks(rt, on(3, "23:00"), on(4, "07:59"))
    assert sent(rt) == [CHECKIN]
    [task] = follow_ups(rt)
    assert (task.status, task.due_at) == ("pending", on(4, "08:00"))
    ticks(rt, on(4, "08:00"))
    assert sent(rt) == [CHECKIN, FOLLOW_UP_TEXT]
    assert [m.at for m in outbound(rt)][-1] == on(4, "08:00")


def test_no_follow_up_is_planned_for_someone_paused_or_opted_out(rt: Runtime, tmp_path: Path) -> None:
    person_id = import_one(rt, tmp_path)
    set_history(rt, person_id, PROMPT)
    ticks(rt, on(2, "10:30"))
    for state in ("paused", "opted_out"):
        with transaction(rt.engine) as db:
            person = db.get(Participant, person_id)
            assert person is not None
            person.paused, person.opted_out = state == "paused", state == "opted_out"
            db.add(person)
        daily(rt, 3, 5) if state == "paused" else daily(rt, 6, 8)
    assert sent(rt) == [CHECKIN]
    assert not_responding(rt) == []
    assert follow_ups(rt) == []


def test_a_follow_up_planned_before_a_pause_does_not_go(rt: Runtime, tmp_path: Path) -> None:
    person_id = import_one(rt, tmp_path)
    set_history(rt, person_id, PROMPT)
    ticks(rt, on(2, "10:30"), on(3, "21:00"))  # planned for 08:00
    with transaction(rt.engine) as db:
        person = db.get(Participant, person_id)
        assert person is not None
        person.paused = True
        db.add(person)
    ticks(rt, on(4, "08:00"), on(4, "12:00"))
    assert sent(rt) == [CHECKIN]
    [task] = follow_ups(rt)
    assert (task.status, task.outcome) == ("done", "skipped_paused")


def test_nothing_is_planned_twice_for_one_silence(rt: Runtime, tmp_path: Path) -> None:
    person_id = import_one(rt, tmp_path)
    set_history(rt, person_id, PROMPT)
    ticks(rt, on(2, "10:30"))
    # Every two hours until the next check-in: sent once, then one flag that gains nothing.
    ticks(rt, *(on(3, "10:31") + timedelta(hours=h) for h in range(0, 24 * 6, 2)))
    tasks = follow_ups(rt)
    assert len(tasks) == 1
    assert sent(rt) == [CHECKIN, FOLLOW_UP_TEXT]
    [flag] = not_responding(rt)
    assert len(flag.evidence) == 1


def test_a_follow_up_held_back_does_not_go_once_they_have_written_even_if_a_new_silence_began(
    rt: Runtime, tmp_path: Path, phone: Phone, clock: FixedClock
) -> None:
    person_id = import_one(rt, tmp_path)
    set_history(rt, person_id, PROMPT)
    ticks(rt, on(2, "10:30"), on(3, "21:00"))  # planned after 20:00: held for the morning
    assert sent(rt) == [CHECKIN]
    clock.set(on(3, "22:00"))
    assert phone.text(ALEX, "all good, sorry").status_code == 200  # the silence ends in the night
    with transaction(rt.engine) as db:  # and a new one begins before the held text is due again
        person = db.get(Participant, person_id)
        assert person is not None
        note_ask(db, person, on(4, "06:00"))
    ticks(rt, on(4, "08:00"), on(4, "08:01"))
    assert FOLLOW_UP_TEXT not in sent(rt)
    [task] = follow_ups(rt)
    assert (task.status, task.outcome) == ("done", "withdrawn_replied")


def test_the_follow_up_waits_while_a_questionnaire_is_open_on_its_page(rt: Runtime, tmp_path: Path) -> None:
    person_id = import_one(rt, tmp_path)
    set_history(rt, person_id, PROMPT)
    ticks(rt, on(2, "10:30"), on(3, "10:31"))  # the check-in's wait ends; a follow-up is planned
    with transaction(rt.engine) as db:
        db.add(
            FlowSession(
                participant_id=person_id,
                flow="questionnaire_phq9",
                flow_version=1,
                status="on_page",
                state={"node": "item_1"},
                started_at=on(3, "10:31"),
                wait_until=on(5, "10:31"),
            )
        )
    ticks(rt, on(3, "10:32"), on(3, "11:33"))
    assert FOLLOW_UP_TEXT not in sent(rt)  # deferred an hour at a time while the page is open
    [task] = follow_ups(rt)
    assert task.status == "pending" and task.due_at is not None and task.due_at > on(3, "11:33")


def test_a_reply_in_a_unit_that_already_changed_the_rhythm_keeps_both_changes(rt: Runtime, tmp_path: Path) -> None:
    """A reply is noted as rows; the unit's own copy, changed and not yet written, is written first
    and read afresh after, so neither change is lost."""
    from assistant.care.rhythm import note_reply

    person_id = import_one(rt, tmp_path)
    asked = on(1, "10:30")
    with transaction(rt.engine) as db:
        person = db.get(Participant, person_id)
        assert person is not None
        note_ask(db, person, asked)
        note_ask(db, person, asked + timedelta(days=7))
        copy = db.get(ReplyRhythm, person_id)
        assert copy is not None and copy.pending == 2 and copy.asks == 2
        note_reply(db, person, asked + timedelta(days=7, hours=2))
        assert (copy.pending, copy.asks, copy.answered) == (0, 2, 1), "the unit's copy was not read afresh"
    row = rhythm_row(rt, person_id)
    assert (row.pending, row.asks, row.answered, row.first_pending_at) == (0, 2, 1, None)
    assert row.log_hours_sum == pytest.approx(math.log(2.0))
