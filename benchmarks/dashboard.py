"""Dashboard benchmark: the main pages for a specialist with 40 participants and for a service of 5,000.

    .venv/bin/python benchmarks/dashboard.py [--participants 5000] [--runs 30] [--database sqlite|URL]

Builds a temporary database (SQLite unless a PostgreSQL URL is given) with one service:
125 specialists of 40 participants each in teams of 8, and for every participant a
realistic history (check-ins and replies, appointments, questionnaire scores, open
flags, pending check-ins). Then signs in as a specialist, a team lead and a service
admin and times each page through Flask's test client (the whole app: sessions,
CSRF, access scoping, templates), printing the median and 95th percentile in ms, the
SQL statements each page ran, and the ratio to a trivial endpoint in the same app.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402
from sqlmodel import select  # noqa: E402

from assistant.app import create_app  # noqa: E402
from assistant.auth import hash_password  # noqa: E402
from assistant.clock import FixedClock  # noqa: E402
from assistant.config import load_settings  # noqa: E402
from assistant.db.models import (  # noqa: E402
    Answer,
    Appointment,
    DueTask,
    Flag,
    Measure,
    Message,
    Participant,
    Service,
    Specialist,
    User,
)
from assistant.db.units import transaction, upgrade  # noqa: E402
from assistant.runtime import build_runtime  # noqa: E402

NOW = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
PASSWORD = "benchmark password 2026"
PER_SPECIALIST = 40
TEAM_SIZE = 8
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def seed(engine: Any, n: int) -> dict[str, Any]:
    """The service, written in bulk (the import path is measured elsewhere)."""
    with transaction(engine) as db:
        service = Service(slug="bench", name="Bench", settings={"questionnaire_instruments": ["phq9", "gad7"]})
        db.add(service)
        db.flush()
        assert service.id is not None
        count = max(1, n // PER_SPECIALIST)
        specialists = [
            Specialist(
                email=f"es{i}@example.org", name=f"Specialist {i}", service_id=service.id, team=f"team{i // TEAM_SIZE}"
            )
            for i in range(count)
        ]
        db.add_all(specialists)
        db.flush()
        names = ("Alex", "Jordan", "Priya", "Morgan", "Casey", "Sam", "Robin", "Kim", "Chris", "Dana")
        db.execute(
            Participant.__table__.insert(),  # type: ignore[attr-defined]
            [
                {
                    "service_id": service.id,
                    "external_id": f"B{i:06d}",
                    "first_name": names[i % len(names)],
                    "phone": f"+4479{i:08d}",
                    "specialist_id": specialists[i % count].id,
                    "cohort": "in_work" if i % 4 == 0 else "out_of_work",
                    "checkin_day": i % 5,
                    "checkin_time": "10:30",
                    "checkin_every_weeks": 4 if i % 4 == 0 else 1,
                    "timezone": "Europe/London",
                    "language": "en-GB",
                    "opted_out": i % 97 == 0,
                    "unreachable": i % 89 == 0,
                    "paused": i % 83 == 0,
                    "show_location": False,
                    "sms_consent": True,
                    "tags": [],
                    "last_inbound_at": NOW - timedelta(hours=(i * 7) % 600) if i % 5 else None,
                    "created_at": NOW - timedelta(days=120),
                    "updated_at": NOW - timedelta(days=120),
                }
                for i in range(n)
            ],
        )
        people = db.exec(select(Participant.id, Participant.specialist_id).order_by(Participant.id)).all()  # type: ignore[arg-type]
        messages, answers, appointments, measures, flags, tasks = [], [], [], [], [], []
        for k, (pid, sid) in enumerate(people):
            for week in range(8):  # eight weekly check-ins, most answered
                at = NOW - timedelta(weeks=8 - week, hours=k % 5)
                messages.append(_message(pid, "out", "Hi, how has your week been? Reply 1 good, 2 ok, 3 not great", at))
                if (k + week) % 3:
                    messages.append(_message(pid, "in", "good", at + timedelta(hours=2)))
                    answers.append(
                        {"participant_id": pid, "flow": "checkin", "question": "week", "value": "good", "raw": "good"}
                        | {"at": at + timedelta(hours=2), "late": False}
                    )
            for a in range(2):
                starts = NOW + timedelta(days=(k % 20) - 10 + a * 14, hours=1)
                appointments.append(
                    {
                        "participant_id": pid,
                        "external_id": f"A{k}-{a}",
                        "starts_at": starts,
                        "duration_minutes": 60,
                        "kind": "meeting",
                        "location": "",
                        "with_whom": "",
                        "outcome": ("attended" if k % 7 else "dna") if starts < NOW else None,
                        "version": 1,
                        "created_at": NOW - timedelta(days=30),
                    }
                )
            if k % 5 < 2:  # four in ten have questionnaire scores over time
                for q in range(3):
                    for instrument, total in (("phq9", 17 - q * 3 - k % 4), ("gad7", 14 - q * 2 - k % 3)):
                        measures.append(
                            {
                                "participant_id": pid,
                                "instrument": instrument,
                                "status": "complete",
                                "total": max(0, total),
                                "band": "moderate",
                                "items": {},
                                "completed_at": NOW - timedelta(weeks=12 - 4 * q, minutes=k % 60),
                            }
                        )
            if k % 5 == 0:  # one in five has an open flag, one in fifty an urgent one
                severity, kind = ("urgent", "crisis") if k % 50 == 0 else ("action", "callback_requested")
                flags.append(
                    {
                        "participant_id": pid,
                        "specialist_id": sid,
                        "kind": kind,
                        "severity": severity,
                        "reason": "Asked for a call",
                        "status": "open",
                        "evidence": [],
                        "created_at": NOW - timedelta(hours=k % 72 + 2),
                    }
                )
            tasks.append(
                {
                    "participant_id": pid,
                    "kind": "checkin",
                    "due_at": NOW + timedelta(hours=k % 160 + 1),
                    "status": "pending",
                    "payload": {},
                    "created_at": NOW,
                }
            )
        for model, rows in (
            (Message, messages),
            (Answer, answers),
            (Appointment, appointments),
            (Measure, measures),
            (Flag, flags),
            (DueTask, tasks),
        ):
            db.execute(model.__table__.insert(), rows)  # type: ignore[attr-defined]
        hashed = hash_password(PASSWORD)
        db.add_all(
            [
                User(
                    email="es0@example.org",
                    password_hash=hashed,
                    role="specialist",
                    service_id=service.id,
                    specialist_id=specialists[0].id,
                ),
                User(
                    email="lead@example.org",
                    password_hash=hashed,
                    role="team_lead",
                    service_id=service.id,
                    team="team0",
                ),
                User(email="admin@example.org", password_hash=hashed, role="service_admin", service_id=service.id),
            ]
        )
        first_of_es0 = people[0][0]
        return {
            "participant": first_of_es0,
            "rows": {
                "participants": n,
                "specialists": count,
                "messages": len(messages),
                "appointments": len(appointments),
                "scores": len(measures),
                "open flags": len(flags),
            },
        }


def _message(pid: int, direction: str, body: str, at: datetime) -> dict[str, Any]:
    return {
        "participant_id": pid,
        "direction": direction,
        "body": body,
        "at": at,
        "status": "delivered" if direction == "out" else "received",
        "phone": "+447900000000",
        "attempts": 1,
        "segments": 1,
        "automated": direction == "out",
    }


def sign_in(app: Any, email: str) -> Any:
    client = app.test_client()
    token = TOKEN.search(client.get("/login").get_data(as_text=True))
    assert token
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def timed(fetch: Callable[[], Any], runs: int, statements: list[int]) -> tuple[list[float], int]:
    for _ in range(3):  # warm: templates compiled, caches filled
        response = fetch()
        assert response.status_code == 200, response.status_code
    times = []
    before = statements[0]
    for _ in range(runs):
        start = time.perf_counter()
        response = fetch()
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return times, (statements[0] - before) // runs


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--database", default="sqlite", help="sqlite, or a PostgreSQL URL (its tables are used as is)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db" if args.database == "sqlite" else args.database
        upgrade(url)
        settings = replace(load_settings({}), database_url=url, console_log=Path(tmp) / "sms.jsonl")
        rt = build_runtime(settings, clock=FixedClock(NOW))
        start = time.perf_counter()
        world = seed(rt.engine, args.participants)
        print(
            f"seeded in {time.perf_counter() - start:.1f}s: "
            + ", ".join(f"{v:,} {k}" for k, v in world["rows"].items())
        )
        statements = [0]

        @event.listens_for(rt.engine, "before_cursor_execute")
        def count(*_args: Any) -> None:
            statements[0] += 1

        app = create_app(runtime=rt)
        app.add_url_rule("/bench-trivial", "bench_trivial", lambda: "ok")
        specialist, lead, admin = (
            sign_in(app, e) for e in ("es0@example.org", "lead@example.org", "admin@example.org")
        )
        pages: list[tuple[str, Callable[[], Any]]] = [
            ("trivial endpoint (same app)", lambda: specialist.get("/bench-trivial")),
            ("caseload, specialist (40)", lambda: specialist.get("/")),
            ("caseload, team lead (320)", lambda: lead.get("/")),
            (f"caseload, admin ({args.participants:,}; page 1)", lambda: admin.get("/")),
            ("caseload, admin, by next contact, page 13", lambda: admin.get("/?sort=next_contact&page=13")),
            ("caseload, admin, flagged only", lambda: admin.get("/?show=flagged")),
            ("flags, specialist", lambda: specialist.get("/flags")),
            ("flags, admin (whole service)", lambda: admin.get("/flags")),
            ("team, team lead", lambda: lead.get("/team")),
            ("team, admin (whole service)", lambda: admin.get("/team")),
            ("participant record, specialist", lambda: specialist.get(f"/participants/{world['participant']}")),
            ("imports, admin", lambda: admin.get("/imports")),
            ("settings, admin", lambda: admin.get("/settings")),
        ]
        results = []
        for name, fetch in pages:
            times, per_request = timed(fetch, args.runs, statements)
            times.sort()
            median = statistics.median(times)
            p95 = times[min(len(times) - 1, round(0.95 * len(times)) - 1)]
            results.append((name, median, p95, per_request))
        base = results[0][1]
        print(f"\n{args.runs} requests per page after 3 warm-up requests; {args.database}")
        print(f"{'page':<46} {'median ms':>10} {'p95 ms':>8} {'x trivial':>10} {'SQL/request':>12}")
        for name, median, p95, per_request in results:
            print(f"{name:<46} {median:>10.1f} {p95:>8.1f} {median / base:>10.1f} {per_request:>12}")
        rt.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
