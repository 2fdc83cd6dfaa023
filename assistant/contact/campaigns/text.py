"""Campaign wording: ready-made texts, merge fields and the checks a text must pass before it is sent."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from assistant import engine
from assistant.care.notify import has_left
from assistant.contact.appointments import day_and_time
from assistant.content.library import with_capital_signature
from assistant.content.wording import lock_screen_words, pressure_phrases
from assistant.db.models import (
    Appointment,
    Participant,
    Specialist,
)
from assistant.db.units import among
from assistant.outbox.writer import specialist_first_name

MERGE = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
ANY_BRACES = re.compile(r"\{[{%#]|[}%#]\}")
MERGE_FIELDS = ("first_name", "specialist_name", "appointment_time")


class CampaignError(ValueError):
    """A campaign refused before anything is queued, with the reason."""


def templates(messages_dir: Path, locale: str = "en-GB") -> dict[str, str]:
    """Ready-made campaign texts from messages/<locale>/campaign/, by name: a starting point to edit."""
    return {
        path.stem: path.read_text(encoding="utf-8").strip()
        for path in sorted((messages_dir / locale / "campaign").glob("*.txt"))
    }


def template_text(messages_dir: Path, name: str) -> str:
    """One ready-made text by name; refused, naming those there are, if there is none by that name."""
    found = templates(messages_dir)
    if name not in found:
        raise CampaignError(f"no campaign template {name!r}: there are {', '.join(found) or 'none'}")
    return found[name]


def render(text: str, values: dict[str, Any]) -> str:
    """Fill {{ merge fields }}: plain substitution, never template code."""
    return with_capital_signature(MERGE.sub(lambda m: str(values[m.group(1)]), text))


def check_text(text: str, limit: int) -> list[str]:
    """What is wrong with a campaign text, in plain words: nothing, or each problem once."""
    problems = []
    if not text.strip():
        problems.append("the message is empty")
    unknown = sorted({m for m in MERGE.findall(text) if m not in MERGE_FIELDS})
    if unknown:
        problems.append(f"unknown merge field(s) {unknown}: use {', '.join(MERGE_FIELDS)}")
    if ANY_BRACES.search(MERGE.sub("", text)):
        problems.append("only {{ first_name }}-style merge fields are allowed, no other template code")
    sample = (
        render(
            MERGE.sub(lambda m: "{{ " + m.group(1) + " }}" if m.group(1) in MERGE_FIELDS else "", text),
            {
                "first_name": "Christabella",
                "specialist_name": "Maximilianus",
                "appointment_time": "Wed 25 Nov at 10:30",
            },
        )
        if not unknown
        else text
    )
    if engine.segment_count(sample) > limit:
        problems.append(f"the message takes {engine.segment_count(sample)} segments; the service allows {limit}")
    # A campaign reaches many phones at once: nothing that gives away the service on a lock
    # screen, and nothing that reads like compliance or pressure.
    if words := lock_screen_words(sample):
        problems.append(f"it mentions {', '.join(words)}, which would show on lock screens")
    if phrases := pressure_phrases(sample):
        quoted = ", ".join(f"'{p}'" for p in phrases)
        problems.append(f"{quoted} reads like pressure; taking part is voluntary")
    return problems


def for_text(text: str, audience: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A text naming {{ appointment_time }} goes only to people with an appointment coming up:
    "we're meeting on your next appointment" would make no sense to anyone else."""
    if "appointment_time" in MERGE.findall(text) and not {"appointment_from", "appointment_to"} & set(audience):
        return {**audience, "appointment_from": now.isoformat()}
    return audience


def merge_values(db: Session, participant: Participant, now: datetime) -> dict[str, Any]:
    """One person's merge fields, as queueing fills them."""
    assert participant.id is not None
    specialist = db.get(Specialist, participant.specialist_id)
    if specialist is not None and has_left(db, specialist):
        specialist = None  # a text is never signed by someone who has left
    return merge_fields(
        participant.first_name,
        participant.timezone,
        specialist,
        next_appointments(db, [participant.id], now).get(participant.id),
    )


def next_appointments(db: Session, participant_ids: list[int], now: datetime) -> dict[int, datetime]:
    """Each of these participants' next appointment still to come, for {{ appointment_time }}."""
    found: dict[int, datetime] = {}
    for participant_id, starts_at in db.execute(
        sa.select(col(Appointment.participant_id), col(Appointment.starts_at))
        .where(
            among(db, Appointment.participant_id, participant_ids),
            col(Appointment.outcome).is_(None),
            col(Appointment.starts_at) > now,
        )
        .order_by(col(Appointment.starts_at))
    ).all():
        found.setdefault(participant_id, starts_at)
    return found


def merge_fields(
    first_name: str, timezone: str, specialist: Specialist | None, appointment: datetime | None
) -> dict[str, Any]:
    """The merge fields' values for one person, from the columns queueing reads."""
    return {
        "first_name": first_name,
        "specialist_name": specialist_first_name(specialist),
        "appointment_time": day_and_time(appointment, timezone) if appointment else "your next appointment",
    }
