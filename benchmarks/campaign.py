"""Campaign benchmark: plan and queue a campaign for N participants, then drain the outbox
through the real sender against the Twilio API mock, measuring the send rate against the limit.

    .venv/bin/python benchmarks/campaign.py                       # 100,000 on SQLite, then drain 300
    .venv/bin/python benchmarks/campaign.py --database postgresql # a throwaway PostgreSQL server
    .venv/bin/python benchmarks/campaign.py --sizes 10000,100000,1000000 --drain 0

Prints wall time, peak memory and messages queued per second for planning and for
queueing (each size in its own process, so peaks are its own), how cost grows with
size, then the measured send rate next to the configured rate limit.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine  # noqa: E402

from assistant.clock import FixedClock  # noqa: E402
from assistant.config import load_settings  # noqa: E402
from assistant.contact import campaigns  # noqa: E402
from assistant.db.models import Participant, Service, Specialist  # noqa: E402
from assistant.db.units import transaction, upgrade  # noqa: E402
from assistant.runtime import build_runtime  # noqa: E402
from assistant.sending.sender import send_due  # noqa: E402
from assistant.transports import ConsoleTransport, SendResult, TwilioTransport  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from machine import Timer, describe_code  # noqa: E402

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
        for first in range(0, n, 10_000):  # in chunks, so seeding does not set the memory peak
            rows = [
                {
                    "service_id": service.id,
                    "external_id": f"B{i:07d}",
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
                for i in range(first, min(n, first + 10_000))
            ]
            db.execute(Participant.__table__.insert(), rows)  # type: ignore[attr-defined]
        assert service.id is not None
        return service.id


def create_campaign(rt: Any, service_id: int) -> None:
    """The campaign every run plans: everyone in the service, now, with two merge fields."""
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


def create_database(url: str, name: str) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()


def measure(n: int, database: str) -> dict[str, float]:
    """Plan and queue one campaign for n participants in a fresh database."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db" if database == "sqlite" else database
        upgrade(url)
        settings = replace(load_settings({}), database_url=url, console_log=Path(tmp) / "sms.jsonl")
        rt = build_runtime(settings, clock=FixedClock(NOW), transport=ConsoleTransport(stream=io.StringIO()))
        start = time.perf_counter()
        service_id = seed(rt, n)
        seeded = time.perf_counter() - start
        before = peak_mb()
        with Timer() as plan:
            create_campaign(rt, service_id)
        with Timer() as queue:
            queued = campaigns.run_due(rt, NOW)
        rt.engine.dispose()
    return {
        "participants": n,
        "seed_s": seeded,
        "plan_s": plan.phase.wall,
        "queue_s": queue.phase.wall,
        "plan_cpu_s": plan.phase.cpu,
        "queue_cpu_s": queue.phase.cpu,
        "others_cores": max(plan.phase.others_cores, queue.phase.others_cores),
        "queued": queued,
        "peak_mb": peak_mb(),
        "peak_before_mb": before,
    }


