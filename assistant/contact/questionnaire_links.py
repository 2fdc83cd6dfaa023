"""Questionnaires on a private page: one text with a link, then the items on the page.

The sitting is an ordinary run of the questionnaire flow (the same items, the same scoring,
the same crisis node and urgent flag), with status "on_page" so that a text from the
participant is never read as an answer to it, and with the flow's own texts left to the page:
only crisis signposting is also texted. The text holds a random token; the database keeps only
its SHA-256 hash. The link shows the next item until the sitting ends (finished, paused after a
risk item, or expired) and nothing at all after that; no name or other detail is ever on it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, select

from assistant import engine
from assistant.care.measures import RESUMES, paused_sitting, record_results
from assistant.care.rhythm import note_reply
from assistant.content.library import CRISIS_KEY
from assistant.db.driver import Prepared
from assistant.db.models import FlowSession, Participant, QuestionnaireLink, SessionStatus, table
from assistant.db.rows import first_row
from assistant.db.service_settings import settings_for
from assistant.db.units import lock_participant
from assistant.outbox.writer import participant_vars, queue_sms, render_for
from assistant.runtime import Runtime
from assistant.sessions.lifecycle import Outcome, apply_events

LINK_KEY = "questionnaire/link"
PATH = "/q/"
TOKEN_BYTES = 32  # 43 characters, all in the SMS alphabet
SKIPPED = "skipped"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _on_page(events: Sequence[engine.Event]) -> list[engine.Event]:
    """The page shows the flow's items and messages; only crisis signposting is also texted."""
    return [e for e in events if not isinstance(e, engine.Say) or e.key == CRISIS_KEY]


def _until(at: datetime, timezone: str) -> str:
    local = at.astimezone(ZoneInfo(timezone))
    return f"{local:%A} {local.day} {local:%B}, {local:%H:%M}"


def send_link(
    db: Session,
    rt: Runtime,
    participant: Participant,
    flow: engine.Flow,
    now: datetime,
    *,
    expires_after: timedelta,
    automated: bool = True,
) -> Outcome:
    """Begin a sitting on the page and text its link (`automated`: the clock sent it, so it keeps to
    quiet hours; a reply to LINK goes at once). A sitting paused lately after a risk item is taken
    up where it stopped, as an invitation by text would (measures.paused_sitting)."""
    assert participant.id is not None
    expires = now + expires_after
    context = participant_vars(db, participant) | {"expires_at": expires.isoformat()}
    resuming = None
    if paused := paused_sitting(db, participant.id, flow, now):
        context[RESUMES], resuming = paused[0].id, paused[1]
    state, events = engine.start(flow, context, now, at=engine.page_entry(flow, resuming))
    row = FlowSession(
        participant_id=participant.id,
        flow=flow.id,
        flow_version=flow.version,
        status=SessionStatus.ON_PAGE,
        state=state,
        started_at=now,
    )
    db.add(row)
    db.flush()
    assert row.id is not None
    outcome = apply_events(db, rt, participant, row, flow, state, _on_page(events), now)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    db.add(
        QuestionnaireLink(
            token_hash=token_hash(token),
            participant_id=participant.id,
            session_id=row.id,
            created_at=now,
            expires_at=expires,
        )
    )
    url = rt.settings.public_url.rstrip("/") + PATH + token
    text_id = queue_sms(
        db,
        rt,
        participant,
        LINK_KEY,
        now,
        variables={"url": url, "until": _until(expires, participant.timezone)},
        flow=flow.id,
        session_id=row.id,
        expires_at=expires,
        automated=automated,
    )
    outcome.outbox.append(text_id)
    return outcome


def asked_for_link(db: Session, rt: Runtime, participant: Participant, flow: engine.Flow, now: datetime) -> Outcome:
    """The participant answered a questionnaire's invitation with LINK: the same questions, on the page."""
    hours = settings_for(db, participant).questionnaire_expires_hours
    return send_link(db, rt, participant, flow, now, expires_after=timedelta(hours=hours), automated=False)


_sitting = table(FlowSession)
# Asked of every reply: built once.
_ON_PAGE = Prepared(
    sa.select(_sitting)
    .where(_sitting.c.participant_id == sa.bindparam("participant_id"), _sitting.c.status == SessionStatus.ON_PAGE)
    .limit(1)
)


def on_page(db: Session, participant_id: int) -> FlowSession | None:
    """The participant's sitting waiting on the page, if there is one."""
    return first_row(db, FlowSession, _ON_PAGE, {"participant_id": participant_id})


@dataclass(frozen=True)
class Open:
    link: QuestionnaireLink
    row: FlowSession
    participant: Participant


