"""What a flag card shows beyond the flag: the texts that raised it and what the assistant did about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlmodel import Session, col, select

from assistant.db.models import Flag, Message, MessageStatus

SIGNPOSTING = "common/crisis"
SHOWN_TEXTS = 3  # the text that raised a flag and the latest ones; the record has the rest


@dataclass
class Card:
    texts: list[Message] = field(default_factory=list)  # the participant's own words, newest last
    did: str = ""  # what the assistant did, in words
    more: int = 0  # texts behind the flag not shown on the card


def _message_ids(flag: Flag) -> tuple[list[int], int]:
    """The texts to show, oldest first, and how many more there are: always the one that raised
    the flag (a crisis text must never scroll out of sight behind later ones), then the latest."""
    found = [e.get("message_id") for e in flag.evidence if isinstance(e, dict)]
    ids = [i for i in found if isinstance(i, int)]
    if len(ids) <= SHOWN_TEXTS:
        return ids, 0
    shown = [ids[0], *ids[-(SHOWN_TEXTS - 1) :]]
    return shown, len(ids) - len(shown)


def _signposting_words(sent: list[Message], flag: Flag) -> str:
    if not sent:
        if flag.kind != "crisis":
            return ""
        return "No new signposting text: it had been sent to them shortly before."
    latest = sent[-1]
    if latest.status in (MessageStatus.SENT, MessageStatus.DELIVERED):
        return f"Crisis signposting {latest.status}."
    if latest.status == MessageStatus.QUEUED:
        return "Crisis signposting queued: it goes as soon as the text service takes it."
    reason = latest.error_message or latest.error_code or latest.status
    return f"Crisis signposting could not be sent ({reason}). Call them."


def flag_cards(db: Session, flags: list[Flag]) -> dict[int, Card]:
    """Cards for flags the reader may already see (their participants are in reach)."""
    wanted = {i for f in flags for i in _message_ids(f)[0]}
    texts = {m.id: m for m in db.exec(select(Message).where(col(Message.id).in_(wanted))).all()} if wanted else {}
    urgent = [f for f in flags if f.kind == "crisis"]
    signposts: dict[int, list[Message]] = {}
    if urgent:
        rows = db.exec(
            select(Message)
            .where(
                col(Message.participant_id).in_({f.participant_id for f in urgent}),
                Message.message_key == SIGNPOSTING,
            )
            .order_by(col(Message.at))
        ).all()
        for row in rows:
            signposts.setdefault(row.participant_id or 0, []).append(row)
    cards: dict[int, Card] = {}
    for flag in flags:
        assert flag.id is not None
        shown, more = _message_ids(flag)
        card = Card(texts=[texts[i] for i in shown if i in texts], more=more)
        if flag.kind == "crisis":
            since = flag.created_at - timedelta(minutes=1) if flag.created_at else None
            sent = [m for m in signposts.get(flag.participant_id, []) if since is None or (m.at and m.at >= since)]
            card.did = _signposting_words(sent, flag)
        cards[flag.id] = card
    return cards
