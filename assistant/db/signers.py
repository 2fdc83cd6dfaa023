"""Who signs a participant's texts: their specialist's name, email and whether they have left, read
with the participant's lock (or by one statement) and kept for the rest of the transaction."""

from __future__ import annotations

from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlmodel import Session

from assistant.db.driver import Prepared
from assistant.db.models import Participant, Specialist, specialist_has_left, table


class Signer(NamedTuple):
    name: str
    email: str
    left: bool


_KEPT = "specialists_signing"  # in the session's info, which lives as long as the transaction
_participant, _specialist = table(Participant), table(Specialist)

# Columns the participant's locked read carries (outer-joined to `SIGNER_JOIN`): a unit about
# someone nearly always writes them a text, which is signed, so the signer costs no statement of its own.
SIGNER_COLUMNS = (
    _specialist.c.name.label("signer_name"),
    _specialist.c.email.label("signer_email"),
    specialist_has_left(_specialist.c.id).label("signer_left"),
)
SIGNER_JOIN = _participant.outerjoin(_specialist, _specialist.c.id == _participant.c.specialist_id)

# The same columns on their own, for a unit that has not locked the person.
_SIGNER = Prepared(sa.select(*SIGNER_COLUMNS).where(_specialist.c.id == sa.bindparam("id")))


def _as_signer(name: str | None, email: str, left: Any) -> Signer | None:
    return None if name is None else Signer(name, email, bool(left))  # no name: no such specialist


def keep_signer(db: Session, values: dict[str, Any]) -> None:
    """Take `SIGNER_COLUMNS` out of a participant's row (`values`), kept for `signer`."""
    found = _as_signer(values.pop("signer_name"), values.pop("signer_email"), values.pop("signer_left"))
    specialist_id = values.get("specialist_id")
    if specialist_id is not None:
        kept: dict[int, Signer | None] = db.info.setdefault(_KEPT, {})
        kept.setdefault(specialist_id, found)


def signer(db: Session, specialist_id: int) -> Signer | None:
    """The specialist's signing details as this transaction first read them; None if there is no
    such specialist. Read without flushing: the session's unwritten changes cannot touch them (the
    caller looks at the session's own copy of the specialist first)."""
    kept: dict[int, Signer | None] = db.info.setdefault(_KEPT, {})
    if specialist_id not in kept:
        row = _SIGNER.run(db, {"id": specialist_id}, flush=False).first()
        kept[specialist_id] = None if row is None else _as_signer(*row)
    return kept[specialist_id]
