"""The Twilio webhooks: signatures, duplicates, odd bodies, unknown numbers, status callbacks."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlmodel import func, select

from assistant.content.library import CRISIS_FALLBACK, Catalog
from assistant.db.models import AuditLog, Flag, InboundReceipt, Message, Participant, StatusEvent
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload
from assistant.outbox.writer import queue_sms
from assistant.runtime import Runtime
from assistant.sending.sender import send_due

from .conftest import AUTH_TOKEN, PUBLIC_URL, Phone, outbound


def _count(rt: Runtime, model: type) -> int:
    with transaction(rt.engine) as db:
        return int(db.exec(select(func.count()).select_from(model)).one())


def _inbound(rt: Runtime) -> list[Message]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(Message).where(Message.direction == "in").order_by(Message.id)).all())  # type: ignore[arg-type]


def _load(rt: Runtime, caseload_file: Path) -> None:
    import_caseload(rt, caseload_file, rt.clock.now())


def test_missing_signature_is_refused_and_nothing_stored(client: FlaskClient, rt: Runtime, caseload_file: Path) -> None:
    _load(rt, caseload_file)
    response = client.post("/twilio/sms", data={"MessageSid": "SM1", "From": "+447700900101", "Body": "hi"})
    assert response.status_code == 403
    assert _count(rt, Message) == 0 and _count(rt, InboundReceipt) == 0


def test_wrong_signature_is_refused(client: FlaskClient, rt: Runtime, phone: Phone, caseload_file: Path) -> None:
    _load(rt, caseload_file)
    params = {"MessageSid": "SM1", "From": "+447700900101", "Body": "hi"}
    good = phone.sign("/twilio/sms", params)
    tampered = dict(params, Body="something else")
    assert client.post("/twilio/sms", data=tampered, headers={"X-Twilio-Signature": good}).status_code == 403
    # Signed for another URL (e.g. the address behind the proxy) is wrong too.
    from assistant.signing import twilio_signature

    other = twilio_signature("http://localhost/twilio/sms", params, AUTH_TOKEN)
    assert client.post("/twilio/sms", data=params, headers={"X-Twilio-Signature": other}).status_code == 403
    assert _count(rt, Message) == 0


def test_signed_with_another_token_is_refused(client: FlaskClient, rt: Runtime, caseload_file: Path) -> None:
    from assistant.signing import twilio_signature

    _load(rt, caseload_file)
    params = {"MessageSid": "SM1", "From": "+447700900101", "Body": "hi"}
    signature = twilio_signature(PUBLIC_URL + "/twilio/sms", params, "not-the-token")
    assert client.post("/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}).status_code == 403


def test_a_signed_text_is_recorded_and_answered_with_empty_twiml(
    phone: Phone, rt: Runtime, caseload_file: Path
) -> None:
    _load(rt, caseload_file)
    response = phone.text("07700900101", "hello there")  # any UK form of the number
    assert response.status_code == 200
    assert response.mimetype == "text/xml" and b"<Response>" in response.data
    [message] = _inbound(rt)
    assert message.body == "hello there" and message.participant_id is not None
    assert [m.message_key for m in outbound(rt)] == ["common/free_text_ack"]
    assert outbound(rt)[0].status == "sent"


def test_replayed_message_sid_is_acknowledged_and_ignored(phone: Phone, rt: Runtime, caseload_file: Path) -> None:
    _load(rt, caseload_file)
    first = phone.text("+447700900101", "hello", sid="SM" + "a" * 32)
    again = phone.text("+447700900101", "hello", sid="SM" + "a" * 32)
    assert first.status_code == again.status_code == 200
    assert len(_inbound(rt)) == 1
    assert len(outbound(rt)) == 1


def test_unknown_number_gets_one_neutral_reply_and_is_kept(phone: Phone, rt: Runtime, caseload_file: Path) -> None:
    _load(rt, caseload_file)
    phone.text("+447700900999", "hi is that Sam?")
    phone.text("+447700900999", "hello??")
    kept = _inbound(rt)
    assert [m.body for m in kept] == ["hi is that Sam?", "hello??"]
    assert all(m.participant_id is None and m.status == "triage" for m in kept)
    [reply] = outbound(rt)
    assert reply.message_key == "common/unknown_number" and reply.phone == "+447700900999"
    # Discloses nothing: no names of anyone on the caseload, no service details.
    for name in ("Alex", "Jordan", "Priya", "Sam", "Chris", "north"):
        assert name not in reply.body


def test_empty_body_is_kept_as_a_message(phone: Phone, rt: Runtime, caseload_file: Path) -> None:
    _load(rt, caseload_file)
    assert phone.text("+447700900101", "").status_code == 200
    [message] = _inbound(rt)
    assert message.body == ""


def test_long_body_and_emoji_are_kept_intact(phone: Phone, rt: Runtime, caseload_file: Path) -> None:
    _load(rt, caseload_file)
    long_text = ("It has been a long week 😊 " * 80)[:1600]
    assert phone.text("+447700900101", long_text).status_code == 200
    assert phone.text("+447700900101", "👍🏽").status_code == 200
    bodies = [m.body for m in _inbound(rt)]
    assert bodies == [long_text, "👍🏽"]


def test_non_utf8_form_data_does_not_corrupt_anything(
    client: FlaskClient, rt: Runtime, phone: Phone, caseload_file: Path
) -> None:
    _load(rt, caseload_file)
    raw = b"MessageSid=SM123&From=%2B447700900101&Body=caf%E9+%FF%FE"
    # Sign what the server will decode, so the request gets past the signature check.
    decoded = {"MessageSid": "SM123", "From": "+447700900101", "Body": "caf\ufffd \ufffd\ufffd"}
    response = client.post(
        "/twilio/sms",
        data=raw,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": phone.sign("/twilio/sms", decoded)},
    )
    assert response.status_code in (200, 400, 403)
    for message in _inbound(rt):
        message.body.encode("utf-8")  # whatever was stored is valid text


def test_missing_fields_are_a_clear_error(phone: Phone, client: FlaskClient, rt: Runtime) -> None:
    params = {"Body": "hi"}
    response = client.post(
        "/twilio/sms", data=params, headers={"X-Twilio-Signature": phone.sign("/twilio/sms", params)}
    )
    assert response.status_code == 400
    assert _count(rt, Message) == 0


def _reply_sid(phone: Phone, rt: Runtime, caseload_file: Path) -> str:
    """P001 writes "hello": the provider's id of the one reply sent."""
    _load(rt, caseload_file)
    phone.text("+447700900101", "hello")
    [reply] = outbound(rt)
    assert reply.provider_sid
    return reply.provider_sid


