"""Who speaks first: the inbound handlers as data, each testable on its own."""

from __future__ import annotations

from sqlmodel import Session, select

from assistant.care.notify import queue_flag_emails
from assistant.conversation import router as routing
from assistant.db.models import Flag, Message, Participant
from assistant.engine.understanding import read
from assistant.runtime import Runtime


def test_risk_is_read_first_and_free_text_last() -> None:
    names = [step.name for step in routing.HANDLERS]
    assert names[0] == "risk to self"
    assert names[-1] == "free text"
    assert names.index("opt-out keyword") < names.index("call request") < names.index("waiting flow")
    assert len(set(names)) == len(names)


def _text(rt: Runtime, db: Session, participant: Participant, body: str) -> routing.Text:
    message = Message(
        participant_id=participant.id,
        direction="in",
        body=body,
        at=rt.clock.now(),
        status="received",
        phone=participant.phone,
    )
    db.add(message)
    db.flush()
    return routing.Text(db, rt, participant, message, rt.clock.now(), read(body, rt.phrases.get(None)), None)


def _flags(db: Session) -> list[str]:
    return sorted(f.kind for f in db.exec(select(Flag)).all())


def test_the_call_handler_alone(rt: Runtime, unit: tuple[Session, Participant]) -> None:
    db, participant = unit
    text = _text(rt, db, participant, "can u call me")
    assert routing.call_request(text) is False  # the rest of the text is still read
    assert _flags(db) == ["callback"] and text.replied
    assert [db.get(Message, i).message_key for i in text.outcome.outbox] == ["common/call_ack"]  # type: ignore[union-attr]


def test_the_risk_handler_alone_never_ends_the_reading(rt: Runtime, unit: tuple[Session, Participant]) -> None:
    db, participant = unit
    text = _text(rt, db, participant, "cant go on friday and honestly i cant go on at all")
    assert routing.risk(text) is False
    assert text.crisis and _flags(db) == ["crisis"]
    [flag] = db.exec(select(Flag)).all()
    assert flag.evidence[-1]["words"]  # the words that raised it
    # Later handlers add their own flags but no routine reply after the signposting.
    routing.cancel_or_rebook(text)
    routing.free_text(text)
    assert _flags(db) == ["cancellation_requested", "crisis"]
    keys = [db.get(Message, i).message_key for i in text.outcome.outbox]  # type: ignore[union-attr]
    assert keys == ["common/crisis"]


def test_a_handler_that_does_not_apply_does_nothing(rt: Runtime, unit: tuple[Session, Participant]) -> None:
    db, participant = unit
    text = _text(rt, db, participant, "good week thanks")
    for handler in (
        routing.risk,
        routing.opt_out,
        routing.wrong_person,
        routing.call_request,
        routing.stop_in_own_words,
    ):
        assert handler(text) is False
    assert _flags(db) == [] and text.outcome.outbox == []


def test_a_question_about_the_texts_does_not_swallow_a_call_request(
    rt: Runtime, unit: tuple[Session, Participant]
) -> None:
    db, participant = unit
    text = _text(rt, db, participant, "who is this? can you call me")
    routing.run_handlers(text)
    assert _flags(db) == ["callback"]
    assert [db.get(Message, i).message_key for i in text.outcome.outbox] == ["common/help"]  # type: ignore[union-attr]


def test_a_text_about_the_participant_from_someone_else_raises_a_crisis(
    rt: Runtime, unit: tuple[Session, Participant]
) -> None:
    """The router reads each text knowing whose phone it came from: a manager naming them is
    texting about them, so the crisis is theirs, with signposting and an urgent flag."""
    db, participant = unit
    body = f"Hi, {participant.first_name}'s manager at the cafe here. He told a colleague he is going to kill himself"
    message = Message(
        participant_id=participant.id, direction="in", body=body, at=rt.clock.now(), status="received",
        phone=participant.phone,
    )  # fmt: skip
    db.add(message)
    db.flush()
    outcome = routing.handle_text(db, rt, participant, message, rt.clock.now())
    assert "crisis" in _flags(db)
    replies = [db.get(Message, i) for i in outcome.outbox]
    assert replies[0] is not None and replies[0].message_key == "common/crisis"
    # Whoever holds the phone reads it: it speaks to them, not to the participant by name.
    assert replies[0].body.startswith("If they might act on these thoughts, call 999")
    assert participant.first_name not in replies[0].body
    # The specialist's email says the text spoke of someone at risk (never what was said).
    [flag] = [f for f in db.exec(select(Flag)).all() if f.kind == "crisis"]
    [note, *_] = queue_flag_emails(db, flag, rt.clock.now())
    assert "a text from their phone speaks of someone at risk: someone texting about them, or them" in note.body


