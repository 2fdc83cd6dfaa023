"""Changing a service's settings: one path for the dashboard and the CLI.

Values arrive as text (a form field, a KEY=VALUE argument), are parsed per field,
checked with ServiceSettings.validate() and against the rule that a service names a
duty contact (crisis handling is always on; questionnaires ask about self-harm),
saved, written to the audit log as old -> new, and what depends on them is
re-planned: questionnaires when their schedule changes, upcoming appointments'
reminders when the reminder timings do.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from assistant.care.audit import audit_as
from assistant.db.models import Appointment, DueTask, Participant, Service, TaskStatus
from assistant.db.service_settings import NATIONS, QUESTIONNAIRE_BY, RULES, ServiceSettings, duty_contact_problem

KINDS: dict[str, str] = {f.name: str(f.type) for f in fields(ServiceSettings)}
REMINDER_FIELDS = (
    "reminder_days_before",
    "reminder_time",
    "interview_reminder_days_before",
    "interview_good_luck_time",
)


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    hint: str = ""


# Every setting, grouped as the settings page shows them.
GROUPS: tuple[tuple[str, tuple[Field, ...]], ...] = (
    (
        "Sending hours",
        (
            Field("quiet_until", "Texts may arrive from", "Local time, HH:MM."),
            Field("quiet_from", "Texts stop at", "Local time, HH:MM. Later in the day than the start."),
            Field("send_on_weekends", "Send automated texts at weekends"),
            Field("holiday_region", "Bank holidays of", "No automated texts on these bank holidays."),
        ),
    ),
    (
        "Times for people in work",
        (
            Field("in_work_reminder_time", "Appointment reminders at", "Local time, HH:MM. Empty: as for everyone."),
            Field(
                "in_work_interview_good_luck_time",
                "Interview good-luck texts at",
                "Local time, HH:MM. Empty: as for everyone.",
            ),
            Field(
                "in_work_dna_times",
                "Missed-appointment follow-ups at these times of day",
                "Comma-separated, e.g. 07:30, 18:00, 19:30. Empty: as for everyone.",
            ),
            Field("in_work_questionnaire_time", "Questionnaires at", "Local time, HH:MM. Empty: as for everyone."),
        ),
    ),
    (
        "Questionnaires",
        (
            Field("questionnaire_instruments", "Questionnaires to ask", "None chosen: no questionnaires by text."),
            Field(
                "questionnaire_by",
                "Ask them",
                "A private link: one text says a few questions are waiting, with a link to a private page.",
            ),
            Field("questionnaire_every_weeks", "Ask every (weeks)", "1 to 52."),
            Field("questionnaire_at_start", "Ask at the start of support"),
            Field("questionnaire_at_end", "Ask at the end of support"),
            Field("questionnaire_expires_hours", "An unanswered questionnaire expires after (hours)", "1 to 336."),
            Field("questionnaire_time", "Ask at", "Local time, HH:MM."),
        ),
    ),
    (
        "Appointment reminders",
        (
            Field("reminder_days_before", "Remind this many days before", "Comma-separated, e.g. 3,1. 0 to 28."),
            Field("reminder_time", "Send reminders at", "Local time, HH:MM."),
            Field("interview_reminder_days_before", "Remind of a job interview days before", "Comma-separated."),
            Field("interview_good_luck_time", "Good-luck text on the interview day at", "Local time, HH:MM."),
        ),
    ),
    (
        "Missed appointments (follow-up ladder)",
        (
            Field(
                "dna_ladder",
                "Steps (channel:day)",
                "Comma-separated, e.g. sms:0,call:3,sms:7,letter:14,review:28. Channels: sms (a text), "
                "call, email, letter (tasks on your Today list), review (last: a flag to consider next steps).",
            ),
            Field("dna_first_within_hours", "First contact within (hours)", "1 to 72."),
            Field("dna_times", "Texts at", "Times of day in turn, comma-separated, e.g. 10:00,14:00,17:30."),
        ),
    ),
    (
        "Flags",
        (
            Field("rules_off", "Rules that raise flags", "Turning a rule off stops new flags of that kind."),
            Field(
                "not_responding_checkins",
                "Not responding after unanswered check-ins",
                "1 to 12. The ceiling for everyone: each person's rhythm can only tell sooner.",
            ),
            Field(
                "not_responding_days",
                "Not responding after days of silence",
                "3 to 180. The ceiling for everyone, whatever their rhythm.",
            ),
            Field("not_great_weeks", "'Not great' weeks running", "2 to 12."),
            Field("unreachable_30003_count", "Cannot be reached after failed deliveries", "2 to 20."),
            Field("digest_time", "Daily digest of non-urgent flags at", "Local time, HH:MM."),
        ),
    ),
    (
        "Duty and escalation",
        (
            Field(
                "nation",
                "Urgent-help numbers in crisis texts for",
                "Each nation's own line (NHS 111, NHS 111 Wales, NHS 24 and Breathing Space, Lifeline), "
                "with 999, Samaritans and SHOUT.",
            ),
            Field(
                "duty_contact_email",
                "Duty contact email",
                "Required. Told of every urgent flag at once, and at every reminder.",
            ),
            Field(
                "duty_contact_phone",
                "Duty contact phone",
                "E.164, e.g. +447700900123. Texted without details with every notice.",
            ),
            Field(
                "escalation_contact_email",
                "Escalation contact email",
                "Told from the first reminder on, while an urgent flag stays unacknowledged.",
            ),
            Field(
                "escalate_after_minutes",
                "Remind about an unacknowledged urgent flag every (minutes)",
                "5 to 1440. Reminders go on until someone acknowledges the flag.",
            ),
        ),
    ),
    (
        "Caseloads, campaigns and retention",
        (
            Field("caseload_cap", "Caseload cap per specialist", "1 to 200."),
            Field("campaign_segment_limit", "Campaign texts may take at most (segments)", "1 to 10."),
            Field(
                "retention_months_after_support",
                "Anonymise records this many months after support ends",
                "0 to 240; 0: never automatically.",
            ),
        ),
    ),
    (
        "Referral, in work and sustainment",
        (
            Field(
                "public_name",
                "Service name in the welcome text",
                "As participants know it; blank: 'the employment team'.",
            ),
            Field("referral_sources", "Referral sources", "Short codes, comma-separated; 'other' is always offered."),
            Field("welcome_text", "Send new referrals a welcome text"),
            Field("waiting_checkin_every_weeks", "While waiting to start, check in every (weeks)", "1 to 8."),
            Field("in_work_weekly_weeks", "After a job start, weekly check-ins for (weeks)", "0 to 26."),
            Field("in_work_every_weeks", "Then check in every (weeks)", "1 to 8."),
            Field("in_work_checkin_time", "In-work check-ins at", "Local time, HH:MM, inside the in-work hours."),
            Field("in_work_allowed_from", "In work, texts may arrive from", "Local time, HH:MM."),
            Field("in_work_allowed_until", "In work, texts stop at", "Local time, HH:MM."),
            Field("sustainment_weeks", "Ask 'still in work?' after (weeks)", "Comma-separated, e.g. 13,26."),
        ),
    ),
)
LABELS = {f.name: f.label for _, group in GROUPS for f in group}
CHOICES: dict[str, tuple[tuple[str, str], ...]] = {
    "holiday_region": (("ENG", "England"), ("WLS", "Wales"), ("SCT", "Scotland"), ("NIR", "Northern Ireland")),
    "nation": tuple(NATIONS.items()),
    "questionnaire_by": tuple(QUESTIONNAIRE_BY.items()),
    "questionnaire_instruments": (("phq9", "PHQ-9"), ("gad7", "GAD-7"), ("wsas", "WSAS")),
    "rules_off": tuple((rule, label) for rule, label in RULES.items()),
}


class SettingsError(ValueError):
    """One message per field that could not be saved; nothing was changed."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


