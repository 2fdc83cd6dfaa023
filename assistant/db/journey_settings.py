"""Checks for the service settings of the journey's two ends: referral, welcome, in work, sustainment.

The values live on ServiceSettings with the others; these checks are kept here so the
journey's rules read in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistant.engine import is_gsm7
from assistant.timing import parse_hhmm

if TYPE_CHECKING:
    from assistant.db.service_settings import ServiceSettings

OTHER_SOURCE = "other"


def check_journey_settings(settings: ServiceSettings) -> None:
    name = settings.public_name
    if len(name) > 60 or not name.isprintable() or not is_gsm7(name):
        raise ValueError("public_name must be at most 60 plain characters (no curly quotes or emoji)")
    for source in settings.referral_sources:
        if not source or len(source) > 64 or not source.replace("_", "").isalnum() or source != source.lower():
            raise ValueError(f"referral_sources: {source!r} must be a short lower-case code like self_referral")
    if not 1 <= settings.waiting_checkin_every_weeks <= 8:
        raise ValueError("waiting_checkin_every_weeks must be 1-8")
    if not 0 <= settings.in_work_weekly_weeks <= 26 or not 1 <= settings.in_work_every_weeks <= 8:
        raise ValueError("in_work_weekly_weeks must be 0-26 and in_work_every_weeks 1-8")
    start = parse_hhmm(settings.in_work_allowed_from)
    end = parse_hhmm(settings.in_work_allowed_until)
    if start >= end:
        raise ValueError("in_work_allowed_from must be earlier in the day than in_work_allowed_until")
    if not start <= parse_hhmm(settings.in_work_checkin_time) < end:
        raise ValueError("in_work_checkin_time must be inside the in-work allowed hours")
    if any(not 1 <= w <= 104 for w in settings.sustainment_weeks):
        raise ValueError("sustainment_weeks must each be 1-104")


def referral_choices(settings: ServiceSettings) -> tuple[str, ...]:
    """The service's pre-coded referral sources, and "other"."""
    return (*(s for s in settings.referral_sources if s != OTHER_SOURCE), OTHER_SOURCE)
