"""Golden conversations: scripted texts and clock ticks -> expected messages, answers and flags.

Each script runs through the real webhook (signed requests) and the real `tick`,
against the database; the flow state is stored as JSON at every wait and loaded
again for the next step, and the runner checks that it round-trips.
"""

from __future__ import annotations

import json
import re
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from assistant.care.flags import acknowledge
from assistant.clock import FixedClock
from assistant.db.models import (
    Answer,
    ContactLog,
    DueTask,
    Flag,
    FlowSession,
    Measure,
    Message,
    Participant,
    Service,
    StaffTask,
)
from assistant.db.service_settings import ServiceSettings
from assistant.db.units import transaction
from assistant.imports.appointments import import_appointments
from assistant.imports.caseload import import_caseload
from assistant.jobs.tick import tick
from assistant.reporting.today import complete
from assistant.runtime import Runtime

from ..conftest import CASELOAD_HEADER, Phone
from .journey_steps import record_step

APPOINTMENT_HEADER = "appointment_id,participant_id,starts_at,kind,duration_minutes,location,outcome\n"
SCRIPTS = sorted(Path(__file__).parent.glob("*.toml"))


def _ids(path: Path) -> str:
    return path.stem


def _snapshot(rt: Runtime) -> dict[str, Any]:
    with transaction(rt.engine) as db:
        return {
            "messages": db.exec(select(Message).where(Message.direction == "out").order_by(col(Message.id))).all(),
            "answers": db.exec(select(Answer).order_by(col(Answer.id))).all(),
            "flags": db.exec(select(Flag).order_by(col(Flag.id))).all(),
            "participant": db.exec(select(Participant)).first(),
            "sessions": db.exec(select(FlowSession)).all(),
            "measures": db.exec(select(Measure).order_by(col(Measure.id))).all(),
            "tasks": db.exec(select(StaffTask).order_by(col(StaffTask.id))).all(),
            "logged": db.exec(select(ContactLog).order_by(col(ContactLog.id))).all(),
        }


def _with_code(text: str, messages: list[Message]) -> str:
    """A script replies with the code the assistant texted ("{code}"), or one digit off it ("{wrong_code}")."""
    if "{code}" not in text and "{wrong_code}" not in text:
        return text
    sent = [m.body for m in messages if m.message_key == "common/new_number_code"]
    assert sent, "no code has been texted"
    code = re.findall(r"\b\d{6}\b", sent[-1])[0]
    wrong = str((int(code[0]) + 1) % 10) + code[1:]
    return text.replace("{code}", code).replace("{wrong_code}", wrong)


