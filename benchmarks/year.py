"""A year of a Greater Manchester-sized service, driven through the real code with an injected clock.

    .venv/bin/python benchmarks/year.py                                   # 1,500 people, 60 specialists, 52 weeks
    .venv/bin/python benchmarks/year.py --quick                           # the same people, 13 weeks
    .venv/bin/python benchmarks/year.py --participants 10000 --specialists 400

What it does (see benchmarks/README.md):
  1. Makes a throwaway SQLite database (`db.upgrade`, as `assistant db-upgrade`) and
     loads a generated caseload with the real CSV importer; DNA-prone people's
     fortnightly appointments go in with the real appointment importer.
  2. Moves a FixedClock through the year. The scheduler's `tick(rt, now)` runs
     whenever a row falls due (a check-in, a wait ending, a reminder, a follow-up,
     a queued text), at least once every simulated hour, and every 10 s (the
     production interval) while a batch is still due.
  3. Each participant's phone gets the texts the scheduler sends (a recording
     transport) and answers as its group would, through the inbound path the
     webhook uses (`receive_sms`, then the post-commit dispatcher). Specialists
     record appointment outcomes at 17:00 with the appointment importer.
  4. Measures from the database: days from a drifter's last text to their first
     "not responding" (or "unable to contact") flag, "not responding" flags on
     steady repliers per specialist per week, and the run's cost.

Reply patterns (seeded), each person with their own answer rate and pace:
steady (answer most check-ins within hours), habitually slow (a day or more later),
bursty (answer in runs, then miss a week or two), shift workers (after their shift, any
hour), holidays (steady, away a week or two once or twice a year), a bad fortnight
(steady, two weeks of silence that end), people in work (less often, in the evening),
DNA-prone (miss appointments, answer some follow-ups), and drifters: people of any of
the first five patterns who stop for good at a random week. A gentle follow-up text is
answered the way the person answers a check-in. The aims are those of the default size
over a year; `--fixed-rule` runs the same year with each person's rhythm turned off.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import heapq
import io
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from assistant.care.quiet import is_bank_holiday
from assistant.clock import FixedClock
from assistant.config import Settings
from assistant.conversation.inbound import receive_sms
from assistant.db.driver import Prepared
from assistant.db.models import (
    CampaignRecipient,
    DueTask,
    Flag,
    FlowSession,
    Message,
    Notification,
    Participant,
    Service,
    table,
)
from assistant.db.service_settings import ServiceSettings
from assistant.db.units import among_param, transaction, upgrade
from assistant.imports.appointments import import_appointments
from assistant.imports.caseload import import_caseload
from assistant.jobs import tick as scheduler
from assistant.runtime import Runtime, build_runtime, settle_process
from assistant.sending.dispatch import Dispatcher
from assistant.timing import DAYS, parse_hhmm
from assistant.transports import SendResult

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import Phase, Timer, describe_code, own_cpu_seconds, transaction_baseline

LONDON = "Europe/London"
ZONE = ZoneInfo(LONDON)
# A Monday; the year runs from midnight London time.
DEFAULT_START = datetime(2027, 1, 4, tzinfo=ZONE).astimezone(UTC)
SERVICE = "gm"
AIM_MEDIAN_DAYS = 10.0
AIM_P90_DAYS = 14.0
AIM_FALSE_FLAGS = 0.2
AIM_WALL_SECONDS = 300.0
GROUP_SHARES = (
    ("steady", 0.20),
    ("slow", 0.08),
    ("bursty", 0.07),
    ("shift", 0.07),
    ("holiday", 0.08),
    ("bad_fortnight", 0.05),
    ("in_work", 0.20),
    ("dna_prone", 0.10),
    ("drifter", 0.15),
)
# What a drifter was like before they stopped.
DRIFTER_PATTERNS = ("steady", "slow", "bursty", "shift", "in_work")
# Groups that answer like a steady replier when they are there at all.
STEADY_LIKE = {"steady", "holiday", "bad_fortnight"}
OOW_TIMES = ("09:30", "10:00", "10:30", "11:00", "11:30", "13:30", "14:00", "15:00")
IW_TIMES = ("12:30", "18:00", "18:30", "19:00")
DISENGAGED = ("not_responding", "unable_to_contact")


@dataclass(frozen=True)
class Config:
    participants: int = 1500
    specialists: int = 60
    weeks: int = 52
    seed: int = 1
    miss_rate: float = 0.10  # steady-like people miss about this share of check-ins (each their own)
    start: datetime = DEFAULT_START
    fixed_rule: bool = False  # the service turns each person's rhythm off: the fixed count of check-ins


@dataclass
class Person:
    index: int
    external_id: str
    phone: str
    group: str
    specialist: int
    cohort: str
    checkin_day: int
    checkin_time: str
    drift_week: int | None = None  # drifters answer nothing from this week of the run on
    appointments: list[tuple[str, datetime, bool]] = field(default_factory=list)  # (id, starts_at, missed)
    pattern: str = ""  # how they answer: their group, or what a drifter was like before they stopped
    miss: float = 0.1  # their own share of texts left unanswered while they are there
    away: list[tuple[int, int]] = field(default_factory=list)  # (first, last) weeks with no answers at all
    checkins_seen: int = 0
    db_id: int = 0

    def rng(self, seed: int, what: str, n: int) -> random.Random:
        """One decision's own random stream: the same plan whatever order events run in."""
        return random.Random(f"{seed}/{self.index}/{what}/{n}")


