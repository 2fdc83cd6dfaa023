"""Keeping each participant's reply rhythm per text, and noticing a silence unusual for them.

`note_ask` when a check-in (or the gentle follow-up) goes, `note_reply` on every text from them:
each is one row read and written, so the numbers stay current without reading any history.
`rhythm_sweep` runs on the clock: for people with texts unanswered, it asks engine.rhythm how
unusual the silence is for them; past FOLLOW_UP_BELOW a gentle follow-up is planned (once per
silence), past FLAG_BELOW their specialist gets "not responding" with the reason in words. The
fixed rules (rules.after_checkin_answer's count of check-ins, rules.silence_sweep's days) stay
underneath as the ceiling for everyone: the rhythm can only tell sooner. A silence that needs
nothing yet keeps the moment it next can (`look_at`, set when it begins), so a tick reads only the
silences due a look, through that column's index: not every person on the caseload.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from assistant.care.flags import raise_flag
from assistant.db.driver import Prepared
from assistant.db.models import DueTask, Flag, Participant, ReplyRhythm, SilenceNote, table
from assistant.db.rows import expire_loaded, get_row
from assistant.db.service_settings import ServiceSettings, all_services, settings_for
from assistant.db.units import INSERT_OR, participant_unit, transaction
from assistant.engine import rhythm as estimate

FOLLOW_UP = "gentle_followup"
# How long before the days-of-silence ceiling a gentle follow-up goes, if none has yet.
CEILING_NOTICE = timedelta(days=4)


def silence_days_for(settings: ServiceSettings, checkin_every_weeks: int) -> int:
    """The days-of-silence ceiling: the service's D, but never less than their check-in cadence
    and a week's grace (someone asked monthly is not silent at day 21)."""
    return max(settings.not_responding_days, 7 * checkin_every_weeks + 7)


def silent_since(person: Any) -> datetime:
    """Where a silence is counted from: their last text, or when they joined. Every rule's
    "not responding" carries it (as `silent_since`), so each silence is told once."""
    since = person.last_inbound_at or person.created_at
    assert since is not None  # every participant row has its created_at
    return since  # type: ignore[no-any-return]


# Support that has ended is nobody's silence to chase (a day's margin for time zones): a filter for
# both silence rules' candidate queries, with `support_cutoff(now)` as its "today".
STILL_SUPPORTED = sa.or_(
    table(Participant).c.support_ends_on.is_(None), table(Participant).c.support_ends_on >= sa.bindparam("today")
)


def support_cutoff(now: datetime) -> date:
    return (now - timedelta(days=1)).date()


def rhythm_on(settings: ServiceSettings) -> bool:
    return "not_responding" not in settings.rules_off and "reply_rhythm" not in settings.rules_off


def as_rhythm(row: ReplyRhythm | sa.Row[tuple[object, ...]] | None, cohort: str) -> estimate.Rhythm:
    if row is None:
        return estimate.Rhythm(cohort=cohort)
    return estimate.Rhythm(
        asks=row.asks,
        answered=row.answered,
        log_hours_sum=row.log_hours_sum,
        log_hours_sq=row.log_hours_sq,
        pending=row.pending,
        cohort=cohort,
    )


def rhythm_of(db: Session, participant: Participant) -> tuple[estimate.Rhythm, ReplyRhythm | None]:
    row = get_row(db, ReplyRhythm, participant.id)
    return as_rhythm(row, participant.cohort), row


def note_ask(db: Session, participant: Participant, now: datetime) -> None:
    """A text that asks for an answer went: one more ask, and one more pending. One statement
    (their row made or counted on); the session's copy, if it has one, is read afresh where used."""
    assert participant.id is not None
    look = now + estimate.EARLIEST  # no silence is judged sooner: the sweep first reads it then
    _ASKED[db.get_bind().dialect.name].run(db, {"participant_id": participant.id, "now": now, "look": look})
    expire_loaded(db, ReplyRhythm, participant.id)


def told(db: Session, participant: Participant) -> bool:
    """Whether their specialist has been told of the silence under way (by either rule)."""
    row = get_row(db, ReplyRhythm, participant.id)
    return row is not None and row.pending > 0 and row.noted == SilenceNote.FLAGGED


