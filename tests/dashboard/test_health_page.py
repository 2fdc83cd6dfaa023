"""The clock's health page: service admins see each job's last run and their own service's failed
rows; nobody else sees the page at all."""

from __future__ import annotations

from typing import Any

from assistant.db.models import DueTask
from assistant.db.units import transaction
from assistant.jobs.tick import tick

from .conftest import World


def test_service_admins_see_the_failed_rows_of_their_service(world: World, as_user: Any) -> None:
    rt = world.rt
    now = rt.clock.now()
    north, south = world.participant("P001"), world.participant("P005")
    with transaction(rt.engine) as db:
        for person in (north, south):
            assert person.id is not None
            db.add(DueTask(participant_id=person.id, kind=f"broken_{person.external_id}", due_at=now, payload={}))
    assert tick(rt, now).failed_rows == 2
    page = as_user("admin@example.org").get("/health")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "broken_P001" in text and "KeyError" in text and "tasks" in text
    assert "broken_P005" not in text, "another service's rows were shown"
    for email in ("sam@example.org", "lead@example.org"):
        assert as_user(email).get("/health").status_code == 404