# Settings chosen from a list, read in the list's own case: "nation=Wales" is "wales".
_CHOICE_CASE = {
    "nation": str.lower,
    "questionnaire_by": str.lower,
    "questionnaire_instruments": str.lower,
    "holiday_region": str.upper,
}


def parse_value(name: str, text: str) -> Any:
    """A setting's value from text: lists comma-separated, yes/no for switches. Raises ValueError."""
    kind = KINDS[name]
    text = _CHOICE_CASE.get(name, str.strip)(text.strip())
    if "tuple[int" in kind:
        values = [v.strip() for v in text.split(",") if v.strip()]
        if any(not v.isdigit() or len(v) > 4 for v in values):
            raise ValueError("give whole numbers separated by commas")
        return tuple(int(v) for v in values)
    if "tuple[str" in kind:
        return tuple(v.strip() for v in text.split(",") if v.strip())
    if kind == "int":
        if not text.lstrip("-").isdigit() or len(text) > 6:
            raise ValueError("give a whole number")
        return int(text)
    if kind == "bool":
        lowered = text.lower()
        if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ValueError("give yes or no")
        return lowered in ("1", "true", "yes", "on")
    if len(text) > 254:
        raise ValueError("too long")
    return text


def check(current: ServiceSettings, values: dict[str, Any]) -> ServiceSettings:
    """The new settings, or SettingsError naming each field at fault.

    A service without a duty contact (one that predates the rule, or was made by an import)
    can change nothing else until it names one: the refusal says what is missing."""
    unknown = [k for k in values if k not in KINDS]
    if unknown:
        raise SettingsError({k: f"unknown setting: one of {', '.join(KINDS)}" for k in unknown})
    errors: dict[str, str] = {}
    for name, value in values.items():
        # Each change on its own against settings known to be good: a failure is this field's.
        try:
            replace(current, **{name: value}).validate()
        except ValueError as exc:
            errors[name] = str(exc)
    # The rules between fields and the duty contact are checked on the changes that passed, so
    # one refusal names every problem.
    good = {k: v for k, v in values.items() if k not in errors}
    new = replace(current, **good)
    try:
        new.validate()
    except ValueError as exc:  # a rule between fields (quiet hours): the fields it names
        for name in [k for k in good if k in str(exc)] or list(good):
            errors.setdefault(name, str(exc))
    problem = duty_contact_problem(new) if values else None
    if problem:
        # Shown beside the missing field, and beside the questionnaires if they are being turned on.
        errors.setdefault("duty_contact_email", problem)
        if "questionnaire_instruments" in values and new.questionnaire_instruments:
            errors.setdefault("questionnaire_instruments", problem)
    if errors:
        raise SettingsError(errors)
    return new