def mark_told(db: Session, participant: Participant) -> None:
    """The fixed count of check-ins told of this silence: the rhythm does not tell it again."""
    row = get_row(db, ReplyRhythm, participant.id)
    if row is not None and row.pending > 0:
        row.noted = SilenceNote.FLAGGED
        row.look_at = None  # told: nothing more to judge until they reply or are asked again
        db.add(row)


def note_reply(db: Session, participant: Participant, now: datetime) -> None:
    """A text from them: the last ask is answered, with how long it took, and the silence is over.
    Read and written as rows (it runs on every text): the session's own copy, if it has one, is
    written out first by the read and then expired, so it is read afresh where it is used later."""
    row = _PENDING_RHYTHM.run(db, {"participant_id": participant.id}).first()
    if row is None:
        return
    after = now - row.last_ask_at if row.last_ask_at else None
    kept = estimate.after_reply(as_rhythm(row, participant.cohort), after)
    _REPLIED.run(
        db,
        {"b_id": participant.id, "b_answered": kept.answered, "b_sum": kept.log_hours_sum, "b_sq": kept.log_hours_sq},
    )
    expire_loaded(db, ReplyRhythm, participant.id)


_rhythm, _participant, _task, _flag = table(ReplyRhythm), table(Participant), table(DueTask), table(Flag)
_PENDING_RHYTHM = Prepared(
    sa.select(_rhythm).where(_rhythm.c.participant_id == sa.bindparam("participant_id"), _rhythm.c.pending > 0)
)
_REPLIED = Prepared(
    _rhythm.update()
    .where(_rhythm.c.participant_id == sa.bindparam("b_id"))
    .values(
        answered=sa.bindparam("b_answered"),
        log_hours_sum=sa.bindparam("b_sum"),
        log_hours_sq=sa.bindparam("b_sq"),
        pending=0,
        first_pending_at=None,
        noted=SilenceNote.NOTHING_YET,
        look_at=None,
    )
)


def _asked(insert: Callable[[sa.Table], Any]) -> Prepared:
    now = sa.bindparam("now", type_=_rhythm.c.last_ask_at.type)
    look = sa.bindparam("look", type_=_rhythm.c.look_at.type)
    begins = _rhythm.c.pending == 0  # a new silence begins: nothing has been done about it yet
    return Prepared(
        insert(_rhythm)
        .values(
            participant_id=sa.bindparam("participant_id"),
            asks=1,
            answered=0,
            log_hours_sum=0.0,
            log_hours_sq=0.0,
            pending=1,
            first_pending_at=now,
            noted=SilenceNote.NOTHING_YET,
            last_ask_at=now,
            look_at=look,
        )
        .on_conflict_do_update(
            index_elements=[_rhythm.c.participant_id],
            set_={
                "asks": _rhythm.c.asks + 1,
                "pending": _rhythm.c.pending + 1,
                "first_pending_at": sa.case((begins, now), else_=_rhythm.c.first_pending_at),
                "noted": sa.case((begins, SilenceNote.NOTHING_YET), else_=_rhythm.c.noted),
                "last_ask_at": now,
                # Judged afresh a day on; a silence told of stays told of until they reply.
                "look_at": sa.case((sa.and_(~begins, _rhythm.c.noted == SilenceNote.FLAGGED), sa.null()), else_=look),
            },
        )
    )


