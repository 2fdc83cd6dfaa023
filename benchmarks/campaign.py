"""Campaign benchmark: plan and queue a campaign for N participants, then drain the outbox
through the real sender against the Twilio API mock, measuring the send rate against the limit.

    .venv/bin/python benchmarks/campaign.py [--participants 100000] [--database sqlite|postgresql] [--drain 300]

Prints wall time, peak memory and messages queued per second for planning and for
queueing, then the measured send rate next to the configured rate limit.
"""

from __future__ import annotations

import argparse
import io
import resource
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlmodel import select  # noqa: E402

from assistant import campaigns  # noqa: E402
from assistant.clock import FixedClock  # noqa: E402
from assistant.config import load_settings  # noqa: E402
from assistant.db import transaction, upgrade  # noqa: E402
from assistant.models import Message, Participant, Service, Specialist  # noqa: E402
from assistant.outbox import send_due  # noqa: E402
from assistant.runtime import build_runtime  # noqa: E402

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed(rt: object, n: int) -> int:
    """N participants over 60 specialists, written in bulk (the import path is measured elsewhere)."""
    engine = rt.engine  # type: ignore[attr-defined]
    with transaction(engine) as db:
        service = Service(slug="bench", name="bench")
        db.add(service)
        db.flush()
        specialists = [
            Specialist(email=f"es{i}@example.org", name=f"Specialist {i}", service_id=service.id) for i in range(60)
        ]
        db.add_all(specialists)
        db.flush()
        rows = [
            {
                "service_id": service.id,
                "external_id": f"B{i:06d}",
                "first_name": "Sam",
                "phone": f"+4479{i:08d}",
                "specialist_id": specialists[i % 60].id,
                "cohort": "out_of_work",
                "checkin_day": 1,
                "checkin_time": "10:30",
                "checkin_every_weeks": 1,
                "timezone": "Europe/London",
                "language": "en-GB",
                "opted_out": False,
                "unreachable": False,
                "paused": False,
                "show_location": False,
                "sms_consent": True,
                "tags": [],
                "created_at": NOW,
            }
            for i in range(n)
        ]
        db.execute(Participant.__table__.insert(), rows)  # type: ignore[attr-defined]
        assert service.id is not None
        return service.id


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--database", default="sqlite", help="sqlite, or a PostgreSQL URL")
    parser.add_argument("--drain", type=int, default=300, help="messages to send through the rate-limited sender")
    parser.add_argument("--rate", type=float, default=10.0, help="segments per second per sending number")
    parser.add_argument("--twilio-api", default="", help="URL of a Twilio API mock (else the console transport)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db" if args.database == "sqlite" else args.database
        upgrade(url)
        settings = replace(
            load_settings({}), database_url=url, console_log=Path(tmp) / "sms.jsonl", send_rate=args.rate
        )
        if args.twilio_api:
            settings = replace(
                settings,
                sms_transport="twilio",
                twilio_api_url=args.twilio_api,
                twilio_account_sid="AC" + "1" * 32,
                twilio_from_number="+447700900000",
            )
        from assistant.sms import ConsoleTransport, TwilioTransport

        transport = (
            TwilioTransport(settings) if args.twilio_api else ConsoleTransport(record=None, stream=io.StringIO())
        )
        rt = build_runtime(settings, clock=FixedClock(NOW), transport=transport)
        start = time.perf_counter()
        service_id = seed(rt, args.participants)
        seeded = time.perf_counter() - start
        start = time.perf_counter()
        with transaction(rt.engine) as db:
            campaigns.create(
                db,
                service_id=service_id,
                name="Benchmark",
                text="Hi {{ first_name }}, drop-in CV clinic on Tuesday. {{ specialist_name }}",
                audience={},
                created_by="bench",
                now=NOW,
                send_at=NOW,
            )
        planned = time.perf_counter() - start
        start = time.perf_counter()
        queued = campaigns.run_due(rt, NOW)
        queueing = time.perf_counter() - start
        print(f"participants: {args.participants:,} ({args.database}); seeded in {seeded:.1f}s")
        print(f"plan: {planned:.1f}s, {args.participants / planned:,.0f} recipients/s")
        print(f"queue: {queueing:.1f}s, {queued / queueing:,.0f} messages queued/s ({queued:,} queued)")
        print(f"peak memory: {peak_mb():.0f} MB")
        with transaction(rt.engine) as db:
            ids = [m for m in db.exec(select(Message.id).where(Message.status == "queued").limit(args.drain)).all()]
        start = time.perf_counter()
        report = send_due(rt, NOW, only=ids, limit=args.drain)
        drained = time.perf_counter() - start
        measured = report.sent / drained if drained else 0.0
        print(
            f"send: {report.sent} sent in {drained:.1f}s = {measured:.2f} segments/s against a limit of "
            f"{args.rate * rt.transport.senders:.2f} ({100 * measured / (args.rate * rt.transport.senders):.1f}% of it)"
        )
        rt.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
