"""Per-service settings: timings and rules a service lead can change without code.

Stored as JSON on the service row; anything not set there takes the default here.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from assistant.db.cohort_times import for_cohort
from assistant.db.dna_steps import DEFAULT_LADDER, parse_ladder
from assistant.db.driver import Prepared
from assistant.db.models import Participant, Service, table
from assistant.db.rows import held
from assistant.timing import parse_hhmm

# The flag rules a service may turn off (rules_off), as a service lead would name them.
RULES = {
    "not_responding": "Not responding",
    # Off: "not responding" falls back to the fixed count of unanswered check-ins for everyone.
    "reply_rhythm": "Not responding, judged by each person's usual rhythm (with a gentle follow-up text)",
    "not_great_weeks": "'Not great' weeks running",
    "repeated_dna": "Two missed appointments in a row",
    "unreachable": "Cannot be reached",
}

# Urgent help differs by nation: crisis texts give the numbers of the service's own
# (messages/<locale>/common/crisis.txt has each version and where its numbers come from).
NATIONS = {
    "england": "England",
    "wales": "Wales",
    "scotland": "Scotland",
    "northern_ireland": "Northern Ireland",
}

# How questionnaires are asked: one item per text (items whose wording would show something on a
# lock screen only once the participant agrees, else by link), or all on a private page by link.
QUESTIONNAIRE_BY = {"text": "By text, one question per text", "link": "By a private link"}


@dataclass(frozen=True)
class ServiceSettings:
    # Appointment reminders: days before, at this local time.
    reminder_days_before: tuple[int, ...] = (3, 1)
    reminder_time: str = "10:00"
    interview_reminder_days_before: tuple[int, ...] = (1,)
    interview_good_luck_time: str = "08:00"
    # Missed-appointment follow-up: steps of a channel and a day (assistant/db/dna_steps.py): texts,
    # tasks for the specialist (call, email, letter), then a flag to consider next steps. The
    # first contact within this many hours; later texts at another of these times of day.
    dna_ladder: tuple[str, ...] = DEFAULT_LADDER
    dna_first_within_hours: int = 24
    dna_times: tuple[str, ...] = ("10:00", "14:00", "17:30")
    # People in work: their own reminder, follow-up and questionnaire times (outside working
    # hours). Empty: the times above. Applied by settings_for (see assistant/db/cohort_times.py).
    in_work_reminder_time: str = ""
    in_work_interview_good_luck_time: str = ""
    in_work_dna_times: tuple[str, ...] = ()
    in_work_questionnaire_time: str = ""
    # Automated texts only arrive in these local hours; never on bank holidays.
    quiet_until: str = "08:00"
    quiet_from: str = "20:00"
    send_on_weekends: bool = True
    holiday_region: str = "ENG"  # ENG (England and Wales), SCT, NIR, WLS
    # Whose urgent-help numbers crisis signposting gives: england, wales, scotland, northern_ireland.
    nation: str = "england"
    # Questionnaires by text: none until the service chooses its instruments.
    questionnaire_instruments: tuple[str, ...] = ()
    questionnaire_by: str = "text"
    questionnaire_every_weeks: int = 4
    questionnaire_at_start: bool = True
    questionnaire_at_end: bool = True
    questionnaire_expires_hours: int = 72
    questionnaire_time: str = "11:00"
    # Scores are never texted to anyone: a lock screen would show them. (Stored settings that still
    # name the old `text_scores_to_participant` are read without it.)
    # Who hears about an urgent flag besides the specialist. Crisis handling is always on, so a
    # service's settings cannot be changed without one (see duty_contact_problem).
    duty_contact_email: str = ""
    # Told as well from the first reminder on, when nobody has acknowledged an urgent flag.
    escalation_contact_email: str = ""
    # Every notice about an urgent flag is also texted (no personal data) to this number, if set.
    duty_contact_phone: str = ""
    # People are told again at this interval until someone acknowledges an urgent flag: no cap.
    escalate_after_minutes: int = 60
    # Flag rules. Turning a rule off stops new flags of that kind; history stays.
    not_responding_checkins: int = 2
    not_responding_days: int = 21
    not_great_weeks: int = 3
    unreachable_30003_count: int = 3
    rules_off: tuple[str, ...] = ()
    # Non-urgent flags reach specialists in one daily digest at this local time.
    digest_time: str = "08:30"
    caseload_cap: int = 20
    # Campaign texts may take at most this many segments.
    campaign_segment_limit: int = 2
    # Records are anonymised this many months after support ends (0: never automatically).
    retention_months_after_support: int = 24
    # The journey's ends (see assistant/db/journey_settings.py for the checks).
    # The service's name as participants know it, for the welcome text ("" reads "the employment team").
    public_name: str = ""
    # Where referrals come from, pre-coded; "other" is always allowed as well.
    referral_sources: tuple[str, ...] = ("talking_therapies", "gp", "community_team", "jobcentre", "self_referral")
    welcome_text: bool = True
    # Until support starts, a lighter check-in: every this many weeks.
    waiting_checkin_every_weeks: int = 2
    # After a job start: weekly for this many weeks, then every in_work_every_weeks, out of working hours.
    in_work_weekly_weeks: int = 4
    in_work_every_weeks: int = 4
    in_work_checkin_time: str = "18:00"
    in_work_allowed_from: str = "17:30"
    in_work_allowed_until: str = "20:00"
    # Weeks after a job start when a text asks whether the person is still in work.
    sustainment_weeks: tuple[int, ...] = (13, 26)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ServiceSettings:
        values: dict[str, Any] = {}
        for f in fields(cls):
            if data and f.name in data:
                value = data[f.name]
                values[f.name] = tuple(value) if isinstance(value, list) else value
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise ValueError naming the first setting out of bounds."""
        self._check_times()
        self._check_choices()
        self._check_limits()
        from assistant.db.journey_settings import check_journey_settings

        check_journey_settings(self)

    def _check_times(self) -> None:
        """Every time of day parses, the follow-up ladder parses, and there is a follow-up time."""
        for name in (
            "reminder_time",
            "interview_good_luck_time",
            "quiet_until",
            "quiet_from",
            "questionnaire_time",
            "digest_time",
        ):
            parse_hhmm(getattr(self, name))
        for value in self.dna_times + self.in_work_dna_times:
            parse_hhmm(value)
        for name in cohort_time_fields():
            if getattr(self, name):
                parse_hhmm(getattr(self, name))
        parse_ladder(self.dna_ladder)
        if not self.dna_times:
            raise ValueError("dna_times needs at least one time of day")

    def _check_choices(self) -> None:
        """Reminder days, region, nation and questionnaires are ones we know; escalation delay and duty email."""
        if any(d < 0 or d > 28 for d in self.reminder_days_before + self.interview_reminder_days_before):
            raise ValueError("reminder days must be between 0 and 28")
        if self.holiday_region not in ("ENG", "SCT", "NIR", "WLS"):
            raise ValueError("holiday_region must be ENG, SCT, NIR or WLS")
        if self.nation not in NATIONS:
            raise ValueError(f"nation must be one of {', '.join(NATIONS)}")
        unknown = [i for i in self.questionnaire_instruments if i not in ("phq9", "gad7", "wsas")]
        if unknown:
            raise ValueError(f"unknown questionnaire(s): {unknown}")
        if self.questionnaire_by not in QUESTIONNAIRE_BY:
            raise ValueError(f"questionnaire_by must be one of {', '.join(QUESTIONNAIRE_BY)}")
        if not 1 <= self.questionnaire_every_weeks <= 52 or not 1 <= self.questionnaire_expires_hours <= 336:
            raise ValueError("questionnaire_every_weeks must be 1-52 and questionnaire_expires_hours 1-336")
        if not 5 <= self.escalate_after_minutes <= 24 * 60:
            raise ValueError("escalate_after_minutes must be 5-1440")
        if self.duty_contact_email and (
            "@" not in self.duty_contact_email or any(c in self.duty_contact_email for c in " \r\n,;")
        ):
            raise ValueError("duty_contact_email must be one email address")

    def _check_limits(self) -> None:
        """Counts, periods and contacts within their bounds; quiet hours the right way round."""
        if not 1 <= self.not_responding_checkins <= 12 or not 3 <= self.not_responding_days <= 180:
            raise ValueError("not_responding_checkins must be 1-12 and not_responding_days 3-180")
        if not 2 <= self.not_great_weeks <= 12 or not 2 <= self.unreachable_30003_count <= 20:
            raise ValueError("not_great_weeks must be 2-12 and unreachable_30003_count 2-20")
        if not 0 <= self.retention_months_after_support <= 240:
            raise ValueError("retention_months_after_support must be 0-240")
        if not 1 <= self.caseload_cap <= 200:
            raise ValueError("caseload_cap must be 1-200")
        if self.escalation_contact_email and (
            "@" not in self.escalation_contact_email or any(c in self.escalation_contact_email for c in " \r\n,;")
        ):
            raise ValueError("escalation_contact_email must be one email address")
        if not 1 <= self.dna_first_within_hours <= 72:
            raise ValueError("dna_first_within_hours must be 1-72")
        if not 1 <= self.campaign_segment_limit <= 10:
            raise ValueError("campaign_segment_limit must be 1-10")
        unknown_rules = [r for r in self.rules_off if r not in RULES]
        if unknown_rules:
            raise ValueError(f"rules_off: unknown rule(s) {unknown_rules}: one of {', '.join(RULES)}")
        if self.duty_contact_phone and not self.duty_contact_phone.startswith("+"):
            raise ValueError("duty_contact_phone must be an E.164 number like +447700900123")
        if parse_hhmm(self.quiet_until) >= parse_hhmm(self.quiet_from):
            raise ValueError("quiet_until must be earlier in the day than quiet_from")

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def cohort_time_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(ServiceSettings) if f.name.startswith("in_work_") and f.name.endswith("_time"))