# Built once per database: each spells "insert, or else count on" its own way.
_ASKED = {name: _asked(insert) for name, insert in INSERT_OR.items()}
# People whose silence is due a look (texts unanswered, nobody told of it yet), in every service.
# Found through the index on `look_at` alone: a silence gets the moment it next needs judging when
# it begins and each time it is judged, and a silence told of, or over, has none. (Given a service
# or the day's cut-off to search by, SQLite would read every person of the service instead.)
_QUIET = Prepared(
    sa.select(
        _rhythm,
        _participant.c.service_id,
        _participant.c.cohort,
        _participant.c.last_inbound_at,
        _participant.c.created_at,
        _participant.c.checkin_every_weeks,
    )
    .join(_participant, _participant.c.id == _rhythm.c.participant_id)
    .where(
        _rhythm.c.pending > 0,
        _rhythm.c.noted != SilenceNote.FLAGGED,
        _participant.c.opted_out.is_(False),
        _participant.c.paused.is_(False),
        _participant.c.unreachable.is_(False),
        STILL_SUPPORTED,
        _rhythm.c.look_at <= sa.bindparam("now", type_=_rhythm.c.look_at.type),
    )
)
# A silence judged and found to need nothing yet: when to look again. Only if nothing changed it
# meanwhile (a text from them, another ask), which sets its own.
_LOOK_LATER = (
    _rhythm.update()
    .where(
        _rhythm.c.participant_id == sa.bindparam("person"),
        _rhythm.c.pending == sa.bindparam("was_pending"),
        _rhythm.c.last_ask_at == sa.bindparam("was_asked", type_=_rhythm.c.last_ask_at.type),
    )
    .values(look_at=sa.bindparam("look", type_=_rhythm.c.look_at.type))
)
# Looked at again at least this often, so what changes it without touching its row (the service's
# days of silence, the person's cadence) is seen within this long.
LOOK_AGAIN_WITHIN = timedelta(hours=6)


# Every "not responding" they have had, resolved ones too: a specialist who closed it has heard.
_TOLD = Prepared(
    sa.select(_flag.c.evidence).where(
        _flag.c.participant_id == sa.bindparam("participant_id"), _flag.c.kind == "not_responding"
    )
)


def _said_before(db: Session, participant_id: int, since: str) -> bool:
    """Whether any "not responding" (resolved ones too) already told of this silence."""
    rows = _TOLD.run(db, {"participant_id": participant_id}).scalars()
    return any(e.get("silent_since") == since for ev in rows for e in ev)


def rhythm_sweep(engine: sa.Engine, now: datetime, *, participant_id: int | None = None) -> int:
    """Follow up, or tell the specialist, where a silence is unusual for that person. The
    silences due a look are read in one query; those that need nothing yet are given their next
    moment, and each one acted on is judged again in its own unit of work under the participant's
    lock, so a reply that lands meanwhile wins."""
    raised = 0
    # Read outside any unit of work (no writer's turn): on most ticks no silence is due a look.
    quiet = _QUIET.read(engine, {"now": now, "today": support_cutoff(now)}).all()
    if participant_id is not None:
        quiet = [row for row in quiet if row.participant_id == participant_id]
    if not quiet:
        return 0
    with transaction(engine) as db:
        due = _silences_to_act_on(db, now, quiet)
    for person_id, first_pending_at in due:
        with participant_unit(engine, person_id) as (db, participant):
            row = get_row(db, ReplyRhythm, person_id)
            if participant is None or row is None or row.pending == 0 or row.first_pending_at != first_pending_at:
                continue  # they replied meanwhile: a new silence is judged afresh
            settings = settings_for(db, participant)
            raised += _act(db, settings, participant, row, now)
            told_now = row.noted == SilenceNote.FLAGGED
            row.look_at = None if told_now else next_look(settings, Silence.of(row, participant), now)
            db.add(row)
    return raised


def _silences_to_act_on(db: Session, now: datetime, quiet_rows: list[Any]) -> list[tuple[int, datetime | None]]:
    """Of the silences due a look (`_QUIET`'s rows), those that call for something now (who, and
    since when); each of the others is given the moment it next needs a look, unless it changed since."""
    due: list[tuple[int, datetime | None]] = []
    later: list[dict[str, object]] = []
    services = all_services(db)
    for quiet in quiet_rows:
        settings = services.get(quiet.service_id)
        silence = Silence.of(quiet)
        if quiet.last_ask_at > now - estimate.EARLIEST:  # never judged sooner (set so since 0025)
            look = quiet.last_ask_at + estimate.EARLIEST
        elif settings is None or not rhythm_on(settings):
            look = now + LOOK_AGAIN_WITHIN  # the rule is off for their service: seen soon if it comes on
        elif _action(settings, silence, now):
            due.append((quiet.participant_id, quiet.first_pending_at))
            continue
        else:
            look = next_look(settings, silence, now)
        later.append(
            {"person": quiet.participant_id, "was_pending": quiet.pending, "was_asked": quiet.last_ask_at, "look": look}
        )
    if later:
        db.execute(_LOOK_LATER, later)
    return due