def change_settings(
    db: Session, service: Service, values: dict[str, Any], *, by: str, now: datetime
) -> dict[str, tuple[Any, Any]]:
    """Save checked settings, audit old -> new, and re-plan what they schedule. Returns what changed."""
    current = ServiceSettings.from_json(service.settings)
    new = check(current, values)
    before, after = current.to_json(), new.to_json()
    changed = {k: (before[k], after[k]) for k in after if before[k] != after[k]}
    if not changed:
        return {}
    service.settings = after
    db.add(service)
    changes = {k: {"old": old, "new": new_value} for k, (old, new_value) in changed.items()}
    audit_as(db, by, service.id, "service_settings", now, detail={"changes": changes})
    db.flush()
    if any(k.startswith("questionnaire_") for k in changed):
        from assistant.care.measures import plan_questionnaires

        for participant in db.exec(select(Participant).where(Participant.service_id == service.id)).all():
            plan_questionnaires(db, participant, now)
    if changed.keys() & set(REMINDER_FIELDS):
        replan_reminders(db, service, now)
    return changed


def replan_reminders(db: Session, service: Service, now: datetime) -> int:
    """Upcoming appointments' reminders again at the service's new timings. Reminders sent stay sent."""
    from assistant.contact.appointments import REMINDER_TASKS, plan_reminders

    people = select(Participant.id).where(Participant.service_id == service.id)
    for task in db.exec(
        select(DueTask).where(
            col(DueTask.participant_id).in_(people),
            col(DueTask.kind).in_(REMINDER_TASKS),
            DueTask.status == TaskStatus.PENDING,
        )
    ).all():
        task.status, task.outcome, task.done_at = TaskStatus.CANCELLED, "settings_changed", now
        db.add(task)
    db.flush()
    upcoming = db.exec(
        select(Appointment, Participant)
        .join(Participant, col(Participant.id) == col(Appointment.participant_id))
        .where(
            Participant.service_id == service.id,
            col(Appointment.outcome).is_(None),
            col(Appointment.starts_at) > now,
        )
    ).all()
    for appointment, participant in upcoming:
        plan_reminders(db, appointment, participant, now)
    return len(upcoming)
