"""The caseload list pages through a large service in the database: filters and sorting cover every
page, not just the one shown."""

from __future__ import annotations

import re
from typing import Any

import pytest

from assistant.db.models import Flag
from assistant.db.units import transaction
from assistant.web import caseload as caseload_view
from assistant.web import flags as flags_view

from .conftest import World

NAMES = re.compile(r'/participants/\d+">([^<]+)</a>')


def _names(client: Any, query: str) -> list[str]:
    return NAMES.findall(client.get("/?" + query).get_data(as_text=True))


@pytest.fixture
def two_per_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caseload_view, "PAGE", 2)


def test_pages_cover_the_service_in_order(as_user: Any, world: World, two_per_page: None) -> None:
    client = as_user("admin@example.org")
    first, second = _names(client, "sort=name&page=1"), _names(client, "sort=name&page=2")
    assert first + second == ["Alex", "Jordan", "Morgan", "Priya"]
    page = client.get("/?sort=name&page=1").get_data(as_text=True)
    assert "nhsuk-pagination" in page and "Page 2 of 2" in page and "of 4 participants" in page
    assert _names(client, "sort=name&page=99") == second  # past the end: the last page


def test_filters_and_sorts_apply_before_paging(as_user: Any, world: World, two_per_page: None) -> None:
    with transaction(world.rt.engine) as db:
        for pid, severity in (("P004", "urgent"), ("P003", "info")):
            person = world.participant(pid)
            db.add(
                Flag(
                    participant_id=person.id,
                    specialist_id=person.specialist_id,
                    kind="callback",
                    severity=severity,
                    reason="test",
                    created_at=world.rt.clock.now(),
                )
            )
    client = as_user("admin@example.org")
    # Morgan's urgent flag first, Priya's info next, whatever their names' order.
    assert _names(client, "sort=flags&page=1") == ["Morgan", "Priya"]
    assert _names(client, "show=flagged&sort=name") == ["Morgan", "Priya"]
    assert "nhsuk-pagination" not in client.get("/?show=flagged").get_data(as_text=True)
    assert _names(client, "cohort=in_work") == ["Jordan"]
    # A specialist pages through their own caseload only.
    sam = as_user("sam@example.org")
    assert _names(sam, "sort=name") == ["Alex", "Jordan"]


FLAG_NAMES = re.compile(r'/participants/\d+">([^<]+) \((P\d+)\)</a>')


def test_open_flags_page_urgent_first_then_oldest_a_page_at_a_time(
    as_user: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    monkeypatch.setattr(flags_view, "FLAGS_PAGE", 2)
    now = world.rt.clock.now()
    with transaction(world.rt.engine) as db:
        for pid, severity, kind, hours_ago in (
            ("P001", "info", "campaign_interest", 50),
            ("P002", "action", "callback", 10),
            ("P003", "urgent", "crisis", 1),
            ("P004", "action", "not_responding", 20),
            ("P005", "urgent", "crisis", 2),  # another service's participant
        ):
            person = world.participant(pid)
            db.add(
                Flag(
                    participant_id=person.id,
                    specialist_id=person.specialist_id,
                    kind=kind,
                    severity=severity,
                    reason="test",
                    created_at=now - timedelta(hours=hours_ago),
                )
            )

    def shown(client: Any, page: int) -> list[str]:
        return [pid for _name, pid in FLAG_NAMES.findall(client.get(f"/flags?page={page}").get_data(as_text=True))]

    admin = as_user("admin@example.org")
    assert shown(admin, 1) == ["P003", "P004"] and shown(admin, 2) == ["P002", "P001"]
    assert shown(admin, 9) == ["P002", "P001"]  # past the end: the last page
    page = admin.get("/flags").get_data(as_text=True)
    assert "4 open flags" in page and "Page 2 of 2" in page
    assert shown(as_user("sam@example.org"), 1) == ["P002", "P001"]  # only their own
    assert "nhsuk-pagination" not in as_user("sam@example.org").get("/flags").get_data(as_text=True)
