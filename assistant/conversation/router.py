"""Who speaks first: one inbound text from a known participant, read once, then acted on by
an ordered list of handlers (DESIGN.md rule 6, as data).

The text is read by the pure understanding module, which returns every signal in it. Each handler looks at the
reading and acts on its own signal: raising flags, answering or ending the waiting flow, queueing at most one
routine reply. A handler returns True when the text needs nothing more. Risk to self is read first, always,
whatever is waiting, and never stops the others: the cancellation and the call request in the same text are
still acted on. Nothing a participant writes is dropped: a text that no handler claims goes to the specialist
as free text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlmodel import Session

from assistant import engine
from assistant.care.flags import has_open_flag, raise_flag, self_resolve
from assistant.contact import appointments
from assistant.contact.policy import WANTS_TO_STOP
from assistant.conversation import controls, number_change
from assistant.db.models import Answer, FlowSession, Message, Participant
from assistant.db.open_items import NOTHING_OPEN, OpenItems, open_items, signposted_lately
from assistant.db.rows import write_now
from assistant.engine.flow import Question
from assistant.engine.questionnaire import UNCLEAR
from assistant.engine.understanding import Reading, read
from assistant.outbox.writer import queue_sms, withdraw_outbox
from assistant.runtime import Runtime
from assistant.sending.failures import VITAL_KEYS
from assistant.sessions.lifecycle import (
    Outcome,
    active_session,
    late_question,
    late_value,
    recently_acknowledged,
    resume_flow,
)


@dataclass
class Text:
    """One inbound text as the handlers see it."""

    db: Session
    rt: Runtime
    participant: Participant
    message: Message
    now: datetime
    reading: Reading
    waiting: FlowSession | None
    question: Question | None = None
    open: OpenItems = NOTHING_OPEN  # what else this text might answer or end
    outcome: Outcome = field(default_factory=Outcome)
    replied: bool = False  # a routine reply is queued: no second one
    crisis: bool = False  # signposting is the reply: nothing routine follows it
    flow_done: bool = False  # the waiting flow has had this text
    flagged: bool = False  # a flag already tells the specialist about this text

    @property
    def evidence(self) -> dict[str, Any]:
        return {"message_id": self.message.id}

    def flag(self, kind: str, severity: str, reason: str, **evidence: Any) -> None:
        self.flagged = True
        raise_flag(
            self.db, self.participant, kind=kind, severity=severity, reason=reason, now=self.now,
            evidence=self.evidence | evidence,
        )  # fmt: skip

    def say(self, key: str, *, priority: bool = False, variables: dict[str, Any] | None = None) -> None:
        """Queue a reply: one routine reply per text, and none after crisis signposting."""
        if not priority and (self.replied or self.crisis):
            return
        self.outcome.outbox.append(queue_sms(self.db, self.rt, self.participant, key, self.now, variables=variables))
        self.replied = True

    def queued(self, key: str) -> bool:
        """This text has already put a message with this key in the outbox (read from the session)."""
        return any(getattr(self.db.get(Message, i), "message_key", None) == key for i in self.outcome.outbox)

    def end_flow(self, reason: str) -> None:
        """End the waiting flow because of what this text says, keeping its answer if it gave one.

        A question about thoughts of self-harm is never cut short: whatever else the text says,
        the question reads it (anything but a clear "not at all" starts the safety pathway)."""
        if self.waiting is None or self.flow_done:
            return
        answer = self.reading.answer.value if self.reading.answer else None
        given: engine.Input = engine.Interrupt(reason, self.message.body, answer=answer)
        if self.question is not None and self.question.other_value == UNCLEAR:
            given = engine.Reply(self.message.body)
        self.outcome.extend(
            resume_flow(self.db, self.rt, self.participant, self.waiting, given, self.now, inbound=self.message)
        )
        self.flow_done = True


Handler = Callable[[Text], bool]


CRISIS_REASON = "Sent a message that reads like a crisis: please contact them today"
DANGER_FROM_OTHERS = (
    "Says someone is threatening or hurting them: please contact them today, with care "
    "(the person may be with them or read their phone)"
)


def risk(text: Text) -> bool:
    """Signposting and an urgent flag at once: the software never judges risk, a person does."""
    signals = [s for s in text.reading.signals if s.kind == "risk"]
    if not signals:
        return False
    text.crisis = True
    # Someone else told us about them: the flag says so, and the signposting speaks to whoever
    # holds the phone.
    someone_else = text.reading.by_someone_else
    # Danger from another person: the same urgent flag, said so, because the call needs care (the
    # person threatening them may hear it or read the phone), and signposting to the police.
    from_others = text.reading.from_others
    said = {key: True for key, true in (("by_someone_else", someone_else), ("from_others", from_others)) if true}
    text.flag(
        "crisis",
        "urgent",
        DANGER_FROM_OTHERS if from_others else CRISIS_REASON,
        words=[s.words for s in signals],
        why=sorted({s.label for s in signals}),
        **said,
    )
    # A question about thoughts of self-harm sends its own signposting when it reads the text.
    text.end_flow("crisis")
    if not text.queued("common/crisis") and not signposted_lately(text.db, text.participant, text.now):
        # Sent even after an opt-out: if the carrier refuses it, the flag says so and a person phones.
        variables = {"for_someone": someone_else, "from_others": from_others}
        text.say("common/crisis", priority=True, variables=variables)
    text.replied = True
    return False  # the other signals in the same text are still acted on


def opt_out(text: Text) -> bool:
    """STOP and the carrier's other words: Twilio has already blocked the number."""
    if text.reading.keyword != "opt_out":
        return False
    participant = text.participant
    participant.opted_out, participant.opted_out_at = True, text.now
    text.end_flow("opted_out")
    assert participant.id is not None
    withdraw_outbox(text.db, participant.id, reason="opted_out")
    text.flag("opted_out", "action", "Asked to stop texts: no more texts will be sent")
    return True  # Twilio confirms the opt-out itself; anything we sent now would be refused