def plan(config: Config) -> list[Person]:
    """The caseload and everyone's behaviour, from the seed alone."""
    rng = random.Random(config.seed)
    n = config.participants
    groups: list[str] = []
    for name, share in GROUP_SHARES:
        groups += [name] * round(n * share)
    groups = (groups + ["steady"] * n)[:n]
    rng.shuffle(groups)
    end = config.start + timedelta(weeks=config.weeks)
    people = []
    for i, group in enumerate(groups):
        pattern = rng.choice(DRIFTER_PATTERNS) if group == "drifter" else group
        cohort = "in_work" if pattern == "in_work" else "out_of_work"
        if cohort == "in_work":
            day, at = rng.randrange(7), rng.choice(IW_TIMES)
        else:
            day, at = rng.randrange(5), rng.choice(OOW_TIMES)
        person = Person(
            index=i,
            external_id=f"GM{i:06d}",
            phone=f"+4479460{i:05d}",
            group=group,
            specialist=i % config.specialists,
            cohort=cohort,
            checkin_day=day,
            checkin_time=at,
            pattern=pattern,
            miss=_miss_rate(rng, pattern, config.miss_rate),
            away=_away(rng, pattern, config.weeks),
        )
        if group == "drifter":
            # Late enough to have replied, early enough for two more check-ins and their waits
            # (two months for people asked monthly).
            room = 10 if pattern == "in_work" else 5
            person.drift_week = rng.randint(1, max(1, config.weeks - room))
        if group == "dna_prone":
            person.appointments = _appointments(rng, person, config.start, end)
        people.append(person)
    return people


def _miss_rate(rng: random.Random, pattern: str, steady_miss: float) -> float:
    """Each person's own share of texts left unanswered while they are there."""
    if pattern in ("in_work", "dna_prone"):
        return 0.2
    if pattern == "slow":
        return rng.uniform(0.05, 0.25)
    # Steady-like, bursty and shift workers: around the configured rate, some more reliable than others.
    return 0.0 if steady_miss == 0 else rng.uniform(0.2, 1.8) * steady_miss


def _away(rng: random.Random, pattern: str, weeks: int) -> list[tuple[int, int]]:
    """Weeks in which they answer nothing at all, and then come back."""
    if pattern == "holiday":
        return [(w, w + rng.randint(0, 1)) for w in sorted(rng.sample(range(weeks), min(weeks, rng.randint(1, 2))))]
    if pattern == "bad_fortnight":
        first = rng.randrange(max(1, weeks - 2))
        return [(first, first + 1)]
    if pattern == "bursty":
        # Runs of answering, then a week or two off: an "off" run starts in a week with chance 0.15.
        spells: list[tuple[int, int]] = []
        week = 0
        while week < weeks:
            if rng.random() < 0.15:
                length = rng.randint(1, 2)
                spells.append((week, week + length - 1))
                week += length
            week += 1
        return spells
    return []


def _appointments(
    rng: random.Random, person: Person, start: datetime, end: datetime
) -> list[tuple[str, datetime, bool]]:
    """Fortnightly meetings on a weekday that is not their check-in day; about 40% missed."""
    found = []
    first = start.astimezone(ZONE).date() + timedelta(days=7 + rng.randrange(14))
    day = first
    n = 0
    while True:
        while day.weekday() >= 5 or day.weekday() == person.checkin_day or is_bank_holiday(day, "ENG"):
            day += timedelta(days=1)
        at = datetime.combine(day, parse_hhmm(rng.choice(("10:00", "11:00", "13:00", "14:00", "15:00"))), ZONE)
        if at.astimezone(UTC) + timedelta(hours=8) >= end:
            return found
        n += 1
        found.append((f"A{person.index:06d}-{n:02d}", at.astimezone(UTC), rng.random() < 0.4))
        day += timedelta(days=14)


class PhoneNetwork:
    """The transport: 'delivers' each text at once and remembers which message it was."""

    name = "simulated"
    senders = 1

    def __init__(self) -> None:
        self.delivered: list[int] = []
        self.count = 0

    def send(self, *, to: str, body: str, key: str, status_callback: str | None) -> SendResult:
        message_id = int(key.removeprefix("out-"))
        self.delivered.append(message_id)
        self.count += 1
        return SendResult(ok=True, sid=f"SM{message_id:032d}", status="sent")

    def lookup(self, *, to: str, body: str, key: str, since: datetime) -> str | None:
        return None


