"""Outbound SMS against a mock of Twilio's REST API generated from Twilio's own OpenAPI file.

The real `TwilioTransport` (the official SDK) and the real outbox talk to Prism, which
validates every request against the spec: a request Twilio's API would refuse gets 422.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlmodel import select

from assistant.clock import FixedClock
from assistant.config import Settings
from assistant.conversation.inbound import receive_sms
from assistant.db.models import Message, Participant
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload
from assistant.outbox.writer import queue_sms
from assistant.runtime import Runtime, build_runtime
from assistant.sending.reconcile import reconcile_stale
from assistant.sending.sender import send_due
from assistant.sending.status import record_status_callback
from assistant.transports import TwilioTransport
from tests.conftest import PUBLIC_URL, test_settings
from tests.twilio_mock.server import TwilioMock, TwilioMockUnavailable, start_twilio_mock

pytestmark = pytest.mark.prism

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "mock-auth-token-0123456789abcdef"
FROM_NUMBER = "+447700900000"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
STATUS_CALLBACK = PUBLIC_URL + "/twilio/status"


@pytest.fixture(scope="module")
def twilio_mock() -> Iterator[TwilioMock]:
    try:
        mock = start_twilio_mock()
    except TwilioMockUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the Twilio API mock is required under CI: {exc}")
        pytest.skip(str(exc))
    try:
        yield mock
    finally:
        mock.stop()


@pytest.fixture
def mock(twilio_mock: TwilioMock) -> TwilioMock:
    twilio_mock.clear()
    return twilio_mock


@pytest.fixture
def settings(db_url: str, tmp_path: Path, mock: TwilioMock) -> Settings:
    return replace(
        test_settings(db_url, tmp_path),
        sms_transport="twilio",
        twilio_api_url=mock.url,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from_number=FROM_NUMBER,
    )


@pytest.fixture
def twilio_rt(settings: Settings, clock: FixedClock) -> Iterator[Runtime]:
    runtime = build_runtime(settings, clock=clock)
    assert isinstance(runtime.transport, TwilioTransport)
    yield runtime
    runtime.engine.dispose()


def queue_help(rt: Runtime, caseload_file: Path, *, phone: str | None = None) -> int:
    """Import the caseload and put one message for P001 in the outbox; its id."""
    now = rt.clock.now()
    import_caseload(rt, caseload_file, now)
    with transaction(rt.engine) as db:
        participant = db.exec(select(Participant).where(Participant.external_id == "P001")).one()
        return queue_sms(db, rt, participant, "common/help", now, to=phone)


def load(rt: Runtime, message_id: int) -> Message:
    with transaction(rt.engine) as db:
        message = db.get(Message, message_id)
        assert message is not None
        return message


def test_outbox_sends_a_valid_request_and_records_the_sid(
    twilio_rt: Runtime, mock: TwilioMock, caseload_file: Path
) -> None:
    message_id = queue_help(twilio_rt, caseload_file)
    queued = load(twilio_rt, message_id)

    report = send_due(twilio_rt, twilio_rt.clock.now())

    assert report.sent == 1 and report.failed == report.retried == 0
    message = load(twilio_rt, message_id)
    assert message.status == "sent"
    assert message.provider_sid and message.provider_sid.startswith("SM")
    assert message.sent_at == twilio_rt.clock.now()
    assert message.error_code is None
    [request] = mock.recorded("POST", "/Messages.json")
    assert request.path == MESSAGES_PATH
    assert request.valid, request.violations
    assert request.status == 201
    assert request.basic_user == ACCOUNT_SID
    assert request.field("To") == queued.phone == "+447700900101"
    assert request.field("From") == FROM_NUMBER
    assert request.field("Body") == queued.body
    assert request.field("StatusCallback") == STATUS_CALLBACK
    assert message.provider_sid == request.response["sid"]


def test_status_callback_is_sent_and_accepted(settings: Settings, mock: TwilioMock) -> None:
    transport = TwilioTransport(settings)

    with_callback = transport.send(to="+447700900101", body="hello", key="k1", status_callback=STATUS_CALLBACK)
    without_callback = transport.send(to="+447700900101", body="hello", key="k2", status_callback=None)

    assert with_callback.ok and with_callback.sid and with_callback.sid.startswith("SM")
    assert with_callback.status == "queued"  # Prism's example resource
    assert without_callback.ok
    first, second = mock.recorded("POST", "/Messages.json")
    assert first.valid and first.field("StatusCallback") == STATUS_CALLBACK
    assert second.valid and "StatusCallback" not in second.form


def test_status_callback_is_checked_by_the_mock(settings: Settings, mock: TwilioMock) -> None:
    result = TwilioTransport(settings).send(to="+447700900101", body="x", key="k", status_callback="not a url")

    assert not result.ok and not result.transient
    [request] = mock.recorded("POST", "/Messages.json")
    assert request.status == 422
    assert any("StatusCallback" in v for v in request.violations), request.violations


@pytest.mark.parametrize("to", ["", "07700900101"], ids=["blank", "not-e164"])
def test_a_number_twilio_would_reject_is_a_permanent_failure(settings: Settings, mock: TwilioMock, to: str) -> None:
    result = TwilioTransport(settings).send(to=to, body="x", key="k", status_callback=None)

    assert not result.ok
    assert not result.transient
    assert result.error_code  # Prism answers 422; Twilio itself would say 21604 or 21211
    assert result.error_message
    [request] = mock.recorded("POST", "/Messages.json")
    assert not request.valid
    assert request.field("To") == to
    assert any("To" in v for v in request.violations), request.violations


def test_outbox_marks_a_rejected_message_failed(twilio_rt: Runtime, mock: TwilioMock, caseload_file: Path) -> None:
    message_id = queue_help(twilio_rt, caseload_file, phone="")

    report = send_due(twilio_rt, twilio_rt.clock.now())

    assert report.failed == 1 and report.sent == report.retried == 0
    message = load(twilio_rt, message_id)
    assert message.status == "failed"
    assert message.error_code
    assert message.error_message
    assert message.provider_sid is None
    assert message.attempts == 1
    [request] = mock.recorded("POST", "/Messages.json")
    assert request.status == 422


def example_messages(mock: TwilioMock) -> list[dict[str, str]]:
    """The example page of messages the mock serves for the list endpoint."""
    reply = requests.get(
        mock.url + MESSAGES_PATH, params={"To": "+447700900101"}, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=30
    )
    reply.raise_for_status()
    messages: list[dict[str, str]] = reply.json()["messages"]
    assert messages
    mock.clear()
    return messages


def test_lookup_queries_the_list_endpoint(settings: Settings, mock: TwilioMock, clock: FixedClock) -> None:
    example = example_messages(mock)[0]
    transport = TwilioTransport(settings)
    since = clock.now()

    found = transport.lookup(to="+447700900101", body=example["body"], key="out-1", since=since)
    missing = transport.lookup(to="+447700900101", body="a body the mock never returns", key="out-2", since=since)

    assert found == example["sid"] and found.startswith("SM")
    assert missing is None
    requests_made = mock.recorded("GET", "/Messages.json")
    assert requests_made and all(r.valid for r in requests_made), [r.violations for r in requests_made]
    first = requests_made[0]
    assert first.path == MESSAGES_PATH
    assert first.query["To"] == ["+447700900101"]
    assert first.query["DateSent>"] == [(since - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")]


def test_reconcile_uses_lookup_for_a_message_stuck_in_sending(
    twilio_rt: Runtime, mock: TwilioMock, caseload_file: Path
) -> None:
    example = example_messages(mock)[0]
    now = twilio_rt.clock.now()
    found_id = queue_help(twilio_rt, caseload_file)
    with transaction(twilio_rt.engine) as db:
        participant = db.exec(select(Participant).where(Participant.external_id == "P002")).one()
        missing_id = queue_sms(db, twilio_rt, participant, "common/help", now)
        for message_id, body in ((found_id, example["body"]), (missing_id, None)):
            message = db.get(Message, message_id)
            assert message is not None
            message.status, message.claimed_at, message.attempts = "sending", now - timedelta(minutes=10), 1
            message.body = body or message.body
            db.add(message)

    assert reconcile_stale(twilio_rt, now) == (2, 0)

    found, missing = load(twilio_rt, found_id), load(twilio_rt, missing_id)
    assert (found.status, found.provider_sid) == ("sent", example["sid"])
    assert (missing.status, missing.provider_sid) == ("queued", None)
    assert mock.recorded("GET", "/Messages.json")
    assert not mock.recorded("POST")  # reconciling never sends


def test_crisis_from_a_number_marked_unreachable_goes_through_twilio(
    twilio_rt: Runtime, mock: TwilioMock, caseload_file: Path
) -> None:
    now = twilio_rt.clock.now()
    first_id = queue_help(twilio_rt, caseload_file)
    send_due(twilio_rt, now)
    sid = load(twilio_rt, first_id).provider_sid
    assert sid
    record_status_callback(twilio_rt, sid=sid, status="undelivered", error_code="30005", now=now)
    with transaction(twilio_rt.engine) as db:
        assert db.exec(select(Participant).where(Participant.external_id == "P001")).one().unreachable
    mock.clear()

    later = now + timedelta(days=2)
    received = receive_sms(
        twilio_rt, sid="SM" + "7" * 32, sender="+447700900101", body="i want to end it all", now=later
    )
    report = send_due(twilio_rt, later, only=received.outbox)

    [crisis_id] = received.outbox
    crisis = load(twilio_rt, crisis_id)
    assert (crisis.message_key, crisis.status, report.sent) == ("common/crisis", "sent", 1)
    [request] = mock.recorded("POST", "/Messages.json")
    assert request.valid, request.violations
    assert request.field("To") == "+447700900101"
    assert request.field("Body") == crisis.body and "116 123" in crisis.body
    assert crisis.provider_sid == request.response["sid"]
    with transaction(twilio_rt.engine) as db:
        assert not db.exec(select(Participant).where(Participant.external_id == "P001")).one().unreachable
