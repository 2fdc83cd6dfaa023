"""Whether an automated contact may start now: one policy for the clock's contacts and for campaigns.

- Nothing automated goes to someone who opted out, cannot be reached, is paused or has not
  consented to texts (`blocked_by`); what happens to the contact then is the caller's rule.
- Quiet hours and bank holidays defer every automated contact, never drop it.
- Routine contact (check-ins, questionnaires, campaign texts and flows) waits while the
  participant has an urgent flag nobody has acknowledged: the next word they hear from the
  service should come from a person, not "How has your week been?". It is deferred, not
  dropped, and looks again every HOLD_RECHECK, so it goes soon after the flag is
  acknowledged (or, for a check-in held past its grace, the next one is planned). The same holds
  while their request in their own words to stop the texts is unacknowledged: nothing routine
  goes to someone who has just asked for less of it until a person has seen the request.
  Appointment reminders, missed-appointment follow-ups and the specialist's own texts are
  not routine: they still go.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from assistant.care.quiet import next_allowed
from assistant.contact.journey_state import support_ended
from assistant.db.driver import Prepared
from assistant.db.models import Flag, FlagStatus, Participant, table
from assistant.db.service_settings import settings_for
from assistant.db.units import among_param

# Contacts that wait while a crisis flag (or a request to stop) is open.
ROUTINE = frozenset({"checkin", "questionnaire", "campaign", "welcome", "sustainment", "gentle_followup"})
HOLD_RECHECK = timedelta(minutes=15)

_flag = table(Flag)


# A request to stop in their own words (conversation.router): held for like an urgent flag.
WANTS_TO_STOP = "wants_to_stop"


def _waiting_for_a_person(among_ids: Any) -> Any:
    return (
        sa.select(_flag.c.participant_id)
        .where(
            among_ids,
            sa.or_(_flag.c.severity == "urgent", _flag.c.kind == WANTS_TO_STOP),
            _flag.c.status == FlagStatus.OPEN,
        )
        .distinct()
    )


# Built once per database: the ids as one array on PostgreSQL (see db.units.among).
_WAITING_FOR_A_PERSON = {
    dialect: Prepared(_waiting_for_a_person(among_param(_flag.c.participant_id, "ids", dialect)))
    for dialect in ("sqlite", "postgresql")
}


def blocked_by(participant: Participant, now: datetime | None = None) -> str | None:
    """Why nothing automated may go to this participant at all, or None. Given `now`, support
    that has ended blocks too (see support_end.support_ended)."""

    if now is not None and support_ended(participant, now):
        return "support_ended"
    if participant.opted_out:
        return "opted_out"
    if participant.unreachable:
        return "unreachable"
    if participant.paused:
        return "paused"
    if not participant.sms_consent:
        return "no_consent"
    return None


def may_get_a_text_from_staff(participant: Participant) -> bool:
    """A text a specialist writes themselves (a one-off, a goodbye) goes unless the person opted
    out, cannot be reached or withdrew consent: a pause holds automated texts only."""
    return blocked_by(participant) in (None, "paused")


def held_for_a_person(db: Session, participant_ids: Collection[int], kind: str) -> set[int]:
    """Of these participants, those a contact of this kind must wait for: routine contact while
    an urgent flag or a request to stop is unacknowledged. One query for a whole campaign batch."""
    if kind not in ROUTINE or not participant_ids:
        return set()
    query = _WAITING_FOR_A_PERSON[db.get_bind().dialect.name]
    return set(query.run(db, {"ids": list(participant_ids)}).scalars())


def wait_until(db: Session, participant: Participant, kind: str, now: datetime) -> datetime | None:
    """When to try this contact again if it may not start now, else None."""
    assert participant.id is not None
    if held_for_a_person(db, [participant.id], kind):
        return now + HOLD_RECHECK
    allowed = next_allowed(now, participant, settings_for(db, participant))
    return allowed if allowed > now else None