class Sink(io.TextIOBase):
    """Where the console's email copies go (no SMTP host): counted, not printed."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return len(text)


@dataclass
class Result:
    config: Config
    people: list[Person]
    setup_seconds: float = 0.0
    run_seconds: float = 0.0
    ticks: int = 0
    texts_in: int = 0
    texts_out: int = 0
    peak_rss_mb: float = 0.0
    run_phase: Phase = field(default_factory=Phase)
    baseline_seconds: float = 0.0  # CPU of one empty transaction, measured in the same run
    idle_tick_seconds: float = 0.0  # CPU of a tick with nothing due, at the end: its fixed cost at this caseload
    # Per part of the run (the weeks so far, CPU seconds, texts in and out, ticks): cost as the records grow.
    checkpoints: list[tuple[float, float, int, int]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    drifter_lags: dict[str, float] = field(default_factory=dict)  # external id -> days
    drifter_flagged_at: dict[str, datetime] = field(default_factory=dict)
    drifters_unflagged: list[str] = field(default_factory=list)
    drifters_never_replied: list[str] = field(default_factory=list)
    flags_by_group: dict[str, Counter[str]] = field(default_factory=dict)
    steady_flagged: list[str] = field(default_factory=list)
    people_flagged: dict[str, set[str]] = field(default_factory=dict)  # group -> external ids "not responding"
    followups: dict[str, list[datetime]] = field(default_factory=dict)  # external id -> gentle follow-ups sent
    # False "not responding" flags by the rule that raised them: days of silence when each was raised.
    false_by_rule: dict[str, list[float]] = field(default_factory=dict)

    def false_flags(self, groups: Collection[str] | None = None) -> int:
        """'Not responding' flags on people who were not drifting (in these groups)."""
        return sum(
            kinds["not_responding"]
            for group, kinds in self.flags_by_group.items()
            if group != "drifter" and (groups is None or group in groups)
        )

    @property
    def false_flags_all_per_specialist_week(self) -> float:
        return self.false_flags() / self.config.specialists / self.weeks

    def drifter_lags_by_pattern(self) -> dict[str, list[float]]:
        found: dict[str, list[float]] = defaultdict(list)
        for person in self.people:
            if person.external_id in self.drifter_lags:
                found[person.pattern].append(self.drifter_lags[person.external_id])
        return dict(found)

    @property
    def weeks(self) -> float:
        return self.config.weeks

    @property
    def false_flags_per_specialist_week(self) -> float:
        steady = self.flags_by_group.get("steady", Counter())
        return steady["not_responding"] / self.config.specialists / self.weeks

    def lag_percentile(self, p: float, lags: Collection[float] | None = None) -> float | None:
        lags = sorted(self.drifter_lags.values() if lags is None else lags)
        if not lags:
            return None
        if p == 50:
            return statistics.median(lags)
        return statistics.quantiles(lags, n=100, method="inclusive")[int(p) - 1] if len(lags) > 1 else lags[0]


def _write_caseload(path: Path, people: list[Person]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(
            [
                *("participant_id", "first_name", "phone", "specialist_email", "specialist_name"),
                *("service", "cohort", "checkin_day", "checkin_time"),
            ]
        )
        for p in people:
            email, name = f"es{p.specialist:04d}@example.org", f"Specialist {p.specialist}"
            day = DAYS[p.checkin_day].title()
            out.writerow(
                [p.external_id, f"Person{p.index}", p.phone, email, name, SERVICE, p.cohort, day, p.checkin_time]
            )


def _write_appointments(path: Path, rows: list[tuple[Person, str, datetime, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["appointment_id", "participant_id", "starts_at", "kind", "outcome", "service"])
        for person, appointment_id, starts_at, outcome in rows:
            local = starts_at.astimezone(ZONE).strftime("%Y-%m-%d %H:%M")
            out.writerow([appointment_id, person.external_id, local, "meeting", outcome, SERVICE])


class Simulation:
    def __init__(self, config: Config, workdir: Path, *, database_url: str | None = None) -> None:
        self.config = config
        self.workdir = workdir
        self.people = plan(config)
        self.by_id: dict[int, Person] = {}
        self.clock = FixedClock(config.start)
        self.network = PhoneNetwork()
        url = database_url or f"sqlite:///{workdir / 'year.db'}"
        settings = Settings(
            database_url=url,
            dispatch="inline",
            # The pacer keeps a real sending number to about 10 segments per wall-clock second;
            # simulated time has no such limit, so it is lifted.
            send_rate=1e9,
            console_log=workdir / "sms.jsonl",
            default_timezone=LONDON,
        )
        self.rt: Runtime = build_runtime(settings, clock=self.clock, transport=self.network)
        # The phones and the clock look at the database from outside, as readers: on SQLite without
        # the service's write transactions (WAL lets them read beside a writer).
        self.reader = sa.create_engine(url) if url.startswith("sqlite") else self.rt.engine
        self.dispatcher = Dispatcher(self.rt)
        self.events: list[tuple[datetime, int, str, int, str]] = []
        self.seq = 0
        self.ticks = 0
        self.texts_in = 0
        self.sink = Sink()
        self.counts: Counter[str] = Counter()
        self.silence_days = timedelta(days=ServiceSettings().not_responding_days)
        self.silence: datetime | None = None  # the next silence to reach D days (see _find_silence)
        self.silence_exact = False
        self.checkpoints: list[tuple[float, float, int, int]] = []

    def _checkpoint(self, now: datetime) -> None:
        weeks = (now - self.config.start) / timedelta(weeks=1)
        self.checkpoints.append((weeks, own_cpu_seconds(), self.texts_in + self.network.count, self.ticks))

    # --- setup ------------------------------------------------------------------------------

    def setup(self) -> None:
        upgrade(self.rt.settings.database_url)
        caseload = self.workdir / "caseload.csv"
        _write_caseload(caseload, self.people)
        import_caseload(self.rt, caseload, self.config.start)
        with transaction(self.rt.engine) as db:
            ids = dict(db.exec(sa.select(Participant.external_id, Participant.id)).all())  # type: ignore[call-overload]
        for person in self.people:
            person.db_id = ids[person.external_id]
            self.by_id[person.db_id] = person
        if self.config.fixed_rule:
            with transaction(self.rt.engine) as db:
                for service in db.exec(sa.select(Service)).scalars():  # type: ignore[call-overload]
                    service.settings = {**service.settings, "rules_off": ["reply_rhythm"]}
                    db.add(service)
        rows = [(p, a, at, "") for p in self.people for a, at, _ in p.appointments]
        if rows:
            path = self.workdir / "appointments.csv"
            _write_appointments(path, rows)
            import_appointments(self.rt, path, self.config.start)
        # Specialists record the day's outcomes at 17:00 (after the last appointment).
        by_day: dict[date, list[int]] = defaultdict(list)
        for person in self.people:
            for n, (_, at, _) in enumerate(person.appointments):
                by_day[at.astimezone(ZONE).date()].append(person.index * 1000 + n)
        for day, keys in by_day.items():
            when = datetime.combine(day, parse_hhmm("17:00"), ZONE).astimezone(UTC)
            self._push(when, "outcomes", 0, ",".join(map(str, keys)))

    # --- the participants' side ---------------------------------------------------------------

    def _push(self, when: datetime, kind: str, who: int, body: str) -> None:
        self.seq += 1
        heapq.heappush(self.events, (when, self.seq, kind, who, body))

    def _read_phones(self) -> None:
        """Every text delivered since last time: each person decides whether and when to answer."""
        if not self.network.delivered:
            return
        ids, self.network.delivered = self.network.delivered, []
        rows = _DELIVERED[self.reader.dialect.name].read(self.reader, {"ids": ids}).all()
        for _, participant_id, key, sent_at in rows:
            person = self.by_id.get(participant_id or 0)
            if person is not None and key:
                self.counts[key] += 1
                self._react(person, key, _as_utc(sent_at) if sent_at else self.clock.now())

    def _react(self, person: Person, key: str, at: datetime) -> None:
        seed = self.config.seed
        if key in ("checkin/ask_week", "gentle_followup/thinking_of_you"):
            asked = key == "checkin/ask_week"
            n = person.checkins_seen
            person.checkins_seen += asked
            rng = person.rng(seed, "checkin" if asked else f"followup-{int(at.timestamp())}", n)
            if not self._there(person, at) or rng.random() < person.miss:
                return
            body = rng.choices(
                ("good", "1", "ok", "2", "fine thanks", "not great", "3", "been to the library to look at jobs"),
                weights=(25, 15, 20, 10, 10, 7, 3, 10),
            )[0]
            if not asked:
                body = rng.choice(("sorry, been busy", "all fine thanks", "hi, yes I'm ok"))
            self._push(at + self._delay(person, rng, at), "text", person.index, body)
        elif key == "checkin/offer_call":
            rng = person.rng(seed, "offer", person.checkins_seen)
            choice = rng.choices(("no thanks", "yes please", ""), weights=(60, 20, 20))[0]
            if choice:
                self._push(at + timedelta(minutes=rng.randint(2, 40)), "text", person.index, choice)
        elif key == "appointment_reminder/remind":
            rng = person.rng(seed, "remind", int(at.timestamp()))
            if rng.random() < 0.4:
                self._push(at + timedelta(minutes=rng.randint(5, 240)), "text", person.index, "yes")
        elif key == "dna_followup/attempt":
            rng = person.rng(seed, "dna", int(at.timestamp()))
            if rng.random() < 0.35:
                body = rng.choice(("yes", "sorry I forgot, can we rebook", "I was ill"))
                self._push(at + timedelta(minutes=rng.randint(10, 300)), "text", person.index, body)

    def _there(self, person: Person, at: datetime) -> bool:
        """Not drifted away for good, and not in a week away. Drifting is by the calendar, so
        people asked monthly drift in the same weeks as people asked weekly."""
        week = (at - self.config.start) // timedelta(weeks=1)
        if person.drift_week is not None and week >= person.drift_week:
            return False
        return not any(first <= week <= last for first, last in person.away)

    def _delay(self, person: Person, rng: random.Random, at: datetime) -> timedelta:
        if person.pattern == "in_work":
            # After work: that evening (or a couple of hours after an evening check-in).
            local = at.astimezone(ZONE)
            evening = local.replace(hour=18, minute=0) + timedelta(minutes=rng.randint(0, 210))
            return max(evening - local, timedelta(minutes=rng.randint(20, 150)))
        if person.pattern == "slow":
            # A day or two later, around their own usual pace.
            usual = person.rng(self.config.seed, "pace", 0).uniform(10, 40)
            return timedelta(hours=min(96.0, usual * rng.lognormvariate(0, 0.5)))
        if person.pattern == "shift":
            return timedelta(minutes=rng.randint(4 * 60, 30 * 60))  # after their shift, any hour
        roll = rng.random()
        if roll < 0.6:
            return timedelta(minutes=rng.randint(2, 60))
        if roll < 0.9:
            return timedelta(minutes=rng.randint(60, 240))
        return timedelta(minutes=rng.randint(240, 600))

    def _text(self, person: Person, body: str, now: datetime) -> None:
        self.texts_in += 1
        received = receive_sms(
            self.rt, sid=f"SM{self.texts_in:032x}", sender=person.phone, body=body, now=now, claim=self.dispatcher.sends
        )
        self.dispatcher.kick(received.outbox, emails=received.emails, booked=received.booked)
        # Only the sender's row changed, and their silence starts again now: the next one found
        # stays a lower bound, found again if it comes before anything else.
        self.silence_exact = False

    def _outcomes(self, keys: str, now: datetime) -> None:
        rows = []
        for key in map(int, keys.split(",")):
            person = self.people[key // 1000]
            appointment_id, at, missed = person.appointments[key % 1000]
            rows.append((person, appointment_id, at, "dna" if missed else "attended"))
        path = self.workdir / "outcomes.csv"
        _write_appointments(path, rows)
        import_appointments(self.rt, path, now)
        self.silence = None

    # --- the clock ----------------------------------------------------------------------------

    def _next_due(self, now: datetime) -> datetime | None:
        """The next moment `tick` has anything to do: a due row, a silence reaching D days, a digest, 03:00."""
        found = [_as_utc(v) for v in _NEXT_DUE.read(self.reader).one() if v is not None]
        local = now.astimezone(ZONE)
        for at in ("03:00", "08:30"):  # retention runs in the 03:00 hour; digests at 08:30 (the service default)
            moment = datetime.combine(local.date(), parse_hhmm(at), ZONE).astimezone(UTC)
            found.append(moment if moment > now else moment + timedelta(days=1))
        soonest = min(found)
        if self.silence is None or self.silence <= now or (not self.silence_exact and self.silence <= soonest):
            self._find_silence(now)
        return soonest if self.silence is None else min(soonest, self.silence)

    def _find_silence(self, now: datetime) -> None:
        """When the next person's silence reaches D days: exact until then, unless something changes
        who counts (a tick or an import: found again) or a text starts its sender's silence again."""
        quiet_since = _NEXT_SILENCE.read(self.reader, {"since": now - self.silence_days}).scalar()
        self.silence = None if quiet_since is None else _as_utc(quiet_since) + self.silence_days
        self.silence_exact = True

    def _tick(self, now: datetime) -> None:
        self.ticks += 1
        self.silence = None  # a tick can pause, resume or flag people: found again before the next step
        report = scheduler.tick(self.rt, now)
        self.counts["checkins_started"] += report.started
        self.counts["timeouts"] += report.timeouts

    def run(self) -> None:
        now = self.config.start
        end = now + timedelta(weeks=self.config.weeks)
        step = timedelta(seconds=self.rt.settings.tick_seconds)
        parts = [now + (end - now) * k / 4 for k in (1, 2, 3)]
        with contextlib.redirect_stdout(self.sink):
            self.clock.set(now)
            self._checkpoint(now)
            self._tick(now)
            self._read_phones()
            while now < end:
                if parts and now >= parts[0]:
                    self._checkpoint(parts.pop(0))
                due = self._next_due(now)
                # Something still due now (a batch limit): the production clock comes round again in 10 s.
                next_tick = end if due is None else min(due if due > now else now + step, end)
                if self.events and self.events[0][0] < next_tick:
                    when, _, kind, who, body = heapq.heappop(self.events)
                    now = max(now, when)
                    self.clock.set(now)
                    if kind == "text":
                        self._text(self.people[who], body, now)
                    else:
                        self._outcomes(body, now)
                else:
                    now = next_tick
                    self.clock.set(now)
                    self._tick(now)
                self._read_phones()
            self._checkpoint(end)

    # --- measuring ----------------------------------------------------------------------------

    def idle_tick(self, count: int = 20) -> float:
        """CPU seconds of a tick that finds nothing due, on the records the run left: the part of a
        tick's cost that every tick pays whatever is due, so it shows how that grows with the caseload.
        Ticks a second apart after the end, once whatever was due then is done."""
        at = self.config.start + timedelta(weeks=self.config.weeks)
        with contextlib.redirect_stdout(self.sink):
            for _ in range(100):  # first, whatever falls due then or in the seconds measured
                due = self._next_due(at)
                if due is None or due > at + timedelta(seconds=count + 1):
                    break
                at = max(at, due)
                scheduler.tick(self.rt, at)
            started = own_cpu_seconds()
            for n in range(1, count + 1):
                scheduler.tick(self.rt, at + timedelta(seconds=n))
            return (own_cpu_seconds() - started) / count

    def measure(self, result: Result) -> None:
        with self.rt.engine.connect() as connection:
            last_in: dict[int, datetime] = {
                pid: _as_utc(at)
                for pid, at in connection.execute(
                    sa.text(
                        "SELECT participant_id, max(at) FROM message WHERE direction = 'in' GROUP BY participant_id"
                    ).columns(sa.column("participant_id", sa.Integer), sa.column("at"))
                ).all()
            }
            flags = connection.execute(
                sa.select(Flag.participant_id, Flag.kind, Flag.created_at, Flag.reason, Flag.evidence).order_by(  # type: ignore[call-overload]
                    Flag.created_at
                )
            ).all()
            followups = connection.execute(
                sa.select(Message.participant_id, Message.sent_at).where(  # type: ignore[call-overload]
                    Message.message_key == "gentle_followup/thinking_of_you", Message.status == "sent"
                )
            ).all()
            result.texts_out = connection.execute(
                sa.text("SELECT count(*) FROM message WHERE direction = 'out' AND status = 'sent'")
            ).scalar_one()
        for participant_id, sent_at in followups:
            result.followups.setdefault(self.by_id[participant_id].external_id, []).append(_as_utc(sent_at))
        by_group: dict[str, Counter[str]] = defaultdict(Counter)
        first_after: dict[int, datetime] = {}
        steady_flagged = set()
        by_person: dict[int, set[str]] = defaultdict(set)
        for participant_id, kind, created_at, reason, evidence in flags:
            person = self.by_id[participant_id]
            by_group[person.group][kind] += 1
            if kind == "not_responding" and person.group != "drifter":
                result.false_by_rule.setdefault(rule_of(reason), []).append(silent_days(created_at, evidence))
            by_person[participant_id].add(kind)
            if person.group == "steady" and kind == "not_responding":
                steady_flagged.add(person.external_id)
            if kind == "not_responding":
                result.people_flagged.setdefault(person.group, set()).add(person.external_id)
            if person.group == "drifter" and kind in DISENGAGED and participant_id not in first_after:
                last = last_in.get(participant_id)
                if last is not None and created_at > last:
                    first_after[participant_id] = created_at
        for person in self.people:
            if person.group != "drifter":
                continue
            flagged = first_after.get(person.db_id)
            last = last_in.get(person.db_id)
            if last is None:  # missed every check-in before drifting: no last reply to measure from
                result.drifters_never_replied.append(person.external_id)
                if not by_person[person.db_id] & set(DISENGAGED):
                    result.drifters_unflagged.append(person.external_id)
                continue
            if flagged is None:
                result.drifters_unflagged.append(person.external_id)
                continue
            result.drifter_flagged_at[person.external_id] = flagged
            result.drifter_lags[person.external_id] = (flagged - last).total_seconds() / 86400
        result.flags_by_group = dict(by_group)
        result.steady_flagged = sorted(steady_flagged)
        result.counts = dict(self.counts)