def duty_contact_problem(settings: ServiceSettings) -> str | None:
    """What a service is missing to handle a crisis, or None.

    Crisis handling is always on: an urgent flag goes to the specialist and to a named duty
    contact at once, and again until someone acknowledges it. Questionnaires ask about
    thoughts of self-harm, so they need one all the more. An email address is the minimum;
    a phone number adds a text with every notice.
    """
    if settings.duty_contact_email:
        return None
    if settings.questionnaire_instruments:
        return "questionnaires need a duty contact: set duty_contact_email (and duty_contact_phone for texts)"
    return "crisis handling needs a duty contact: set duty_contact_email (and duty_contact_phone for texts)"


# Read per text, so kept cheap: the stored JSON is read as text on every call (settings change in
# other processes, through the dashboard or the CLI) and only parsed and checked when that text
# has not been seen before. Entries are immutable, so sharing them between threads is safe.
_service = table(Service)
# Where a statement reads a service's settings beside other rows, under this name (remember_settings).
SETTINGS_KEY = "service_settings"


def settings_text_of(service_id: Any) -> Any:
    """A service's stored settings as text, as a scalar subquery on `service_id` (a column or parameter)."""
    return sa.select(sa.cast(_service.c.settings, sa.Text)).where(_service.c.id == service_id).scalar_subquery()