def opt_in(text: Text) -> bool:
    if text.reading.keyword != "opt_in" or not text.participant.opted_out:
        return False
    participant = text.participant
    participant.opted_out, participant.opted_out_at = False, None
    assert participant.id is not None
    self_resolve(text.db, participant.id, "opted_out", text.now, note="They texted START: texts resume")
    text.flag("opted_in", "info", "Asked to get texts again")
    text.say("common/opted_in")
    return True


def while_opted_out(text: Text) -> bool:
    """Kept for the specialist; nothing routine goes back until they opt in again."""
    if not text.participant.opted_out:
        return False
    if not text.crisis:
        text.flag("message", "info", "Sent a message while texts are stopped")
    return True


def wrong_person(text: Text) -> bool:
    """Someone else has this phone: stop automated texts to it until a person checks. Crisis
    signposting already written still goes: whoever has the phone said something that reads like
    a crisis (risk is read first, and its signposting is sent whatever else the text says)."""
    if not text.reading.has("wrong_person"):
        return False
    participant = text.participant
    text.end_flow("wrong_person")
    if not participant.paused:
        participant.paused = True
        assert participant.id is not None
        withdraw_outbox(text.db, participant.id, reason="wrong_person", sparing=VITAL_KEYS)
    text.flag(
        "wrong_person",
        "action",
        "The reply says this number is not theirs: automated texts are paused until the number is checked",
        words=text.reading.words("wrong_person"),
    )
    text.say("common/wrong_person")
    return True


def help_request(text: Text) -> bool:
    """HELP, or a question about what these texts are: the waiting flow keeps waiting for its answer.
    HELP alone may be a cry for help as much as the carriers' keyword: the reply carries the urgent
    numbers, and a person is told."""
    if text.reading.keyword == "help":
        text.say("common/help")
        if not text.crisis:
            reason = "Texted HELP: sent who this number is and the urgent numbers; check in"
            text.flag("asked_for_help", "action", reason)
        return not text.crisis
    if text.reading.has("help") and text.reading.answer is None:
        text.say("common/help")
        text.flow_done = True  # the question stays open for its answer; the text goes on to the rest
    return False


def call_request(text: Text) -> bool:
    if not text.reading.has("call"):
        return False
    text.flag("callback", "action", "Asked for a call", words=text.reading.words("call"))
    text.end_flow("call")
    text.say("common/call_ack")
    return text.reading.keyword == "call"


def stop_in_own_words(text: Text) -> bool:
    """Twilio blocks only its single keywords: asked in their own words, a person decides.
    (A break for a while is a pause: see assistant/conversation/controls.py.)"""
    if text.reading.has("stop"):
        assert text.participant.id is not None
        already_asked = has_open_flag(text.db, text.participant.id, WANTS_TO_STOP)
        text.flag(
            WANTS_TO_STOP, "action", "Asked in their own words for the texts or the support to stop",
            words=text.reading.words("stop"),
        )  # fmt: skip
        text.end_flow(WANTS_TO_STOP)
        if already_asked:
            text.replied = True  # asked once already: no second question, no acknowledgement
        else:
            text.say("common/confirm_stop")  # asked once; the texts only stop if they say STOP
    return False


def cancel_or_rebook(text: Text) -> bool:
    """A reminder waiting for an answer takes a cancellation as its NO; otherwise the specialist
    hears of it directly."""
    cancel, rebook = text.reading.has("cancel"), text.reading.has("rebook")
    flow_will_answer = text.waiting is not None and not text.flow_done and text.reading.answer is not None
    if not (cancel or rebook) or flow_will_answer:
        return False
    if cancel:
        text.flag(
            "cancellation_requested", "action", "Says they can't make an appointment: please rebook",
            words=text.reading.words("cancel"),
        )  # fmt: skip
    if rebook and not cancel:
        text.flag(
            "rebook_requested", "action", "Asks for another time for an appointment",
            words=text.reading.words("rebook"),
        )  # fmt: skip
    return False