def _earliest(column: Any, *where: Any) -> Any:
    return sa.select(sa.func.min(column)).where(*where).scalar_subquery()


_message, _participant = table(Message), table(Participant)
_QUIET_SINCE = sa.func.coalesce(_participant.c.last_inbound_at, _participant.c.created_at)
# The harness's own questions, asked between every two simulated events: statements built once and
# run on the driver (`db.driver`), so the harness's cost stays small beside the service's.
# Every kind of due row in one round trip.
_NEXT_DUE = Prepared(
    sa.select(
        _earliest(table(DueTask).c.due_at, table(DueTask).c.status == "pending"),
        _earliest(table(FlowSession).c.wait_until, table(FlowSession).c.status == "waiting"),
        _earliest(_message.c.next_attempt_at, _message.c.status == "queued", _message.c.direction == "out"),
        _earliest(table(Notification).c.next_attempt_at, table(Notification).c.status == "queued"),
        _earliest(table(CampaignRecipient).c.due_at, table(CampaignRecipient).c.status == "planned"),
    )
)
# The next silence to reach D days: a scan of every person, so asked only when it could be next.
_NEXT_SILENCE = Prepared(
    sa.select(
        _earliest(
            _QUIET_SINCE,
            _participant.c.opted_out.is_(False),
            _participant.c.paused.is_(False),
            _participant.c.unreachable.is_(False),
            sa.bindparam("since", type_=_participant.c.created_at.type) < _QUIET_SINCE,
        ),
    )
)
# The texts the phones were given since the last look: whose, which, when.
_DELIVERED = {
    dialect: Prepared(
        sa.select(_message.c.id, _message.c.participant_id, _message.c.message_key, _message.c.sent_at).where(
            among_param(_message.c.id, "ids", dialect)
        )
    )
    for dialect in ("sqlite", "postgresql")
}


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def simulate(config: Config, workdir: Path, *, database_url: str | None = None, settle: bool = False) -> Result:
    """Run the whole thing in `workdir`; the database is left there. `settle`: once set up, set the
    process's lifelong objects aside from the garbage collector, as the service's processes do
    (not for a test suite's process)."""
    result = Result(config=config, people=[])
    began = time.perf_counter()
    sim = Simulation(config, workdir, database_url=database_url)
    sim.setup()
    if settle:
        settle_process()
    result.setup_seconds = time.perf_counter() - began
    result.baseline_seconds = transaction_baseline(sim.rt.engine)
    with Timer() as timer:
        sim.run()
    result.run_phase = timer.phase
    result.run_seconds = timer.phase.wall
    result.checkpoints = sim.checkpoints
    result.ticks, result.texts_in = sim.ticks, sim.texts_in
    result.idle_tick_seconds = sim.idle_tick()
    sim.measure(result)
    result.people = sim.people
    result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sim.rt.engine.dispose()
    sim.reader.dispose()
    return result


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} days"


