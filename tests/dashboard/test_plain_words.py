"""Times in words on the dashboard: days are calendar days where the service is."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from assistant.web.plain import ago

THURSDAY_4PM = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("then", "said"),
    [
        (datetime(2026, 12, 5, 10, 0, tzinfo=UTC), "in 2 days"),  # 42 hours ahead, but Saturday
        (datetime(2026, 12, 4, 9, 0, tzinfo=UTC), "in 17 hours"),
        (datetime(2026, 12, 4, 23, 0, tzinfo=UTC), "tomorrow"),
        (datetime(2026, 12, 1, 20, 0, tzinfo=UTC), "2 days ago"),  # 44 hours back, but Tuesday
        (datetime(2026, 12, 2, 10, 0, tzinfo=UTC), "yesterday"),
        (datetime(2026, 12, 3, 15, 58, tzinfo=UTC), "2 minutes ago"),
        (None, "never"),
    ],
)
def test_ago_counts_calendar_days(then: datetime | None, said: str) -> None:
    assert ago(then, THURSDAY_4PM, "Europe/London") == said


def test_a_day_is_counted_where_the_service_is() -> None:
    """Thursday 10:30 UTC is 23:30 on Thursday in Auckland; Friday 12:00 UTC is Saturday there."""
    now, then = datetime(2026, 12, 3, 10, 30, tzinfo=UTC), datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    assert ago(then, now, "Europe/London") == "tomorrow"
    assert ago(then, now, "Pacific/Auckland") == "in 2 days"