def campaign_reply(text: Text) -> bool:
    from assistant.contact.campaigns import handle_reply  # campaigns builds on the conversation layer

    if text.crisis:
        return False
    keyword = handle_reply(text.db, text.participant, text.message, text.waiting, text.now, text.reading)
    if not keyword:
        return False
    if not engine.says_only(text.message.body, engine.normalise(keyword)):
        text.flag("message", "info", "Sent a message to read")  # more than the keyword: a person reads the rest
    text.say("common/campaign_reply")
    return True


def waiting_flow(text: Text) -> bool:
    if text.waiting is None or text.flow_done:
        return False
    write_now(text.db, text.message, flow=text.waiting.flow)
    # The reading's answer, which also knows "well bad" and a cancellation as a reminder's NO.
    choice = text.reading.answer.value if text.reading.answer else None
    given = engine.Reply(text.message.body, choice=choice)
    text.outcome.extend(
        resume_flow(text.db, text.rt, text.participant, text.waiting, given, text.now, inbound=text.message)
    )
    text.flow_done = True
    text.replied = True
    return True


def free_text(text: Text) -> bool:
    """Nothing a participant writes is dropped: the specialist reads it."""
    participant, db = text.participant, text.db
    assert participant.id is not None
    late = late_question(db, participant.id, text.now)
    if late and late.question and not text.crisis:  # a crisis text is the flag's evidence, not an answer
        write_now(db, text.message, flow=late.flow)
        db.add(
            Answer(
                participant_id=participant.id,
                session_id=late.id,
                message_id=text.message.id,
                flow=late.flow,
                question=late.question,
                raw=text.message.body,
                at=text.now,
                late=True,
                value=late_value(text.rt, late, text.message.body),
            )
        )
    if not text.flagged:
        text.flag("message", "info", "Sent a message to read")
    if text.message.body.strip() and not text.replied and not recently_acknowledged(db, participant.id, text.now):
        text.say("common/free_text_ack")
    return True


def says(*kinds: str) -> Callable[[Text], bool]:
    """A handler that acts only on these signals need not be asked about other texts."""
    return lambda text: any(text.reading.has(kind) for kind in kinds)


def asked_back(text: Text) -> bool:
    """A question the assistant asked back about their contact waits for its answer."""
    return text.open.request


def campaign_asked(text: Text) -> bool:
    return text.open.campaign


def always(text: Text) -> bool:
    return True


class Step(NamedTuple):
    name: str
    handler: Handler
    # Asked only when this holds: what the handler looks for is in the text, or open for the person.
    when: Callable[[Text], bool] = always


# The order is the policy: risk first, always; the carrier's keywords; then what the person
# asks for (their own controls never act on a text that reads like a crisis); then the
# waiting flow; then free text for the specialist.
HANDLERS: tuple[Step, ...] = (
    Step("risk to self", risk),
    Step("opt-out keyword", opt_out),
    Step("opt-in keyword", opt_in),
    Step("texts stopped", while_opted_out),
    Step("wrong person", wrong_person),
    Step("code for a new number", number_change.code_reply, asked_back),
    Step("new number", number_change.new_number, lambda text: says("new_number")(text) or asked_back(text)),
    Step("help", help_request),
    Step("call request", call_request),
    Step("how long a break", controls.pause_length, asked_back),
    Step("pause", controls.pause, says("pause")),
    Step("stop in own words", stop_in_own_words),
    Step("less or more", controls.less_or_more, says("less", "more")),
    Step("another day or time", controls.day_or_time, says("contact_time")),
    Step("cancel or rebook", cancel_or_rebook),
    Step("campaign reply", campaign_reply, campaign_asked),
    Step("waiting flow", waiting_flow),
    Step("free text", free_text),
)


def run_handlers(text: Text) -> Outcome:
    """Each handler in order, until one finishes the text."""
    for step in HANDLERS:
        if step.when(text) and step.handler(text):
            break
    return text.outcome


def handle_text(db: Session, rt: Runtime, participant: Participant, message: Message, now: datetime) -> Outcome:
    """Read one inbound text and let each handler act on it, in order, until one finishes it."""
    assert participant.id is not None
    open_now = open_items(db, participant.id, now)
    if open_now.ladder:
        appointments.on_inbound(db, participant, message, now)  # any reply ends a follow-up ladder
    if open_now.not_responding:
        self_resolve(db, participant.id, "not_responding", now, note="They replied")  # the flag stays in the history
    waiting = active_session(db, participant.id)
    question = question_waiting(rt, waiting)
    reading = read(message.body, rt.phrases.get(participant.language), question, named=participant.first_name)
    return run_handlers(Text(db, rt, participant, message, now, reading, waiting, question, open_now))


def question_waiting(rt: Runtime, waiting: FlowSession | None) -> Question | None:
    """The question the waiting flow asked, so the reading can say whether the text answers it."""
    if waiting is None or not waiting.state:
        return None
    flow = rt.flows.get(waiting.flow, waiting.flow_version)
    node = flow.nodes.get(str(waiting.state.get("node"))) if flow else None
    return node.ask if node else None