def test_status_callbacks_in_any_order(phone: Phone, rt: Runtime, caseload_file: Path) -> None:
    sid = _reply_sid(phone, rt, caseload_file)
    assert phone.status(sid, "delivered").status_code == 204
    assert phone.status(sid, "sent").status_code == 204  # late, older news
    assert outbound(rt)[0].status == "delivered"


def test_status_callback_before_the_send_is_recorded_is_applied_later(
    phone: Phone, rt: Runtime, caseload_file: Path
) -> None:
    _load(rt, caseload_file)
    assert phone.status("SMunknown00000000000000000000000", "delivered").status_code == 204
    assert _count(rt, StatusEvent) == 1


def _mark_unreachable(phone: Phone, rt: Runtime, caseload_file: Path) -> Participant:
    """P001's reply comes back undelivered as a landline (30006): the number is marked unreachable."""
    phone.status(_reply_sid(phone, rt, caseload_file), "undelivered", "30006")
    with transaction(rt.engine) as db:
        person = db.exec(select(Participant).where(Participant.phone == "+447700900101")).one()
        assert person.unreachable
        return person


def test_undeliverable_number_stops_further_sends(phone: Phone, rt: Runtime, caseload_file: Path) -> None:
    person = _mark_unreachable(phone, rt, caseload_file)
    rt.clock.set(rt.clock.now() + timedelta(days=1))  # type: ignore[attr-defined]
    with transaction(rt.engine) as db:
        queue_sms(db, rt, person, "checkin/ask_week", rt.clock.now(), automated=True)
    send_due(rt, rt.clock.now())
    assert [m.status for m in outbound(rt)] == ["undelivered", "suppressed"]


def test_a_text_from_an_unreachable_number_clears_the_mark_and_is_answered(
    phone: Phone, rt: Runtime, caseload_file: Path
) -> None:
    person = _mark_unreachable(phone, rt, caseload_file)
    rt.clock.set(rt.clock.now() + timedelta(days=1))  # type: ignore[attr-defined]
    phone.text("+447700900101", "help")
    assert [(m.message_key, m.status) for m in outbound(rt)] == [
        ("common/free_text_ack", "undelivered"),
        ("common/help", "sent"),
    ]
    with transaction(rt.engine) as db:
        again = db.get(Participant, person.id)
        assert again is not None and not again.unreachable and again.unreachable_reason is None
        [flag] = db.exec(select(Flag).where(Flag.kind == "unreachable")).all()
        assert (flag.status, flag.resolved_by) == ("resolved", "assistant")
        [entry] = db.exec(select(AuditLog).where(AuditLog.action == "reachable_again")).all()
        assert (entry.participant_id, entry.user_email) == (person.id, "assistant")
        assert entry.detail == {"why": "texted_in", "was": "twilio error 30006"}


