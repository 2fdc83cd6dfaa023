"""What the urgent flag of a crisis text says, and when the signposting may go again."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from assistant.db.models import Message, Participant

CRISIS_REASON = "Sent a message that reads like a crisis: please contact them today"
DANGER_FROM_OTHERS = (
    "Says someone is threatening or hurting them: please contact them today, with care "
    "(the person may be with them or read their phone)"
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
