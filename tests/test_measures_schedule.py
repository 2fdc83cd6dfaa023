"""The start-of-support questionnaire comes at the service's questionnaire time, not the moment it is planned."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from assistant.care.measures import plan_questionnaires
from assistant.db.models import Participant, Service
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload
from assistant.runtime import Runtime


@pytest.mark.parametrize(
    ("planned_at", "due"),
    [
        (datetime(2026, 11, 22, 12, 0, tzinfo=UTC), datetime(2026, 11, 23, 11, 0, tzinfo=UTC)),  # 11:00 gone: tomorrow
        (datetime(2026, 11, 23, 9, 0, tzinfo=UTC), datetime(2026, 11, 23, 11, 0, tzinfo=UTC)),  # later today
        (
            datetime(2026, 12, 24, 12, 0, tzinfo=UTC),
            datetime(2026, 12, 27, 11, 0, tzinfo=UTC),
        ),  # after the bank holidays
    ],
)
def test_start_questionnaire_at_the_services_time(
    rt: Runtime, caseload_file: Path, planned_at: datetime, due: datetime
) -> None:
    import_caseload(rt, caseload_file, planned_at)
    with transaction(rt.engine) as db:
        service = db.exec(select(Service)).first()
        assert service is not None
        service.settings = {"questionnaire_instruments": ["phq9"], "questionnaire_time": "11:00"}
        db.add(service)
        db.flush()
        person = db.exec(select(Participant).where(Participant.external_id == "P001")).one()
        task = plan_questionnaires(db, person, planned_at, reason="start")
        assert task is not None and task.due_at == due