def test_a_reply_to_a_number_that_has_just_texted_is_not_held_back_by_the_mark(
    phone: Phone, rt: Runtime, caseload_file: Path
) -> None:
    person = _mark_unreachable(phone, rt, caseload_file)
    with transaction(rt.engine) as db:
        # Marked again after their text came in (a late failure for an older message), before the reply went.
        row = db.get(Participant, person.id)
        assert row is not None
        row.last_inbound_at = rt.clock.now()
        db.add(row)
        queue_sms(db, rt, row, "common/help", rt.clock.now())
    send_due(rt, rt.clock.now())
    assert [m.status for m in outbound(rt)] == ["undelivered", "sent"]


def test_status_callback_needs_a_signature(client: FlaskClient, rt: Runtime) -> None:
    response = client.post("/twilio/status", data={"MessageSid": "SM1", "MessageStatus": "delivered"})
    assert response.status_code == 403
    assert _count(rt, StatusEvent) == 0


def test_health_check(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok", "database": "ok"}


@pytest.mark.parametrize("language", ["en-GB/../en-GB", "cy-GB", "../en-GB", "EN-gb", ""])
def test_an_unknown_locale_on_the_record_never_loses_a_text(
    phone: Phone, rt: Runtime, caseload_file: Path, language: str
) -> None:
    _load(rt, caseload_file)
    with transaction(rt.engine) as db:
        person = db.exec(select(Participant).where(Participant.phone == "+447700900101")).one()
        person.language = language
        db.add(person)
    assert phone.text("+447700900101", "I want to end my life").status_code == 200
    assert phone.text("+447700900101", "help").status_code == 200
    assert [m.body for m in _inbound(rt)] == ["I want to end my life", "help"]
    crisis, help_reply = outbound(rt)
    assert (crisis.message_key, crisis.status, help_reply.message_key, help_reply.status) == (
        "common/crisis",
        "sent",
        "common/help",
        "sent",
    )
    names = {"first_name": "Alex", "specialist_name": "Sam", "nation": "england"}
    assert crisis.body == rt.catalog.render("common/crisis", names, "en-GB")
    assert help_reply.body == rt.catalog.render("common/help", names, "en-GB")


def _broken_copy(rt: Runtime, tmp_path: Path, key: str) -> None:
    """The service's own copy of messages/, with one en-GB template that cannot render."""
    copy = tmp_path / "messages"
    shutil.copytree(rt.settings.messages_dir, copy)
    (copy / "en-GB" / f"{key}.txt").write_text("Hello {{ no_such_variable }}", encoding="utf-8")
    rt.catalog = Catalog(copy)


def test_a_broken_crisis_template_still_sends_the_fixed_signposting(
    phone: Phone, rt: Runtime, caseload_file: Path, tmp_path: Path
) -> None:
    _load(rt, caseload_file)
    _broken_copy(rt, tmp_path, "common/crisis")
    assert phone.text("+447700900101", "I want to end my life").status_code == 200
    [crisis] = outbound(rt)
    assert (crisis.message_key, crisis.status, crisis.body) == ("common/crisis", "sent", CRISIS_FALLBACK)


def test_a_text_that_cannot_be_handled_is_kept_flagged_and_answered(
    phone: Phone, rt: Runtime, caseload_file: Path, tmp_path: Path
) -> None:
    _load(rt, caseload_file)
    _broken_copy(rt, tmp_path, "common/help")
    assert phone.text("+447700900101", "help").status_code == 200
    [kept] = _inbound(rt)
    assert kept.body == "help"
    assert [(m.message_key, m.status) for m in outbound(rt)] == [("common/free_text_ack", "sent")]
    with transaction(rt.engine) as db:
        [flag] = db.exec(select(Flag)).all()
    assert (flag.kind, flag.severity, flag.evidence[0]["message_id"]) == ("unhandled_message", "action", kept.id)
    # Sent again by Twilio, it is a duplicate like any other.
    assert phone.text("+447700900101", "help", sid=kept.provider_sid).status_code == 200
    assert len(_inbound(rt)) == 1 and len(outbound(rt)) == 1