def rule_of(reason: str) -> str:
    """Which rule raised a "not responding" flag, from its reason."""
    if reason.startswith("No reply to the last"):
        return "unanswered check-ins (ceiling)"
    if reason.startswith("No text from them for"):
        return "days without a text (ceiling)"
    return "their own rhythm"


def silent_days(raised_at: datetime, evidence: object) -> float:
    """Days from the silence's start (kept on the flag's first evidence) to the flag."""
    entries = evidence if isinstance(evidence, list) else [evidence]
    since = next((e["silent_since"] for e in entries if isinstance(e, dict) and e.get("silent_since")), None)
    if since is None:
        return float("nan")
    return (_as_utc(raised_at) - _as_utc(datetime.fromisoformat(since))).total_seconds() / 86400


def report(result: Result, *, aims_apply: bool) -> bool:
    c = result.config
    groups = Counter(p.group for p in result.people)
    wall = result.setup_seconds + result.run_seconds
    contacts = result.texts_in + result.texts_out
    median, p90 = result.lag_percentile(50), result.lag_percentile(90)
    false_rate = result.false_flags_per_specialist_week
    false_all = result.false_flags_all_per_specialist_week
    print(
        f"year simulation: {c.participants} participants, {c.specialists} specialists, {c.weeks} weeks, seed {c.seed}"
    )
    print("  groups: " + ", ".join(f"{g} {groups[g]}" for g, _ in GROUP_SHARES))
    rule = "the fixed count of check-ins (rhythm off)" if c.fixed_rule else "each person's rhythm"
    print(f"  steady miss rate about {c.miss_rate:.0%}; from {c.start:%Y-%m-%d %H:%M} UTC; 'not responding' by {rule}")
    print("cost")
    print(f"  wall time: {wall:.1f} s (setup {result.setup_seconds:.1f} s, simulated weeks {result.run_seconds:.1f} s)")
    print(f"  code: {describe_code()}")
    phase = result.run_phase
    print(f"  CPU of the simulated weeks: {phase.cpu:.1f} s; other processes used {phase.others_cores:.2f} cores")
    if warning := phase.busy_warning():
        print(f"  {warning}")
    print(f"  scheduler ticks: {result.ticks}")
    base_ms = result.baseline_seconds * 1000
    print(f"  baseline (same run): one empty transaction {base_ms:.2f} ms of CPU")
    idle_ms = result.idle_tick_seconds * 1000
    print(
        f"  a tick with nothing due, on the records at the end: {idle_ms:.2f} ms of CPU"
        f" ({idle_ms / base_ms if base_ms else 0:.0f}x the empty transaction;"
        f" {idle_ms / max(1, len(result.people)) * 1000:.2f} us a person on the caseload)"
    )
    print("  CPU per text in or out (ticks included), by part of the run, as the records grow:")
    for (w0, cpu0, n0, t0), (w1, cpu1, n1, t1) in zip(result.checkpoints, result.checkpoints[1:], strict=False):
        per_text = (cpu1 - cpu0) / max(1, n1 - n0) * 1000
        print(
            f"    weeks {w0:4.1f}-{w1:4.1f}: {n1 - n0:7d} texts, {t1 - t0:5d} ticks, {per_text:6.2f} ms a text"
            f" ({per_text / base_ms if base_ms else 0:.0f}x the empty transaction)"
        )
    print(f"  texts: {result.texts_out} sent, {result.texts_in} received")
    print(f"  simulated contacts per second: {contacts / result.run_seconds:.0f} (texts in and out / simulation time)")
    print(f"  peak memory (ru_maxrss): {result.peak_rss_mb:.0f} MB")
    print("drifters (days from their last text to the first 'not responding' or 'unable to contact' flag)")
    print(
        f"  measured: {len(result.drifter_lags)} of {groups['drifter']}; never replied at all (flagged, not measured):"
        f" {len(result.drifters_never_replied)}; not flagged by the end: {len(result.drifters_unflagged)}"
    )
    print(f"  median {_days(median)}, 90th percentile {_days(p90)}", end="")
    if result.drifter_lags:
        print(f", min {min(result.drifter_lags.values()):.2f}, max {max(result.drifter_lags.values()):.2f}")
    else:
        print()
    print("  by what they were like before they stopped (median / 90th percentile / how many):")
    for pattern, lags in sorted(result.drifter_lags_by_pattern().items()):
        print(
            f"    {pattern:10} {_days(result.lag_percentile(50, lags))} / {_days(result.lag_percentile(90, lags))}"
            f" / {len(lags)}"
        )
    print("false 'not responding' flags (people who were not drifting)")
    print(f"  every group that is not drifting: {result.false_flags()} flags, {false_all:.3f} per specialist per week")
    steady = result.flags_by_group.get("steady", Counter())
    print(
        f"  steady repliers: {steady['not_responding']} on {len(result.steady_flagged)} people;"
        f" {false_rate:.3f} per specialist per week"
    )
    print("  by group (flags, people flagged of the group, per specialist per week):")
    for group, _ in GROUP_SHARES:
        if group == "drifter":
            continue
        count = result.false_flags([group])
        flagged = len(result.people_flagged.get(group, ()))
        print(f"    {group:13} {count:5d}  {flagged:4d} of {groups[group]:4d}  {count / c.specialists / c.weeks:.3f}")
    print("  by the rule that raised them (flags; days silent when raised: median, 10th percentile):")
    for rule, days in sorted(result.false_by_rule.items()):
        low = statistics.quantiles(days, n=10, method="inclusive")[0] if len(days) > 1 else days[0]
        print(f"    {rule:30} {len(days):5d}  {statistics.median(days):5.1f}  {low:5.1f}")
    print(f"  gentle follow-ups sent: {result.counts.get('gentle_followup/thinking_of_you', 0)}")
    print("flags raised, by group")
    for group, _ in GROUP_SHARES:
        kinds = result.flags_by_group.get(group, Counter())
        print(f"  {group:13} " + (", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"))
    checks = [
        (
            f"drifters flagged within {AIM_MEDIAN_DAYS:.0f} days of their last reply (median)",
            median is not None and median <= AIM_MEDIAN_DAYS,
        ),
        (
            f"drifters flagged within {AIM_P90_DAYS:.0f} days (90th percentile under)",
            p90 is not None and p90 < AIM_P90_DAYS,
        ),
        ("every drifter flagged", not result.drifters_unflagged),
        (
            "fewer than 0.2 false flags per specialist per week, every group that is not drifting",
            false_all < AIM_FALSE_FLAGS,
        ),
    ]
    if aims_apply:
        checks.append(("the year simulated in under 5 minutes", wall < AIM_WALL_SECONDS))
    print("verdict")
    for text, ok in checks:
        print(f"  {'met   ' if ok else 'MISSED'} {text}")
    if not aims_apply:
        print("  (the 5-minute aim is for 1,500 participants over 52 weeks: not judged at this size)")
    return all(ok for _, ok in checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=Config.participants)
    parser.add_argument("--specialists", type=int, default=Config.specialists)
    parser.add_argument("--weeks", type=int, default=Config.weeks)
    parser.add_argument("--quick", action="store_true", help="13 weeks instead of a year")
    parser.add_argument("--seed", type=int, default=Config.seed)
    parser.add_argument("--miss-rate", type=float, default=Config.miss_rate)
    parser.add_argument(
        "--database-url", help="Another empty database (e.g. PostgreSQL) instead of a temporary SQLite file"
    )
    parser.add_argument("--keep", action="store_true", help="Keep the temporary directory (database, CSV files)")
    parser.add_argument(
        "--fixed-rule", action="store_true", help="Turn each person's rhythm off: the fixed count of check-ins"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.participants <= 99_999 or not 1 <= args.specialists <= args.participants:
        parser.error("--participants must be 1-99999 and --specialists 1 to the number of participants")
    config = replace(
        Config(),
        participants=args.participants,
        specialists=args.specialists,
        weeks=13 if args.quick else args.weeks,
        seed=args.seed,
        miss_rate=args.miss_rate,
        fixed_rule=args.fixed_rule,
    )
    workdir = Path(tempfile.mkdtemp(prefix="year-sim-"))
    try:
        result = simulate(config, workdir, database_url=args.database_url, settle=True)
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    aims_apply = (config.participants, config.specialists, config.weeks) == (1500, 60, 52)
    return 0 if report(result, aims_apply=aims_apply) else 1


if __name__ == "__main__":
    sys.exit(main())