def test_the_participants_own_crisis_text_is_answered_to_them(rt: Runtime, unit: tuple[Session, Participant]) -> None:
    db, participant = unit
    text = _text(rt, db, participant, "i want to end my life")
    routing.risk(text)
    [reply] = [db.get(Message, i) for i in text.outcome.outbox]
    assert reply is not None and reply.body.startswith(f"{participant.first_name}, if you feel you might act")


def test_danger_from_another_person_is_urgent_and_answered_with_the_police(
    rt: Runtime, unit: tuple[Session, Participant]
) -> None:
    """Someone threatening them: the same urgent flag, said so with a warning to call with care, and
    a reply that gives the police and how to reach them unheard, not advice about their thoughts."""
    db, participant = unit
    text = _text(
        rt, db, participant, "cant talk hes here. he said if i go to the appointment he'll kill me, i believe him"
    )
    assert text.reading.has("risk") and text.reading.from_others
    outcome = routing.handle_text(db, rt, participant, text.message, rt.clock.now())
    [flag] = [f for f in db.exec(select(Flag)).all() if f.kind == "crisis"]
    assert flag.severity == "urgent" and flag.reason == routing.DANGER_FROM_OTHERS
    assert flag.evidence[-1]["from_others"] is True
    [reply] = [db.get(Message, i) for i in outcome.outbox]
    assert reply is not None and reply.message_key == "common/crisis"
    assert reply.body.startswith(f"{participant.first_name}, if you are in danger now, call 999.")
    assert "press 55" in reply.body and "act on these thoughts" not in reply.body
    assert "not watched around the clock" in reply.body
    [note, *_] = queue_flag_emails(db, flag, rt.clock.now())
    assert "the person may be with them or read their phone" in note.body


def test_danger_from_others_beside_thoughts_of_dying_gets_the_crisis_signposting(
    rt: Runtime, unit: tuple[Session, Participant]
) -> None:
    """Any risk to self in the text and the signposting is about that (it gives 999 as well)."""
    db, participant = unit
    body = "they've got pictures of me and will send them to my family. i want to kill myself"
    text = _text(rt, db, participant, body)
    assert text.reading.has("risk") and not text.reading.from_others
    routing.risk(text)
    [reply] = [db.get(Message, i) for i in text.outcome.outbox]
    assert reply is not None and reply.body.startswith(f"{participant.first_name}, if you feel you might act")
    [flag] = db.exec(select(Flag)).all()
    assert "from_others" not in flag.evidence[-1]


def test_not_wanting_to_live_is_a_crisis_not_a_request_to_stop(rt: Runtime, unit: tuple[Session, Participant]) -> None:
    """ "I no longer want to live" was also read as asking for the texts to stop: a second flag that
    says they want to leave, and routine texts held for it. It is a crisis, and only that."""
    db, participant = unit
    text = _text(rt, db, participant, "i no longer want to live")
    assert text.reading.has("risk") and not text.reading.has("stop")
    routing.handle_text(db, rt, participant, text.message, rt.clock.now())
    assert _flags(db) == ["crisis"]


def test_a_crisis_text_from_a_new_number_is_signposted_there_though_the_old_one_just_was(
    rt: Runtime, unit: tuple[Session, Participant]
) -> None:
    """A run of crisis texts gets the signposting once every few minutes, per number: someone who
    has just moved number hears it on the phone they now text from."""
    db, participant = unit
    first = _text(rt, db, participant, "i want to end my life")
    routing.risk(first)
    again = _text(rt, db, participant, "i still want to end it")
    routing.risk(again)
    assert again.outcome.outbox == []  # the same number, minutes later: the flag gathers it
    participant.phone = "+447700900199"  # their number change confirmed
    db.add(participant)
    db.flush()
    moved = _text(rt, db, participant, "i still feel like killing myself")
    routing.risk(moved)
    [reply] = [db.get(Message, i) for i in moved.outcome.outbox]
    assert reply is not None and reply.message_key == "common/crisis" and reply.phone == "+447700900199"


def test_a_text_after_start_is_not_headed_as_sent_while_texts_were_stopped(
    rt: Runtime, unit: tuple[Session, Participant]
) -> None:
    db, participant = unit
    participant.opted_out = True
    for body in ("just seen your text, will reply later", "START", "can you tell sam i got the job"):
        routing.handle_text(db, rt, participant, _text(rt, db, participant, body).message, rt.clock.now())
    [flag] = [f for f in db.exec(select(Flag)).all() if f.kind == "message"]
    assert flag.reason == "Sent a message to read"
    assert flag.evidence[0]["reason"] == "Sent a message while texts are stopped"
