"""The report pages show each user only the people within their reach; the CSV exports are for team
leads and admins and carry ids, not names; the record page shows outcomes and the PHQ/GAD attribution."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from assistant.db.models import ContactLog, Measure
from assistant.db.units import transaction

from .conftest import World

WEEK = "2026-11-23"


def _seed(world: World) -> None:
    with transaction(world.rt.engine) as db:
        db.add(ContactLog(participant_id=world.ids["P001"], at=datetime(2026, 11, 24, 10, tzinfo=UTC),
                          channel="phone", logged_by="sam@example.org"))  # fmt: skip
        for when, phq, gad in ((datetime(2026, 11, 2, tzinfo=UTC), 8, 5), (datetime(2026, 11, 23, tzinfo=UTC), 3, 2)):
            for instrument, total in (("phq9", phq), ("gad7", gad)):
                db.add(Measure(participant_id=world.ids["P001"], instrument=instrument, status="complete",
                               total=total, started_at=when, completed_at=when))  # fmt: skip


def test_a_specialist_sees_only_their_own_people(as_user: Any, world: World) -> None:
    _seed(world)
    page = as_user("sam@example.org").get(f"/reports/contact?week={WEEK}").get_data(as_text=True)
    assert "Jordan (P002)" in page and "Priya" not in page and "Morgan" not in page
    assert "Alex (P001)" not in page  # contacted: not listed among those not reached
    assert "1 of 2 (50.0%)" in page
    assert as_user("sam@example.org").get(f"/reports/contact.csv?week={WEEK}").status_code == 404


def test_an_admin_sees_the_service_and_exports_ids_only(as_user: Any, world: World) -> None:
    _seed(world)
    client = as_user("admin@example.org")
    page = client.get(f"/reports/contact?week={WEEK}").get_data(as_text=True)
    assert all(f"({pid})" in page for pid in ("P002", "P003", "P004")) and "Casey" not in page  # south
    assert "1 of 4 (25.0%)" in page
    export = client.get(f"/reports/contact.csv?week={WEEK}")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    body = export.get_data(as_text=True)
    assert "P003" in body and not any(name in body for name in ("Alex", "Jordan", "Priya", "Morgan", "0770"))
    outcomes = client.get("/reports/outcomes?from=2026-11-01&to=2026-11-30").get_data(as_text=True)
    assert "Spitzer" in outcomes and "0 of 0" in outcomes  # below caseness: no recovery denominator
    assert client.get("/reports/outcomes.csv?from=2026-11-01&to=2026-11-30").status_code == 200


def test_the_record_says_recovery_is_not_applicable_below_caseness(as_user: Any, world: World) -> None:
    _seed(world)
    page = as_user("sam@example.org").get(f"/participants/{world.ids['P001']}").get_data(as_text=True)
    assert "not applicable (below caseness at first)" in page and "not recovered" not in page
    assert "Kroenke" in page and "Pfizer" in page
