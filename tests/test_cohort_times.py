"""Times per cohort: in-work settings replace the service's times for people in work only."""

from __future__ import annotations

import pytest

from assistant.db.cohort_times import for_cohort
from assistant.db.service_settings import ServiceSettings


def test_in_work_times_apply_to_people_in_work_only() -> None:
    settings = ServiceSettings.from_json(
        {
            "in_work_reminder_time": "18:30",
            "in_work_dna_times": ["07:30", "19:00"],
            "in_work_questionnaire_time": "19:15",
        }
    )
    in_work = for_cohort(settings, "in_work")
    assert (in_work.reminder_time, in_work.dna_times, in_work.questionnaire_time) == (
        "18:30",
        ("07:30", "19:00"),
        "19:15",
    )
    assert in_work.interview_good_luck_time == settings.interview_good_luck_time  # not set: as for everyone
    out_of_work = for_cohort(settings, "out_of_work")
    assert (out_of_work.reminder_time, out_of_work.dna_times) == ("10:00", ("10:00", "14:00", "17:30"))


def test_unset_in_work_times_change_nothing() -> None:
    settings = ServiceSettings()
    assert for_cohort(settings, "in_work") is settings


def test_in_work_times_are_checked() -> None:
    with pytest.raises(ValueError):
        ServiceSettings.from_json({"in_work_reminder_time": "half six"})
    with pytest.raises(ValueError):
        ServiceSettings.from_json({"in_work_dna_times": ["7"]})