def next_look(settings: ServiceSettings, silence: Silence, now: datetime) -> datetime:
    """When a silence that needs nothing now next needs judging: the moment its chance falls below
    a level that acts, or its follow-up before the days-of-silence ceiling, or LOOK_AGAIN_WITHIN."""
    horizon = now + LOOK_AGAIN_WITHIN
    moments = [horizon]
    levels = [estimate.FLAG_BELOW] if silence.noted != SilenceNote.FLAGGED else []
    if silence.noted == SilenceNote.NOTHING_YET:
        levels.append(estimate.FOLLOW_UP_BELOW)
        ceiling = silence.silent_since + timedelta(days=silence_days_for(settings, silence.checkin_every_weeks))
        moments.append(ceiling - CEILING_NOTICE)
    for level in levels:
        below = estimate.first_moment_below(silence.rhythm, silence.first_ask, silence.last_ask, level, now, horizon)
        if below is not None:
            moments.append(below)
    return max(min(moments), now, silence.last_ask + estimate.EARLIEST)


@dataclass(frozen=True)
class Silence:
    """One person's silence under way, as the rules read it."""

    rhythm: estimate.Rhythm
    first_ask: datetime
    last_ask: datetime
    silent_since: datetime  # their last text, or when they joined
    checkin_every_weeks: int
    noted: str

    @classmethod
    def of(cls, row: Any, participant: Participant | None = None) -> Silence:
        """From a _QUIET row, or from a locked ReplyRhythm row and its participant."""
        person = participant or row
        return cls(
            rhythm=as_rhythm(row, person.cohort),
            first_ask=row.first_pending_at or row.last_ask_at,
            last_ask=row.last_ask_at,
            silent_since=silent_since(person),
            checkin_every_weeks=person.checkin_every_weeks,
            noted=row.noted,
        )

    def chance(self, now: datetime) -> float:
        return estimate.chance_of_silence(self.rhythm, self.first_ask, self.last_ask, now)


def _action(settings: ServiceSettings, silence: Silence, now: datetime) -> str | None:
    """What this silence calls for now: "flag", "follow_up", or nothing."""
    chance = silence.chance(now)
    if chance < estimate.FLAG_BELOW and silence.noted != SilenceNote.FLAGGED:
        return "flag"
    # Before the days-of-silence ceiling tells their specialist, one gentle text: people asked
    # rarely (a month apart, in work) would otherwise hear nothing between the check-in they
    # missed and the flag.
    ceiling = silence.silent_since + timedelta(days=silence_days_for(settings, silence.checkin_every_weeks))
    if silence.noted == SilenceNote.NOTHING_YET and (
        chance < estimate.FOLLOW_UP_BELOW or now >= ceiling - CEILING_NOTICE
    ):
        return "follow_up"
    return None


def _act(db: Session, settings: ServiceSettings, participant: Participant, row: ReplyRhythm, now: datetime) -> int:
    silence = Silence.of(row, participant)
    action = _action(settings, silence, now)
    if action == "follow_up":
        payload = {"first_pending_at": silence.first_ask.isoformat()}
        db.add(DueTask(participant_id=row.participant_id, kind=FOLLOW_UP, due_at=now, created_at=now, payload=payload))
        row.noted = SilenceNote.FOLLOWED_UP
        db.add(row)
        return 0
    if action != "flag":
        return 0
    row.noted = SilenceNote.FLAGGED
    db.add(row)
    since = silence.silent_since.isoformat()
    if _said_before(db, row.participant_id, since):
        return 0
    raise_flag(
        db,
        participant,
        kind="not_responding",
        severity="action",
        reason=estimate.reason(silence.rhythm, silence.first_ask, now),
        now=now,
        # Every rule's key: one silence is told once, whichever rule saw it first.
        evidence={"silent_since": since, "chance": round(silence.chance(now), 4)},
    )
    return 1
