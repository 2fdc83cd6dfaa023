"""The outbox's statements, built once: a text read with what decides whether it may go, and the
changes of its status as it is claimed, held, withheld, sent or released (`assistant.sending`)."""

from __future__ import annotations

import sqlalchemy as sa

from assistant.db.driver import Prepared
from assistant.db.models import Message, MessageStatus, Participant, StatusEvent, table

_message, _participant, _status_event = table(Message), table(Participant), table(StatusEvent)

# The message and what decides whether it may go, in one statement; only the message row is locked.
_CLAIM = (
    sa.select(
        _message.c.id,
        _message.c.status,
        _message.c.phone,
        _message.c.body,
        _message.c.segments,
        _message.c.message_key,
        _message.c.at,
        _message.c.expires_at,
        _message.c.automated,
        _message.c.participant_id,
        _participant.c.opted_out,
        _participant.c.unreachable,
        _participant.c.last_inbound_at,
        _participant.c.sms_consent,
        _participant.c.service_id,
        _participant.c.timezone,
        _participant.c.allowed_from,
        _participant.c.allowed_until,
        _participant.c.contact_windows,
    )
    .select_from(_message.outerjoin(_participant, _participant.c.id == _message.c.participant_id))
    .where(_message.c.id == sa.bindparam("id"))
)
CLAIM_BY = {"sqlite": Prepared(_CLAIM), "postgresql": Prepared(_CLAIM.with_for_update(skip_locked=True, of=_message))}
_UPDATE = _message.update().where(_message.c.id == sa.bindparam("message_id"))
WITHHOLD = Prepared(_UPDATE.values(status=sa.bindparam("new_status"), error_message=sa.bindparam("reason")))
HOLD_UNTIL = Prepared(_UPDATE.values(next_attempt_at=sa.bindparam("until", type_=_message.c.next_attempt_at.type)))
SENDING = Prepared(
    _UPDATE.values(
        status=MessageStatus.SENDING,
        claimed_at=sa.bindparam("moment", type_=_message.c.claimed_at.type),
        attempts=_message.c.attempts + 1,
    )
)
# Recorded as sent, and in the same statement whether a status callback for its sid came first
# (before we knew the sid): those wait to be applied now.
SENT = Prepared(
    _UPDATE.values(
        status=MessageStatus.SENT,
        provider_sid=sa.bindparam("sid"),
        sent_at=sa.bindparam("moment", type_=_message.c.sent_at.type),
    ).returning(
        sa.exists()
        .where(_status_event.c.provider_sid == sa.bindparam("sid"), _status_event.c.applied.is_(False))
        .label("callback_first")
    )
)
# Undoes `SENDING` for a claim that was never handed to the provider.
RELEASE = (
    _message.update()
    .where(_message.c.id.in_(sa.bindparam("ids", expanding=True)), _message.c.status == MessageStatus.SENDING)
    .values(status=MessageStatus.QUEUED, claimed_at=None, attempts=_message.c.attempts - 1)
)