class TimedTwilioTransport(TwilioTransport):
    """The real transport, noting the wall-clock time each send starts (the clock is fixed)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent_at: list[float] = []

    def send(self, *, to: str, body: str, key: str, status_callback: str | None) -> SendResult:
        self.sent_at.append(time.perf_counter())  # the pacing promise is about when requests start
        return super().send(to=to, body=body, key=key, status_callback=status_callback)


def drain(count: int, rate: float, database: str) -> None:
    """Queue `count` campaign texts and send them through the real, paced sender to the Twilio API mock."""
    from tests.twilio_mock.server import TwilioMockUnavailable, start_twilio_mock

    try:
        mock = start_twilio_mock()
    except TwilioMockUnavailable as exc:
        print(f"send: skipped, the Twilio API mock is not installed ({exc})")
        return
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/drain.db" if database == "sqlite" else database
            upgrade(url)
            settings = replace(
                load_settings({}),
                database_url=url,
                send_rate=rate,
                sms_transport="twilio",
                twilio_api_url=mock.url,
                twilio_account_sid="AC" + "0123456789abcdef" * 2,
                twilio_auth_token="mock-auth-token-0123456789abcdef",
                twilio_from_number="+447700900000",
            )
            transport = TimedTwilioTransport(settings)
            rt = build_runtime(settings, clock=FixedClock(NOW), transport=transport)
            service_id = seed(rt, count)
            create_campaign(rt, service_id)
            campaigns.run_due(rt, NOW)
            start = time.perf_counter()
            report = send_due(rt, NOW, limit=count)
            drained = time.perf_counter() - start
            limit = rate * rt.transport.senders
            measured = report.sent / drained if drained else 0.0
            sent_at = transport.sent_at
            rt.engine.dispose()
    finally:
        mock.stop()
    worst = max((sum(1 for t in sent_at if s <= t < s + 1) for s in sent_at), default=0)
    print(
        f"send: {report.sent} of {count} sent to the Twilio API mock in {drained:.1f}s = {measured:.2f} segments/s "
        f"against a limit of {limit:.2f} ({100 * measured / limit:.1f}% of it); "
        f"busiest one-second window: {worst} (limit {limit:.0f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000", help="participants, comma separated (each in its own process)")
    parser.add_argument("--participants", type=int, help=argparse.SUPPRESS)  # one size, as JSON (internal)
    parser.add_argument("--database", default="sqlite", help="sqlite, postgresql (a throwaway server), or a URL")
    parser.add_argument("--drain", type=int, default=300, help="texts to send through the paced sender (0: none)")
    parser.add_argument("--rate", type=float, default=10.0, help="segments per second per sending number")
    args = parser.parse_args()
    if args.participants:
        print(json.dumps(measure(args.participants, args.database)))
        return 0
    server = None
    database = args.database
    if database == "postgresql":
        from tests.pg import start_postgres

        server = start_postgres()
    try:
        print(f"code: {describe_code()}; database: {args.database}", flush=True)
        results = []
        for n in (int(size) for size in args.sizes.split(",")):
            url = database
            if server is not None:
                url = server.url_for(f"bench{n}")
                create_database(server.url, f"bench{n}")
            out = subprocess.run(
                [sys.executable, __file__, "--participants", str(n), "--database", url],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            row = json.loads(out.strip().splitlines()[-1])
            results.append(row)
            print(
                f"{n:>9,} participants ({args.database}): plan {row['plan_s']:.1f}s "
                f"({n / row['plan_s']:,.0f}/s), queue {row['queue_s']:.1f}s ({row['queued'] / row['queue_s']:,.0f}"
                f" queued/s), peak memory {row['peak_mb']:.0f} MB (after seeding {row['peak_before_mb']:.0f} MB); "
                f"seeded in {row['seed_s']:.1f}s",
                flush=True,
            )
            # Per copy, against the bulk write of the same people in the same run (the baseline): the
            # database server's time is in the wall times, this process's CPU beside it.
            per_seed = row["seed_s"] / n * 1e6
            for step in ("plan", "queue"):
                per = row[f"{step}_s"] / n * 1e6
                print(
                    f"    {step}: {per:.0f} us a copy ({per / per_seed:.1f}x writing a participant in bulk,"
                    f" {per_seed:.0f} us); this process's CPU {row[f'{step}_cpu_s'] / n * 1e6:.0f} us a copy"
                )
            if row["others_cores"] > 0.15:
                server_too = " (the database server's own included)" if server is not None else ""
                print(
                    f"    WARNING: other processes{server_too} used up to {row['others_cores']:.2f} cores:"
                    " times may be inflated, compare the ratios"
                )
        if len(results) > 1:
            first = results[0]
            for row in results[1:]:
                grow = row["participants"] / first["participants"]
                print(
                    f"x{grow:g} participants: plan x{row['plan_s'] / first['plan_s']:.1f}, "
                    f"queue x{row['queue_s'] / first['queue_s']:.1f}, peak memory x{row['peak_mb'] / first['peak_mb']:.1f}"
                )
        aim = next((r for r in results if r["participants"] == 100_000), None)
        if aim:
            total = aim["plan_s"] + aim["queue_s"]
            print(
                f"aim (100,000 planned and queued in under 20 s, under 300 MB): {total:.1f}s, {aim['peak_mb']:.0f} MB: "
                + ("met" if total < 20 and aim["peak_mb"] < 300 else "MISSED")
            )
        if args.drain:
            if server is not None:
                create_database(server.url, "drain")
            drain(args.drain, args.rate, server.url_for("drain") if server else database)
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
