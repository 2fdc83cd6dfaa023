"""What is open for one person: what a text from them might answer or end, read in one statement
before it is handled, and the query for their pending due rows of one kind.

A reply ends a missed-appointment follow-up under way and an open "not responding" flag; it may
answer a question the assistant asked back about their contact (how long a break, a new number's
code) or a recent campaign text that asked for a keyword. For nearly every text none of these is
open, so the router asks each concern only when its part is: one read instead of one per concern.
The statements each concern uses for its own part are defined here too, so both agree, with a
reply's own lookups: its last ended flow, when it was last answered, and whether the crisis
signposting went to them moments ago.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from assistant.db.driver import Prepared
from assistant.db.models import (
    Campaign,
    CampaignRecipient,
    ContactRequest,
    DueTask,
    Flag,
    FlagStatus,
    FlowSession,
    Message,
    Participant,
    RequestStatus,
    SessionStatus,
    TaskStatus,
    table,
)
from assistant.db.units import one_of

# The missed-appointment ladder's scheduled steps.
LADDER_TASKS = ("dna_attempt", "dna_unanswered")
# A campaign text is answered by its keyword within this long.
CAMPAIGN_REPLY_WITHIN = timedelta(days=14)
# Statuses of a question back that still waits for its answer.
WAITING_REQUESTS = (RequestStatus.ASKED, RequestStatus.CODE_SENT)

_duetask, _flag, _request = table(DueTask), table(Flag), table(ContactRequest)
_recipient, _campaign, _message = table(CampaignRecipient), table(Campaign), table(Message)
_PARTICIPANT: sa.BindParameter[int] = sa.bindparam("participant_id")

# Most people have no follow-up under way, so a bare id comes first.
LADDER_PENDING = (
    sa.select(_duetask.c.id)
    .where(
        _duetask.c.participant_id == _PARTICIPANT,
        one_of(_duetask.c.kind, LADDER_TASKS),
        _duetask.c.status == "pending",
    )
    .limit(1)
)

# The last campaign text this person got that asked for a reply keyword, sent since `since`.
RECENT_CAMPAIGN = (
    sa.select(
        _recipient.c.id.label("recipient_id"),
        _campaign.c.id.label("campaign_id"),
        _message.c.id.label("message_id"),
    )
    .select_from(_recipient)
    .join(_campaign, _campaign.c.id == _recipient.c.campaign_id)
    .join(_message, _message.c.id == _recipient.c.message_id)
    .where(
        _recipient.c.participant_id == _PARTICIPANT,
        _campaign.c.reply_keyword.is_not(None),
        _message.c.at > sa.bindparam("since", type_=_message.c.at.type),
    )
    .order_by(_message.c.id.desc())
    .limit(1)
)

# A flag of this kind that is still open (or acknowledged but not resolved).
OPEN_FLAG_ID = (
    sa.select(_flag.c.id)
    .where(
        _flag.c.participant_id == _PARTICIPANT,
        _flag.c.kind == sa.bindparam("kind"),
        one_of(_flag.c.status, (FlagStatus.OPEN, FlagStatus.ACKNOWLEDGED)),
    )
    .limit(1)
)

_REQUEST_WAITING = (
    sa.select(_request.c.id)
    .where(
        _request.c.participant_id == _PARTICIPANT,
        one_of(_request.c.status, WAITING_REQUESTS),
        _request.c.expires_at > sa.bindparam("now", type_=_request.c.expires_at.type),
    )
    .limit(1)
)


def pending_tasks(participant_id: int | None, *kinds: str) -> SelectOfScalar[DueTask]:
    """The query for one person's pending due rows of these kinds (by the person-and-status index)."""
    return select(DueTask).where(
        DueTask.participant_id == participant_id,
        col(DueTask.kind).in_(kinds),
        DueTask.status == TaskStatus.PENDING,
    )


_OPEN_ITEMS = Prepared(
    sa.select(
        LADDER_PENDING.exists().label("ladder"),
        _REQUEST_WAITING.exists().label("request"),
        RECENT_CAMPAIGN.exists().label("campaign"),
        OPEN_FLAG_ID.exists().label("not_responding"),
    )
)


@dataclass(frozen=True)
class OpenItems:
    """What is open for one person that their next text might answer or end."""

    ladder: bool = False  # a missed-appointment follow-up under way
    request: bool = False  # a question back about their contact waits for its answer
    campaign: bool = False  # a recent campaign text asked for a keyword
    not_responding: bool = False  # an open "not responding" flag


NOTHING_OPEN = OpenItems()


def open_items(db: Session, participant_id: int, now: datetime) -> OpenItems:
    row = _OPEN_ITEMS.run(
        db,
        {
            "participant_id": participant_id,
            "now": now,
            "since": now - CAMPAIGN_REPLY_WITHIN,
            "kind": "not_responding",
        },
    ).one()
    return OpenItems(bool(row.ladder), bool(row.request), bool(row.campaign), bool(row.not_responding))


# A reply's own questions, each built once: asked of nearly every free-text reply.
_session = table(FlowSession)
# Their last ended flow: a reply soon after a question timed out is a late answer to it.
LAST_ENDED = Prepared(
    sa.select(_session.c.id, _session.c.end_reason, _session.c.ended_at)
    .where(_session.c.participant_id == sa.bindparam("participant_id"), _session.c.status == SessionStatus.ENDED)
    .order_by(_session.c.id.desc())
    .limit(1)
)
# When a free text was last acknowledged, and what last went out to them.
LAST_ACK = Prepared(
    sa.select(_message.c.at)
    .where(
        _message.c.participant_id == sa.bindparam("participant_id"), _message.c.message_key == "common/free_text_ack"
    )
    .order_by(_message.c.id.desc())
    .limit(1)
)
LAST_OUT = Prepared(
    sa.select(_message.c.at, _message.c.message_key)
    .where(_message.c.participant_id == sa.bindparam("participant_id"), _message.c.direction == "out")
    .order_by(_message.c.id.desc())
    .limit(1)
)


# A run of crisis texts gets the signposting again at most this often (the flag gathers each one).
SIGNPOST_AGAIN_AFTER = timedelta(minutes=10)


def signposted_lately(db: Session, participant: Participant, now: datetime) -> bool:
    """The signposting went to the number they now text from within the last few minutes: a
    signposting sent to their old number before they moved to a new one does not count."""
    lately = db.exec(
        select(Message.id).where(
            Message.participant_id == participant.id,
            Message.phone == participant.phone,
            Message.direction == "out",
            Message.message_key == "common/crisis",
            col(Message.at) > now - SIGNPOST_AGAIN_AFTER,
        )
    ).first()
    return lately is not None