def find(db: Session, token: str, now: datetime, *, lock: bool = False) -> Open | None:
    """The sitting behind a token, only while it is waiting on the page and unexpired."""
    if not token or len(token) > 100:
        return None
    link = db.exec(select(QuestionnaireLink).where(QuestionnaireLink.token_hash == token_hash(token))).first()
    if link is None or link.ended_at is not None or link.expires_at is None or now >= link.expires_at:
        return None
    participant = lock_participant(db, link.participant_id) if lock else db.get(Participant, link.participant_id)
    row = db.get(FlowSession, link.session_id)
    if lock and row is not None:
        db.refresh(row)  # as it is now that this participant's lock is held
    if participant is None or participant.erased_at is not None or row is None or row.status != SessionStatus.ON_PAGE:
        return None
    return Open(link, row, participant)


@dataclass(frozen=True)
class Item:
    question: str
    number: int
    total: int
    stem: str
    text: str
    options: list[tuple[str, str]]
    attribution: str


def current_item(rt: Runtime, row: FlowSession) -> Item:
    flow = rt.flows.get(row.flow, row.flow_version)
    assert flow is not None and row.state.get("node")
    node = flow.nodes[str(row.state["node"])]
    assert node.ask is not None
    instrument = rt.flows.instruments[str(node.vars["instrument"])]
    scale = rt.flows.scales.get(instrument.scale, {})
    labels: list[str] = list(scale.get("labels", []))
    options = []
    for choice in node.ask.choices:
        if choice.value == SKIPPED:
            continue
        if choice.value.isdigit():
            n = int(choice.value)
            label = labels[n] if n < len(labels) else choice.value
        else:
            label = str(scale.get(f"{choice.value}_label", choice.value.replace("_", " ").capitalize()))
        options.append((choice.value, label))
    return Item(
        question=node.ask.name,
        number=int(node.vars["number"]),
        total=int(node.vars["total"]),
        stem=instrument.stem,
        text=str(node.vars["item"]),
        options=options,
        attribution=instrument.attribution,
    )


@dataclass
class Answered:
    outcome: Outcome
    ended: str | None = None  # the sitting's end reason, once it has ended
    crisis: bool = False  # signposting was sent and an urgent flag raised


def answer(db: Session, rt: Runtime, found: Open, value: str, now: datetime) -> Answered:
    """One answer from the page, bound to the item it answers, through the flow like a text."""
    row, participant = found.row, found.participant
    flow = rt.flows.get(row.flow, row.flow_version)
    assert flow is not None
    note_reply(db, participant, now)  # an answer on the page is as much a reply as a text
    item = current_item(rt, row)
    labels = dict(item.options) | {SKIPPED: "Skipped"}
    state, events = engine.resume(flow, row.state, engine.Reply(labels[value], choice=value), now)
    crisis = any(isinstance(e, engine.RaiseFlag) and e.severity == "urgent" for e in events)
    outcome = apply_events(db, rt, participant, row, flow, state, _on_page(events), now)
    ended = next((e.reason for e in events if isinstance(e, engine.Ended)), None)
    return Answered(outcome, ended, crisis)


def end(link: QuestionnaireLink, reason: str, now: datetime) -> None:
    link.ended_at, link.end_reason = now, reason


def signposting(db: Session, rt: Runtime, participant: Participant) -> str:
    """The crisis signposting as texted, for the page: the service's nation, no name."""
    variables: dict[str, Any] = participant_vars(db, participant) | {"first_name": ""}
    variables["nation"] = settings_for(db, participant).nation
    variables["on_page"] = True
    return render_for(rt, CRISIS_KEY, variables, participant.language)


def questionnaire_ended(
    db: Session, rt: Runtime, participant: Participant, row: FlowSession, flow: engine.Flow, now: datetime, *,
    on_page: bool,
) -> Outcome:  # fmt: skip
    """A run of a questionnaire ended: LINK sends the page's link; otherwise the results are
    recorded, and a sitting on the page (finished, paused or expired) ends its link."""
    if row.end_reason == engine.BY_LINK:
        return asked_for_link(db, rt, participant, flow, now)
    record_results(db, rt, participant, row, now)
    if on_page:
        link = db.exec(select(QuestionnaireLink).where(QuestionnaireLink.session_id == row.id)).first()
        if link is not None and link.ended_at is None:
            end(link, row.end_reason or "ended", now)
            db.add(link)
    return Outcome()


def questionnaire_finished(
    db: Session,
    rt: Runtime,
    participant: Participant,
    row: FlowSession,
    flow: engine.Flow,
    now: datetime,
    ended_from: str,
) -> Outcome:
    """Every questionnaire flow's `on_end` effect (see sessions.lifecycle)."""
    return questionnaire_ended(db, rt, participant, row, flow, now, on_page=ended_from == SessionStatus.ON_PAGE)