_SETTINGS_TEXT = Prepared(sa.select(settings_text_of(sa.bindparam("id"))))
_parsed: dict[str, ServiceSettings] = {}
_parsed_lock = threading.Lock()
_PARSED_MAX = 256


# Built once: the clock's sweeps and digests ask on every tick.
_ALL_SETTINGS_TEXT = Prepared(sa.select(_service.c.id, sa.cast(_service.c.settings, sa.Text)).order_by(_service.c.id))


def _parse(text: str) -> ServiceSettings:
    found = _parsed.get(text)
    if found is None:
        found = ServiceSettings.from_json(json.loads(text))
        with _parsed_lock:
            if len(_parsed) >= _PARSED_MAX:
                _parsed.clear()
            _parsed[text] = found
    return found


def all_services(db: Session) -> dict[int, ServiceSettings]:
    """Every service's settings by id (as for_service, for a job that covers them all)."""
    found: dict[int, ServiceSettings] = {}
    for service_id, text in _ALL_SETTINGS_TEXT.run(db).all():
        loaded = held(db, Service, service_id)
        found[service_id] = ServiceSettings.from_json(loaded.settings) if loaded is not None else _parse(text)
    return found


def for_service(db: Session, service_id: int | None) -> ServiceSettings:
    """A service's settings as this transaction sees them (defaults if there is no such service)."""
    if service_id is None:
        return ServiceSettings.from_json(None)
    loaded = held(db, Service, service_id)
    if loaded is not None:
        # Already in this session, perhaps changed and not yet flushed: its values are the truth here.
        return ServiceSettings.from_json(loaded.settings)
    # Read once per transaction: a text (a reply, a reminder) asks for them several times. Only the
    # ORM changes settings (settings_change), and this session's own copy is looked at first above.
    seen: dict[int, ServiceSettings] = db.info.setdefault(SETTINGS_KEY, {})
    if service_id not in seen:
        text = _SETTINGS_TEXT.run(db, {"id": service_id}, flush=False).scalar()  # nothing to flush first
        remember_settings(db, service_id, text)
    return seen[service_id]


def remember_settings(db: Session, service_id: int | None, text: str | None) -> None:
    """A service's settings text (None: no such service, so the defaults), read in this transaction:
    for_service keeps the first it is given and reads the database no more."""
    if service_id is not None:
        seen: dict[int, ServiceSettings] = db.info.setdefault(SETTINGS_KEY, {})
        if service_id not in seen:
            seen[service_id] = ServiceSettings.from_json(None) if text is None else _parse(text)


def settings_for(db: Session, participant: Participant) -> ServiceSettings:
    """The settings of the participant's service, with their cohort's own times."""

    return for_cohort(for_service(db, participant.service_id), participant.cohort)