@pytest.mark.parametrize("script", SCRIPTS, ids=_ids)
def test_conversation(script: Path, rt: Runtime, phone: Phone, clock: FixedClock, tmp_path: Path) -> None:
    spec = tomllib.loads(script.read_text(encoding="utf-8"))
    who = {
        "cohort": "out_of_work",
        "checkin_day": "Tue",
        "checkin_time": "10:30",
        "timezone": "Europe/London",
    } | spec.get("participant", {})
    more = {k: str(v) for k, v in who.items() if k not in ("cohort", "checkin_day", "checkin_time", "timezone")}
    more.pop("first_name", None)  # other columns (referral_date, support_start, ...) go in as the file's own
    caseload = tmp_path / "one.csv"
    caseload.write_text(
        CASELOAD_HEADER.strip()
        + ",timezone"
        + "".join(f",{k}" for k in more)
        + "\n"
        + f"P001,{who.get('first_name', 'Alex')},07700 900101,sam.jones@example.org,Sam Jones,north,"
        + f"{who['cohort']},{who['checkin_day']},{who['checkin_time']},{who['timezone']}"
        + "".join(f",{v}" for v in more.values())
        + "\n",
        encoding="utf-8",
    )
    clock.set(datetime.fromisoformat(spec["import_at"]))
    import_caseload(rt, caseload, clock.now())
    with transaction(rt.engine) as db:
        person = db.exec(select(Participant)).one()
        for key, value in spec.get("participant_settings", {}).items():
            setattr(person, key, value)
        db.add(person)
        if "service" in spec:
            service = db.get(Service, person.service_id)
            assert service is not None
            service.settings = ServiceSettings.from_json(spec["service"]).to_json()
            db.add(service)
    seen = _snapshot(rt)
    for number, step in enumerate(spec["step"], start=1):
        where = f"{script.name} step {number}"
        clock.set(datetime.fromisoformat(step["at"]))
        if "appointments" in step:
            rows = tmp_path / f"appointments-{number}.csv"
            rows.write_text(APPOINTMENT_HEADER + step["appointments"].strip() + "\n", encoding="utf-8")
            import_appointments(rt, rows, clock.now())
        elif "questionnaire" in step:
            with transaction(rt.engine) as db:
                person = db.exec(select(Participant)).one()
                assert person.id is not None
                payload = {"instruments": step["questionnaire"], "reason": "now"}
                db.add(DueTask(participant_id=person.id, kind="questionnaire", due_at=clock.now(), payload=payload))
            tick(rt, clock.now())
        elif "acknowledge" in step:  # a person acknowledges the open flag of this kind on the dashboard
            with transaction(rt.engine) as db:
                flag = db.exec(select(Flag).where(Flag.kind == step["acknowledge"], Flag.status == "open")).one()
                acknowledge(db, flag, by="sam.jones@example.org", note=None, now=clock.now())
        elif "record" in step:  # the specialist records a job start or an exit on the dashboard
            record_step(rt, step["record"], clock.now())
            tick(rt, clock.now())
        elif "done" in step:  # the specialist does the oldest open task of this kind from their Today list
            with transaction(rt.engine) as db:
                kind = step["done"]["task"]
                task = db.exec(
                    select(StaffTask)
                    .where(StaffTask.kind == kind, StaffTask.status == "open")
                    .order_by(col(StaffTask.id))
                ).first()
                assert task is not None, f"{where}: no open {kind} task"
                channel, outcome = step["done"].get("channel", "phone"), step["done"]["outcome"]
                complete(
                    db,
                    f"task:{task.id}",
                    by="sam.jones@example.org",
                    channel=channel,
                    outcome=outcome,
                    note="",
                    now=clock.now(),
                )
        elif "text" in step:
            response = phone.text(step.get("from", "+447700900101"), _with_code(step["text"], seen["messages"]))
            assert response.status_code == 200, where
        elif "delivery" in step:  # Twilio's status callback for the last text sent
            last = seen["messages"][-1]
            response = phone.status(last.provider_sid, step["delivery"], step.get("error_code"))
            assert response.status_code == 204, where
        else:
            tick(rt, clock.now())
        now = _snapshot(rt)
        sent = [m.message_key for m in now["messages"][len(seen["messages"]) :]]
        assert sent == step.get("sent", []), f"{where}: sent"
        for message in now["messages"][len(seen["messages"]) :]:
            assert message.status == "sent", f"{where}: {message.message_key} was not sent"
        if "sent_to" in step:
            phones = [m.phone for m in now["messages"][len(seen["messages"]) :]]
            assert phones == step["sent_to"], f"{where}: sent to"
        if "phone" in step:
            assert now["participant"].phone == step["phone"], f"{where}: phone"
        answers = [[a.question, a.value] + (["late"] if a.late else []) for a in now["answers"][len(seen["answers"]) :]]
        assert answers == step.get("answers", []), f"{where}: answers"
        if "flags" in step:
            open_kinds = sorted({f.kind for f in now["flags"] if f.status == "open"})
            assert open_kinds == sorted(step["flags"]), f"{where}: open flags"
        for key, expected in step.get("bodies_contain", {}).items():
            bodies = [m.body for m in now["messages"][len(seen["messages"]) :] if m.message_key == key]
            assert bodies and all(expected in b for b in bodies), (
                f"{where}: {key} should contain {expected!r}: {bodies}"
            )
        measures = [
            [m.instrument, m.status, "none" if m.total is None else m.total]
            for m in now["measures"][len(seen["measures"]) :]
        ]
        assert measures == step.get("measures", []), f"{where}: measures"
        if "tasks" in step:  # open tasks on the specialist's Today list, by kind, oldest first
            assert [t.kind for t in now["tasks"] if t.status == "open"] == step["tasks"], f"{where}: open tasks"
        logged = [[c.channel, c.outcome or ""] for c in now["logged"][len(seen["logged"]) :]]
        assert logged == step.get("logged", logged), f"{where}: contact log"
        for key, expected in step.get("at_local", {}).items():  # the local time each new text of this key went
            zone = ZoneInfo(now["participant"].timezone)
            times = [
                f"{m.at.astimezone(zone):%a %H:%M}"
                for m in now["messages"][len(seen["messages"]) :]
                if m.message_key == key
            ]
            assert times == expected, f"{where}: {key} at {times}"
        if "opted_out" in step:
            assert now["participant"].opted_out is step["opted_out"], f"{where}: opted_out"
        if "unreachable" in step:
            assert now["participant"].unreachable is step["unreachable"], f"{where}: unreachable"
        if "waiting" in step:
            waiting = [s.state.get("question") for s in now["sessions"] if s.status == "waiting"]
            assert waiting == ([step["waiting"]] if step["waiting"] else []), f"{where}: waiting"
        for session in now["sessions"]:
            assert json.loads(json.dumps(session.state)) == session.state, f"{where}: state is not plain JSON"
        seen = now


def test_every_flow_and_keyword_has_a_script() -> None:
    """Each flow's every message key, and each global keyword, appears in some golden script."""
    texts = " ".join(p.read_text(encoding="utf-8") for p in SCRIPTS).lower()
    for key in ("ask_week", "thanks_good", "thanks_ok", "thanks_free_text", "offer_call", "will_call", "no_call"):
        assert f"checkin/{key}" in texts, key
    for key in (
        "appointment_reminder/remind",
        "appointment_reminder/confirmed",
        "appointment_reminder/cant_make_it",
        "appointment_reminder/thanks_free_text",
        "interview_good_luck/good_luck",
        "dna_followup/attempt",
        "dna_followup/rebook",
        "dna_followup/not_now",
        "dna_followup/thanks_free_text",
    ):
        assert key in texts, key
    for key in (
        "questionnaire/intro",
        "questionnaire/item",
        "questionnaire/reprompt",
        "questionnaire/thanks",
        "questionnaire/not_now",
        "questionnaire/paused",
        "questionnaire/link",
        "common/crisis",
        "common/confirm_stop",
    ):
        assert key in texts, key
    for key in ("help", "call_ack", "opted_in", "free_text_ack"):
        assert f"common/{key}" in texts, key
    for word in ('text = "stop"', 'text = "start"', 'text = "help"', 'text = "call"'):
        assert word in texts, word
