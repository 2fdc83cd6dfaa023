"""Golden-script steps for what the specialist records: a job start, an exit (support end).

[[step]]
record = { job_start = "2026-12-01", hours = 16, sector = "retail" }
record = { exit = "job", goodbye = true }          # ends today
record = { support_start = "2026-12-10" }
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlmodel import select

from assistant.contact.referrals import start_support
from assistant.contact.support_end import end_support, send_goodbye
from assistant.contact.work import record_job_start
from assistant.db.models import Participant
from assistant.db.units import lock_participant, transaction
from assistant.runtime import Runtime

BY = "sam.jones@example.org"


def record_step(rt: Runtime, spec: dict[str, Any], now: datetime) -> None:
    with transaction(rt.engine) as db:
        found = db.exec(select(Participant)).one()
        assert found.id is not None
        person = lock_participant(db, found.id)
        assert person is not None
        if "job_start" in spec:
            record_job_start(
                db,
                person,
                started_on=date.fromisoformat(spec["job_start"]),
                hours=float(spec.get("hours", 16)),
                employer=spec.get("employer", ""),
                sector=spec.get("sector", "retail"),
                by=BY,
                now=now,
            )
        if "support_start" in spec:
            start_support(db, person, date.fromisoformat(spec["support_start"]), now)
        if "exit" in spec:
            ends_on = date.fromisoformat(spec["ends_on"]) if "ends_on" in spec else now.date()
            end_support(db, person, reason=spec["exit"], ends_on=ends_on, by=BY, now=now)
            if spec.get("goodbye"):
                send_goodbye(db, rt, person, now)
