"""Times per cohort: people in work get reminders, follow-ups and questionnaires outside
working hours, at the times their service chose for them (service settings `in_work_*`).
An empty setting means the service's time for everyone."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # service_settings applies these: a type only here
    from assistant.db.service_settings import ServiceSettings

# Cohort -> the settings whose values replace the service-wide ones, by name.
OVERRIDES: dict[str, tuple[tuple[str, str], ...]] = {
    "in_work": (
        ("in_work_reminder_time", "reminder_time"),
        ("in_work_interview_good_luck_time", "interview_good_luck_time"),
        ("in_work_dna_times", "dna_times"),
        ("in_work_questionnaire_time", "questionnaire_time"),
    ),
}


def for_cohort(settings: ServiceSettings, cohort: str) -> ServiceSettings:
    """The service's settings as they apply to one cohort."""
    changes = {
        target: getattr(settings, source) for source, target in OVERRIDES.get(cohort, ()) if getattr(settings, source)
    }
    return replace(settings, **changes) if changes else settings
