"""Benchmark the inbound-SMS webhook against a bare Flask endpoint, both under gunicorn.

    .venv/bin/python benchmarks/webhook.py            # full run, about 8 minutes
    .venv/bin/python benchmarks/webhook.py --quick    # short run, about 5 minutes (--grow 1: about 3)
    .venv/bin/python benchmarks/webhook.py --quick --db postgresql --workers 1,2,4

What it does (see benchmarks/README.md):
  1. Makes a throwaway SQLite database (or PostgreSQL server), imports a generated caseload and starts a
     check-in for everyone with the real CLI (`assistant db-upgrade`,
     `import-caseload`, `tick`), so every participant has a question waiting.
  2. Serves `benchmarks/bare_app.py` and then `assistant:create_app()` with the
     same gunicorn command line (2 sync workers, or each count of --workers; loopback only).
  3. Replays pre-signed Twilio webhook requests, each participant answering their
     check-in once: closed loop with wrk for the most requests per second, then
     open loop at a fixed rate (200/s) for latency.
  4. Checks the database: every request answered 200 was recorded exactly once.
  5. Grows the caseload (--grow times over, with people who do not text) and measures again, printing
     the cost of a request at both sizes: the cost should stay flat as the data grows.
  6. Stops everything it started and deletes the temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import http.client
import io
import json
import math
import os
import queue
import random
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# The tests' helpers, from this tree even when a --ref's code is put first on the path later.
sys.path.insert(0, str(ROOT))
from tests.procs import child_pids  # noqa: E402

BIN = ROOT / ".venv" / "bin" if (ROOT / ".venv" / "bin" / "gunicorn").exists() else Path(sys.executable).parent
CODE = {"root": ROOT}  # where the assistant's code is run from: this tree, or a `--ref` extracted from git
HOST = "127.0.0.1"
AUTH_TOKEN = "bench-auth-token-" + "5f0c2a9e7d41b3c6"
ACCOUNT_SID = "AC" + "0" * 32
SERVICE_NUMBER = "+447700900000"
TIMEZONE = "Europe/London"
# Answers to "How has your week been?" that each end the check-in (see flows/checkin.toml).
REPLIES = ("good", "1", "ok", "2", "fine", "great", "Good thanks", "okay", "all good", "not bad")
# The product should manage this share of the bare endpoint's throughput, and this p99.
AIM_RATIO = 0.25
AIM_P99_MS = 50.0
TICK_BATCH = 200  # assistant/jobs/tick.py: due rows taken per tick
TWILIO_TIMEOUT = 15.0  # seconds Twilio waits for a webhook's answer before giving up on it
# Other processes using more than this many cores during a phase make its numbers doubtful.
BUSY_CORES = 0.15

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
FIRST_NAMES = ("Alex", "Jordan", "Priya", "Sam", "Chris", "Aisha", "Tom", "Maria", "Kwame", "Siobhan")
SPECIALISTS = (("Sam Jones", "sam.jones"), ("Chris Lee", "chris.lee"), ("Ana Silva", "ana.silva"))


@dataclass(frozen=True)
class Profile:
    warmup: int  # requests per server before timing, to load code and caches
    throughput_seconds: float
    latency_seconds: float
    participants: int  # enough for the warm-up, the closed loop and the open loop


PROFILES = {
    "full": Profile(warmup=200, throughput_seconds=10.0, latency_seconds=10.0, participants=4000),
    "quick": Profile(warmup=100, throughput_seconds=3.0, latency_seconds=3.0, participants=2400),
}


def use_revision(ref: str, work: Path, env: dict[str, str]) -> str:
    """Run the assistant from `git archive REF` instead of the working tree (which may be mid-edit)."""
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    source = work / "code"
    source.mkdir()
    archive = subprocess.run(["git", "archive", "--format=tar", sha], cwd=ROOT, capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(source, filter="data")
    CODE["root"] = source
    env["PYTHONPATH"] = str(source)  # found before the editable install of the working tree
    sys.path.insert(0, str(source))
    return f"{ref} ({sha[:12]})"


def describe_tree() -> str:
    paths = ["assistant", "flows", "messages"]
    status = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=ROOT, capture_output=True, text=True)
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    changed = len(status.stdout.splitlines())
    return f"working tree at {head.stdout.strip() or '?'}" + (f" with {changed} files changed" if changed else "")


def say(text: str) -> None:
    print(text, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------
# The caseload and the database
# ---------------------------------------------------------------------------


# UK mobile numbers that phonenumbers accepts (+44 7946 0xxxxx; Ofcom's drama range has only 1,000).
PHONE_RANGE = range(100_000)


def make_phones(count: int, first: int = 0) -> list[str]:
    import phonenumbers

    phones = [f"+4479460{i:05d}" for i in PHONE_RANGE[first : first + count]]
    for phone in phones:
        if not phonenumbers.is_valid_number(phonenumbers.parse(phone)):
            raise SystemExit(f"generated phone number {phone} is not valid: pick another range")
    return phones


def first_checkin(now: datetime) -> datetime:
    """Everyone's weekly slot: the latest minute before now when a scheduled text may go out.

    The assistant sends scheduled texts only 08:00-20:00 local time and never on a bank
    holiday (assistant/care/quiet.py), so the slot is kept inside 09:00-19:00 on an ordinary
    day. The check-in is then asked in the recent past and its 48-hour wait is
    normally still open when the replies come in.
    """
    import holidays

    zone = ZoneInfo(TIMEZONE)

    def at(day: date, hhmm: clock_time) -> datetime:
        return datetime.combine(day, hhmm, tzinfo=zone).astimezone(UTC)

    candidate = (now - timedelta(minutes=20)).replace(second=0, microsecond=0)
    for _ in range(30):
        local = candidate.astimezone(zone)
        ordinary = local.date() not in holidays.country_holidays("GB", subdiv="ENG", years=local.year)
        if ordinary and clock_time(9) <= local.time() <= clock_time(19):
            return candidate
        if ordinary and local.time() > clock_time(19):
            candidate = at(local.date(), clock_time(19))
        else:
            candidate = at(local.date() - timedelta(days=1), clock_time(19))
    raise SystemExit("no ordinary day in the last month to start check-ins on")


def write_caseload(path: Path, phones: list[str], first_checkin: datetime, *, first_id: int = 0) -> None:
    local = first_checkin.astimezone(ZoneInfo(TIMEZONE))
    day, at = DAYS[local.weekday()], local.strftime("%H:%M")
    if first_id:  # people added to grow the caseload: their check-in is on another weekday, not due in the run
        day = DAYS[(local.weekday() + 1) % 5]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "participant_id",
                "first_name",
                "phone",
                "specialist_email",
                "specialist_name",
                "cohort",
                "checkin_day",
                "checkin_time",
            ]
        )
        for i, phone in enumerate(phones, start=first_id):
            name, email = SPECIALISTS[i % len(SPECIALISTS)]
            writer.writerow(
                [
                    f"B{i:05d}",
                    FIRST_NAMES[i % len(FIRST_NAMES)],
                    phone,
                    f"{email}@example.org",
                    name,
                    "out_of_work",
                    day,
                    at,
                ]
            )


_engines: dict[str, Any] = {}


def query(db: str, sql: str) -> list[tuple[object, ...]]:
    """Run `sql` on the benchmark's database (an SQLAlchemy URL: sqlite:///... or postgresql+psycopg://...)."""
    if db.startswith("sqlite:///"):
        connection = sqlite3.connect(db.removeprefix("sqlite:///"), timeout=30)
        try:
            return connection.execute(sql).fetchall()
        finally:
            connection.close()
    import sqlalchemy as sa

    if db not in _engines:
        _engines[db] = sa.create_engine(db, poolclass=sa.pool.NullPool)
    with _engines[db].connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(sql))]


def count(db: str, sql: str) -> int:
    value = query(db, sql)[0][0]
    assert isinstance(value, int)
    return value


def run_cli(env: dict[str, str], *args: str, timeout: float = 900) -> None:
    """Run the assistant CLI; its console transport prints every SMS, so stdout goes nowhere."""
    result = subprocess.run(
        [str(BIN / "assistant"), *args],
        env=env,
        cwd=CODE["root"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise SystemExit(f"assistant {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")


def prepare_database(env: dict[str, str], db: str, work: Path, participants: int) -> tuple[list[str], datetime]:
    """A migrated database whose participants all have a check-in question waiting."""
    phones = make_phones(participants)
    first = first_checkin(datetime.now(UTC))
    caseload = work / "caseload.csv"
    write_caseload(caseload, phones, first)
    started = time.monotonic()
    run_cli(env, "db-upgrade")
    run_cli(env, "import-caseload", str(caseload), "--now", (first - timedelta(hours=2)).isoformat())
    imported = time.monotonic()
    # Each tick starts at most TICK_BATCH check-ins: tick until all are asked and sent.
    ticks = 0
    while ticks < participants // TICK_BATCH + 10:
        run_cli(env, "tick", "--now", first.isoformat())
        ticks += 1
        waiting = count(db, "SELECT count(*) FROM flowsession WHERE flow='checkin' AND status='waiting'")
        queued = count(db, "SELECT count(*) FROM message WHERE direction='out' AND status IN ('queued','sending')")
        if waiting == participants and queued == 0:
            break
    else:
        raise SystemExit(f"setup: only {waiting} of {participants} check-ins are waiting, {queued} texts unsent")
    say(
        f"  setup: imported in {imported - started:.0f}s; {ticks} ticks asked every check-in "
        f"(slot {first:%a %H:%M} UTC) in {time.monotonic() - imported:.0f}s"
    )
    return phones, first


def grow_caseload(env: dict[str, str], db: str, work: Path, have: int, grown: int, first: datetime) -> None:
    """Import people up to `grown` on the caseload, none of whom texts in the run: the data a request
    reads around grows, the requests stay the same."""
    started = time.monotonic()
    caseload = work / "caseload-grown.csv"
    write_caseload(caseload, make_phones(grown - have, first=have), first, first_id=have)
    run_cli(env, "import-caseload", str(caseload), "--now", (first - timedelta(hours=2)).isoformat())
    on_record = count(db, "SELECT count(*) FROM participant")
    if on_record != grown:
        raise SystemExit(f"growing the caseload: {on_record} participants on record, expected {grown}")
    say(f"  grown to {grown} participants in {time.monotonic() - started:.0f}s")


# ---------------------------------------------------------------------------
# Requests, signed before any timing
# ---------------------------------------------------------------------------


@dataclass
class Signed:
    sid: str
    signature: str
    body: str  # application/x-www-form-urlencoded

    def raw(self, port: int) -> bytes:
        data = self.body.encode()
        head = (
            f"POST /twilio/sms HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"X-Twilio-Signature: {self.signature}\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        return head.encode() + data


def sign_all(phones: list[str], public_url: str, rng: random.Random) -> list[Signed]:
    from assistant.signing import twilio_signature

    url = public_url.rstrip("/") + "/twilio/sms"
    signed = []
    for phone in phones:
        params = {
            "MessageSid": "SM" + uuid.UUID(int=rng.getrandbits(128)).hex,
            "AccountSid": ACCOUNT_SID,
            "From": phone,
            "To": SERVICE_NUMBER,
            "Body": rng.choice(REPLIES),
        }
        signature = twilio_signature(url, params, AUTH_TOKEN)
        signed.append(Signed(params["MessageSid"], signature, urllib.parse.urlencode(params)))
    return signed


def write_replay_file(path: Path, requests: list[Signed]) -> Path:
    path.write_text("".join(f"{r.signature}\t{r.body}\n" for r in requests), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------


class Server:
    """One gunicorn master and its workers, in a process group of their own."""

    def __init__(
        self, name: str, app: str, port: int, env: dict[str, str], log: Path, *extra: str, workers: int = 2
    ) -> None:
        self.name, self.app, self.port, self.env, self.log = name, app, port, env, log
        self.extra, self.count = extra, workers
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [str(BIN / "gunicorn"), "-w", str(self.count), "-b", f"{HOST}:{self.port}", *self.extra, self.app]

    def start(self, timeout: float = 180) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                env=self.env,
                cwd=CODE["root"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # the console transport prints every SMS
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name}: gunicorn exited ({self.process.returncode}); see {self.log}")
            if len(self.workers()) == self.count and self._healthy():
                return
            time.sleep(0.1)
        raise SystemExit(f"{self.name}: not ready after {timeout:.0f}s; see {self.log}")

    def _healthy(self) -> bool:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def workers(self) -> list[int]:
        if self.process is None:
            return []
        return sorted(child_pids(self.process.pid))

    def cpu_seconds(self) -> float:
        """User plus system CPU of the master and its workers so far."""
        if self.process is None:
            return 0.0
        total = 0
        for pid in [self.process.pid, *self.workers()]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def peak_rss(self) -> tuple[float, float]:
        """Peak resident memory (VmHWM, MB) of the master and workers together, and of the largest worker."""
        if self.process is None:
            return 0.0, 0.0
        peaks = {}
        for pid in [self.process.pid, *self.workers()]:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peaks[pid] = int(line.split()[1]) / 1024
        workers = [mb for pid, mb in peaks.items() if pid != self.process.pid]
        return sum(peaks.values()), max(workers, default=0.0)

    def stop(self, timeout: float = 15) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # the group this run created for it
            self.process.wait(timeout=5)


# ---------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------


@dataclass
class ClosedLoop:
    issued: int
    ok: int
    bad: int
    elapsed: float
    socket_errors: int  # including timeouts
    statuses: str
    capped: bool
    client_cpu: float
    server_cpu: float
    other_cores: float  # CPU that neither the server nor the load generator used, on average
    timeouts: int = 0  # wrk's count of requests not answered within its --timeout (Twilio's)
    backlog: int = 0  # replies not yet sent when the last answer came back
    drain: float = 0.0  # seconds it then took to send them

    @property
    def rate(self) -> float:
        """Webhook answers per second."""
        return (self.ok + self.bad) / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def sustained(self) -> float:
        """Requests per second with every reply sent too (the replies' sending may lag the answers)."""
        return (self.ok + self.bad) / (self.elapsed + self.drain) if self.elapsed > 0 else 0.0


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy since boot, all cores (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(limit: float = 60.0) -> None:
    """Before a timed phase, wait (a while) for other work on this small machine to die down."""
    deadline = time.monotonic() + limit
    waited = False
    while True:
        before = machine_busy_seconds()
        time.sleep(0.5)
        cores = (machine_busy_seconds() - before) / 0.5
        if cores <= BUSY_CORES or time.monotonic() > deadline:
            if waited:
                say(f"    (waited for the machine to go quiet: {cores:.2f} cores busy now)")
            return
        waited = True


def run_wrk(command: list[str], deadline: float) -> tuple[str, dict[str, Any] | None]:
    """Run wrk until replay.lua says it is done, then end it (its main thread would sleep out -d)."""
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    output: list[str] = []
    end = time.monotonic() + deadline
    interrupted_at = None
    while True:
        wait = end - time.monotonic()
        if interrupted_at is not None:
            wait = min(wait, interrupted_at + 5 - time.monotonic())
        try:
            line = lines.get(timeout=max(wait, 0.01))
        except queue.Empty:
            break  # wrk would not stop: kill it below and use the thread's own counts
        if line is None:
            break
        output.append(line)
        if line.startswith("REPLAY-THREAD ") and interrupted_at is None:
            process.send_signal(signal.SIGINT)
            interrupted_at = time.monotonic()
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)
    found: dict[str, dict[str, Any]] = {}
    for line in output:
        tag, _, payload = line.partition(" ")
        if tag in ("REPLAY", "REPLAY-THREAD"):
            found[tag] = json.loads(payload)
    return "".join(output), found.get("REPLAY") or found.get("REPLAY-THREAD")


def closed_loop(
    server: Server, replay: Path, *, budget: int, seconds: float, connections: int, cycle: bool
) -> ClosedLoop:
    """wrk, one thread: as many requests as the server will take, `connections` at a time."""
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{int(seconds) + 60}s",
        "--timeout",
        f"{TWILIO_TIMEOUT:g}s",
        "-s",
        str(BENCH / "replay.lua"),
        f"http://{HOST}:{server.port}",
        "--",
        str(replay),
        str(budget),
        str(seconds),
        "1" if cycle else "0",
    ]
    before_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    before_server, before_machine, started = server.cpu_seconds(), machine_busy_seconds(), time.monotonic()
    output, data = run_wrk(command, deadline=seconds + 120)
    server_cpu = server.cpu_seconds() - before_server
    machine_cpu, wall = machine_busy_seconds() - before_machine, time.monotonic() - started
    after_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    if data is None:
        raise SystemExit(f"wrk gave no result:\n{output}")
    client_cpu = (after_cpu.ru_utime - before_cpu.ru_utime) + (after_cpu.ru_stime - before_cpu.ru_stime)
    return ClosedLoop(
        issued=data["issued"],
        ok=data["ok"],
        bad=data["bad"],
        elapsed=data["elapsed"],
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        statuses=data["statuses"],
        capped=data["capped"],
        client_cpu=client_cpu,
        server_cpu=server_cpu,
        other_cores=max(machine_cpu - server_cpu - client_cpu, 0.0) / wall,
        timeouts=data["timeout"],
    )


@dataclass
class OpenLoop:
    outcomes: dict[str, int | str] = field(default_factory=dict)  # MessageSid: HTTP status, or why none came
    latencies: list[float] = field(default_factory=list)  # seconds from the scheduled send to the full answer
    max_send_lag: float = 0.0
    elapsed: float = 0.0  # from the first scheduled send to the last answer
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    other_cores: float = 0.0

    @property
    def ok(self) -> int:
        return sum(1 for v in self.outcomes.values() if v == 200)

    @property
    def errors(self) -> int:
        return len(self.outcomes) - self.ok

    def error_summary(self) -> str:
        return ", ".join(f"{k}: {n}" for k, n in Counter(v for v in self.outcomes.values() if v != 200).items())

    @property
    def timeouts(self) -> int:
        return sum(1 for v in self.outcomes.values() if v == "TimeoutError")

    def percentile(self, p: float) -> float:
        """Over every request: one without a 200 (refused, reset, timed out) counts as never answered."""
        if not self.outcomes:
            return float("nan")
        ordered = sorted(self.latencies) + [math.inf] * self.errors
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


async def _exchange(port: int, raw: bytes) -> int:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(raw)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length is None:
            await reader.read()
        elif length:
            await reader.readexactly(length)
        return status
    finally:
        writer.close()


async def _open_loop(port: int, requests: list[Signed], rate: float, timeout: float, result: OpenLoop) -> None:
    loop = asyncio.get_running_loop()
    raws = [(r.sid, r.raw(port)) for r in requests]
    start = loop.time() + 0.05

    async def one(sid: str, raw: bytes, scheduled: float) -> None:
        try:
            status = await asyncio.wait_for(_exchange(port, raw), timeout)
        except Exception as exc:  # refused, reset or timed out: an error, never dropped
            result.outcomes[sid] = type(exc).__name__
            return
        result.outcomes[sid] = status
        if status == 200:
            result.latencies.append(loop.time() - scheduled)

    tasks = []
    for i, (sid, raw) in enumerate(raws):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        result.max_send_lag = max(result.max_send_lag, loop.time() - scheduled)
        tasks.append(asyncio.create_task(one(sid, raw, scheduled)))
    await asyncio.gather(*tasks)
    result.elapsed = loop.time() - start


def open_loop(server: Server, requests: list[Signed], rate: float, timeout: float = TWILIO_TIMEOUT) -> OpenLoop:
    """A new connection and request every 1/rate seconds whatever the server is doing.

    Latency counts from when the request was due to be sent, so a server that falls
    behind is charged for the queue it builds (no coordinated omission).
    """
    result = OpenLoop()
    cpu, before_server, before_machine = time.process_time(), server.cpu_seconds(), machine_busy_seconds()
    started = time.monotonic()
    gc.collect()
    gc.disable()  # no collector pauses in the client while it keeps time
    try:
        asyncio.run(_open_loop(server.port, requests, rate, timeout, result))
    finally:
        gc.enable()
    result.server_cpu = server.cpu_seconds() - before_server
    result.client_cpu = time.process_time() - cpu
    machine_cpu, wall = machine_busy_seconds() - before_machine, time.monotonic() - started
    result.other_cores = max(machine_cpu - result.server_cpu - result.client_cpu, 0.0) / wall
    return result


# ---------------------------------------------------------------------------
# Profiling (optional: --profile DIR, with py-spy installed in the virtualenv)
# ---------------------------------------------------------------------------


def start_profilers(server: Server, seconds: float, out_dir: Path) -> list[subprocess.Popen[bytes]]:
    """py-spy on each worker (request thread and reply-sending thread alike), as collapsed stacks."""
    spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    out_dir.mkdir(parents=True, exist_ok=True)
    spies = []
    for pid in server.workers():
        command = [spy, "record", "--pid", str(pid), "--duration", str(math.ceil(seconds) + 1), "--rate", "200"]
        command += ["--format", "raw", "--nonblocking", "--output", str(out_dir / f"assistant-worker-{pid}.txt")]
        spies.append(
            subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
    time.sleep(1.0)  # let py-spy attach before the load starts
    return spies


def summarise_profile(out_dir: Path, top: int = 15) -> None:
    """The assistant's own functions by share of samples (inclusive), and the share spent inside SQLite."""
    inclusive: Counter[str] = Counter()
    total = in_sqlite = 0
    for path in sorted(out_dir.glob("assistant-worker-*.txt")):
        for line in path.read_text().splitlines():
            stack, _, n_text = line.rpartition(" ")
            if not stack or not n_text.isdigit():
                continue
            n = int(n_text)
            total += n
            frames = stack.split(";")
            if frames[-1].startswith(("DefaultDialect.do_execute", "DefaultDialect.do_commit")):
                in_sqlite += n
            seen = set()
            for frame in frames:
                if "(assistant/" in frame:
                    name = frame.rsplit(":", 1)[0] + ")"
                    if name not in seen:
                        seen.add(name)
                        inclusive[name] += n
    if not total:
        say(f"Profile: no samples in {out_dir}")
        return
    say(f"Profile of the assistant's workers during its closed loop ({total} samples; stacks in {out_dir}):")
    say(f"  {100 * in_sqlite / total:5.1f}%  inside SQLite (execute and commit, including waits for the write lock)")
    for name, n in inclusive.most_common(top):
        say(f"  {100 * n / total:5.1f}%  {name}")


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


@dataclass
class Measured:
    name: str
    warmup: ClosedLoop
    throughput: ClosedLoop
    latency: OpenLoop
    peak_rss: float = 0.0  # MB, master and workers together (each process's VmHWM)
    peak_rss_worker: float = 0.0  # MB, the largest worker

    @property
    def errors(self) -> int:
        """Every request without a 200 in time: error statuses, socket errors and timeouts."""
        closed = (self.warmup, self.throughput)
        return sum(c.bad + c.socket_errors for c in closed) + self.latency.errors

    @property
    def timeouts(self) -> int:
        return self.warmup.timeouts + self.throughput.timeouts + self.latency.timeouts

    @property
    def cpu_ms(self) -> float | None:
        """The server's CPU per request in the closed loop (None when nothing was answered)."""
        n = self.throughput.ok + self.throughput.bad
        return self.throughput.server_cpu / n * 1000 if n else None

    def error_lines(self) -> list[str]:
        lines = []
        for phase, loop in (("warm-up", self.warmup), ("closed loop", self.throughput)):
            if loop.bad or loop.socket_errors:
                lines.append(f"{phase}: HTTP status {loop.statuses or '-'}; socket errors {loop.socket_errors}")
            if loop.capped:
                lines.append(f"{phase}: wrk hit its time cap; requests in flight were cut off")
        if self.latency.errors:
            lines.append(f"open loop: {self.latency.error_summary()}")
        return [f"{self.name} {line}" for line in lines]


def measure(
    server: Server,
    *,
    warmup: list[Signed],
    throughput: list[Signed],
    latency: list[Signed],
    work: Path,
    profile: Profile,
    connections: int,
    rate: float,
    reuse: bool,
    profile_dir: Path | None = None,
    outbox: str | None = None,
) -> Measured:
    """Warm up, then the closed loop, then the open loop, on a server already started."""
    tag = server.name.replace(" ", "-")
    say(f"  {server.name}: warm-up, {len(warmup)} requests")
    warm_file = write_replay_file(work / f"{tag}-warmup.txt", warmup)
    warm = closed_loop(server, warm_file, budget=len(warmup), seconds=60, connections=connections, cycle=False)
    wait_for_quiet()
    say(f"  {server.name}: closed loop, {connections} connections, {profile.throughput_seconds:g}s")
    thr_file = write_replay_file(work / f"{tag}-throughput.txt", throughput)
    budget = 10**9 if reuse else len(throughput)
    spies = start_profilers(server, profile.throughput_seconds, profile_dir) if profile_dir else []
    thr = closed_loop(
        server, thr_file, budget=budget, seconds=profile.throughput_seconds, connections=connections, cycle=reuse
    )
    if outbox is not None:  # replies still to be sent by the workers' background threads
        thr.backlog = unsent(outbox)
        drain_started, cpu_before = time.monotonic(), server.cpu_seconds()
        wait_outbox_drained(outbox)
        thr.drain = time.monotonic() - drain_started
        thr.server_cpu += server.cpu_seconds() - cpu_before  # sending them is part of each request's cost
    for spy in spies:
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait(timeout=5)
    wait_for_quiet()
    say(f"  {server.name}: open loop, {rate:g} requests/s for {len(latency) / rate:g}s")
    lat = open_loop(server, latency, rate)
    total, largest = server.peak_rss()
    return Measured(server.name, warm, thr, lat, peak_rss=total, peak_rss_worker=largest)


def refused_loop(
    server: Server, requests: list[Signed], work: Path, label: str, seconds: float, connections: int
) -> ClosedLoop:
    """The assistant's floor: the same requests with a signature that does not match, refused (403)
    after the app's own request handling (its hooks, the rate limit, the form, the signature check)
    and before any database work. What a text's own work can cost is the rest of the budget."""
    say(f"  assistant: closed loop of unsigned requests (refused, no database work), {seconds:g}s")
    unsigned = [Signed(r.sid, "not-a-signature", r.body) for r in requests]
    replay = write_replay_file(work / f"assistant-unsigned-{label}.txt", unsigned)
    return closed_loop(server, replay, budget=10**9, seconds=seconds, connections=connections, cycle=True)


def report_floor(bare: Measured, floor: ClosedLoop) -> None:
    """The ratio's ceiling before any of a text's own work, from the same run."""
    answered = floor.ok + floor.bad
    rate = answered / floor.elapsed if floor.elapsed else 0.0
    cpu = floor.server_cpu / answered * 1000 if answered else 0.0
    ceiling = rate / bare.throughput.rate if bare.throughput.rate else 0.0
    statuses = floor.statuses or "-"
    say(
        f"  the assistant's floor (unsigned requests refused before any database work; statuses {statuses}): "
        f"{rate:.0f}/s, {cpu:.2f} ms of server CPU a request, {ceiling:.1%} of bare: the most the ratio "
        "could be if a text's own work cost nothing"
    )


def unsent(db: str) -> int:
    return count(db, "SELECT count(*) FROM message WHERE direction='out' AND status IN ('queued','sending')")


def wait_outbox_drained(db: str, timeout: float = 60) -> int:
    """Replies are sent by a background thread after each commit: wait for it (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        left = unsent(db)
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


@dataclass
class Audit:
    answered_ok: int  # requests the assistant answered 200
    inbound: int  # inbound message rows in the database
    twice: int  # MessageSids recorded more than once
    strangers: int  # rows for MessageSids this run never sent
    missing: int  # requests answered 200 but not recorded
    rejected_but_recorded: int  # requests answered with an error but recorded all the same
    unanswered: int  # requests that got no answer (timed out, reset)
    unanswered_recorded: int  # ... of which the assistant recorded anyway (fine: Twilio would retry, a duplicate)
    unsure_ok: bool  # phases where wrk saw errors: recorded rows between answered-200 and answered-200 + no answer
    receipts: int
    unknown_senders: int
    ended: int
    unsent: int

    @property
    def exact(self) -> bool:
        """Every request answered 200 recorded exactly once, nothing refused recorded, nothing twice."""
        return (
            self.twice == 0
            and self.strangers == 0
            and self.missing == 0
            and self.rejected_but_recorded == 0
            and self.unknown_senders == 0
            and self.unsure_ok
        )


def audit(
    db: str,
    measured: Measured,
    sent: list[tuple[list[Signed], ClosedLoop | None]],
    unsent: int,
    earlier: frozenset[str] = frozenset(),
) -> Audit:
    """Compare the inbound rows with what the assistant answered, request by request where that is known.

    `earlier`: the MessageSids of earlier runs on the same database (other worker counts), not strangers.
    """
    grouped = query(db, "SELECT provider_sid, count(*) FROM message WHERE direction='in' GROUP BY provider_sid")
    rows = {str(sid): int(str(n)) for sid, n in grouped}
    ok: set[str] = set()
    rejected: set[str] = set()
    unanswered: set[str] = set()
    everything: set[str] = set()
    unsure_ok = True
    for requests, loop in sent:
        if loop is None:  # the open loop knows each request's outcome
            for sid, outcome in measured.latency.outcomes.items():
                (ok if outcome == 200 else rejected if isinstance(outcome, int) else unanswered).add(sid)
            everything.update(measured.latency.outcomes)
            continue
        issued = {r.sid for r in requests[: loop.issued]}
        everything |= issued
        if loop.bad == 0 and loop.socket_errors == 0:
            ok |= issued
        else:  # wrk counts outcomes but does not say which request had which
            recorded = sum(1 for sid in issued if sid in rows)
            unsure_ok = unsure_ok and loop.ok <= recorded <= loop.ok + loop.socket_errors
    return Audit(
        answered_ok=measured.warmup.ok + measured.throughput.ok + measured.latency.ok,
        inbound=sum(n for sid, n in rows.items() if sid not in earlier),
        twice=sum(1 for n in rows.values() if n > 1),
        strangers=sum(1 for sid in rows if sid not in everything and sid not in earlier),
        missing=sum(1 for sid in ok if sid not in rows),
        rejected_but_recorded=sum(1 for sid in rejected if sid in rows),
        unanswered=len(unanswered),
        unanswered_recorded=sum(1 for sid in unanswered if sid in rows),
        unsure_ok=unsure_ok,
        receipts=count(db, "SELECT count(*) FROM inboundreceipt") - len(earlier),
        unknown_senders=count(db, "SELECT count(*) FROM message WHERE direction='in' AND participant_id IS NULL"),
        ended=count(db, "SELECT count(*) FROM flowsession WHERE flow='checkin' AND status='ended'") - len(earlier),
        unsent=unsent,
    )


def ms(seconds: float) -> str:
    if math.isinf(seconds):
        return "no answer"
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


def report(
    b: Measured, a: Measured, check: Audit, *, connections: int, rate: float, workers: int, database: str
) -> bool:
    """Print one worker count's results; True when the aim is met with no errors (timeouts included)."""
    ratio = a.throughput.rate / b.throughput.rate if b.throughput.rate else 0.0
    sustained = a.throughput.sustained / b.throughput.rate if b.throughput.rate else 0.0
    p99 = a.latency.percentile(99)
    met_ratio, met_p99 = min(ratio, sustained) >= AIM_RATIO, p99 < AIM_P99_MS / 1000
    errors, timeouts = a.errors + b.errors, a.timeouts + b.timeouts
    met = met_ratio and met_p99 and errors == 0

    def row(label: str, bare: str, full: str, note: str = "") -> None:
        say(f"  {label:<44}{bare:>12}{full:>12}   {note}".rstrip())

    def cpu_ms(m: Measured) -> str:
        return "-" if m.cpu_ms is None else f"{m.cpu_ms:.2f}"

    def client(m: Measured) -> str:
        return f"{100 * m.throughput.client_cpu / m.throughput.elapsed:.0f}%" if m.throughput.elapsed else "-"

    def served(m: Measured) -> str:
        return f"{m.latency.ok / m.latency.elapsed:.0f}" if m.latency.elapsed else "-"

    seconds = len(a.latency.outcomes) / rate
    say("")
    say(
        f"Results: gunicorn -w {workers} (sync workers) on {HOST}, the assistant on {database}; "
        f"{os.cpu_count()} CPU cores shared with the load generator"
    )
    say(f"  {'':<44}{'bare Flask':>12}{'assistant':>12}")
    say(f"Closed loop (wrk, {connections} connections, as fast as answered)")
    row("throughput: webhook answers/s", f"{b.throughput.rate:.0f}", f"{a.throughput.rate:.0f}")
    row("  with every reply text sent too (/s)", "", f"{a.throughput.sustained:.0f}")
    row("  reply texts unsent at the end / s to send", "", f"{a.throughput.backlog} / {a.throughput.drain:.1f}")
    row("ratio assistant / bare", "", f"{ratio:.1%}", f"aim >= {AIM_RATIO:.0%}: {'met' if met_ratio else 'MISSED'}")
    row("  with every reply text sent too", "", f"{sustained:.1%}")
    row("requests timed", str(b.throughput.ok + b.throughput.bad), str(a.throughput.ok + a.throughput.bad))
    row("seconds", f"{b.throughput.elapsed:.1f}", f"{a.throughput.elapsed:.1f}")
    row("server CPU per request (ms)", cpu_ms(b), cpu_ms(a))
    row("load generator CPU (of one core)", client(b), client(a))
    row("other processes' CPU (cores)", f"{b.throughput.other_cores:.2f}", f"{a.throughput.other_cores:.2f}")
    row("peak RSS, master and workers (MB)", f"{b.peak_rss:.0f}", f"{a.peak_rss:.0f}")
    row("peak RSS, largest worker (MB)", f"{b.peak_rss_worker:.0f}", f"{a.peak_rss_worker:.0f}")
    say(f"Open loop ({rate:g} requests/s offered for {seconds:g}s, {len(a.latency.outcomes)} requests each)")
    row("latency p50 (ms)", ms(b.latency.percentile(50)), ms(a.latency.percentile(50)))
    row(
        "latency p99 (ms)",
        ms(b.latency.percentile(99)),
        ms(p99),
        f"aim < {AIM_P99_MS:g}: {'met' if met_p99 else 'MISSED'}",
    )
    row(
        "latency max (ms)",
        ms(max(b.latency.latencies, default=math.nan)),
        ms(max(a.latency.latencies, default=math.nan)),
    )
    row("served (requests/s)", served(b), served(a))
    row("client send lag, max (ms)", ms(b.latency.max_send_lag), ms(a.latency.max_send_lag))
    row("other processes' CPU (cores)", f"{b.latency.other_cores:.2f}", f"{a.latency.other_cores:.2f}")
    row("errors (non-200, refused, reset, timeout)", str(b.errors), str(a.errors))
    row("  of which timed out (no answer in 15 s)", str(b.timeouts), str(a.timeouts))
    for line in b.error_lines() + a.error_lines():
        say(f"    {line}")
    busy = max(m.other_cores for m in (b.throughput, a.throughput, b.latency, a.latency))
    if busy > BUSY_CORES:
        say(f"  WARNING: other processes used up to {busy:.2f} cores during a phase: run again on a quiet machine")
    say("")
    say(
        f"Database: {check.answered_ok} inbound texts answered 200, {check.inbound} inbound rows "
        f"({check.twice} recorded twice, {check.missing} missing, {check.strangers} not sent here, "
        f"{check.rejected_but_recorded} recorded though refused, {check.unknown_senders} from unknown numbers); "
        f"{check.receipts} receipts, {check.ended} check-ins ended, {check.unsent} reply texts left unsent"
    )
    if check.unanswered:
        say(
            f"  {check.unanswered} requests had no answer in {TWILIO_TIMEOUT:g}s; the assistant recorded "
            f"{check.unanswered_recorded} of them anyway (Twilio would send those again: duplicates, ignored)"
        )
    if not check.unsure_ok:
        say("  a closed-loop phase with errors recorded fewer rows than its 200s, or more than its 200s and failures")
    say(f"  every inbound text answered 200 recorded exactly once: {'yes' if check.exact else 'NO'}")
    say(
        f"Aim ({workers} workers): throughput {ratio:.1%} of bare ({sustained:.1%} with the reply texts sent): "
        f"{'met' if met_ratio else 'MISSED'}; "
        f"p99 {ms(p99)} ms at {rate:g} requests/s: {'met' if met_p99 else 'MISSED'}; "
        f"{errors} errors ({timeouts} timed out); all aims: {'MET' if met else 'MISSED'}"
    )
    return met


def worker_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of worker counts: {text!r}") from None
    if not counts or any(n < 1 or n > 16 for n in counts):
        raise argparse.ArgumentTypeError("worker counts are 1 to 16, e.g. 1,2,4")
    return counts


def start_database(kind: str, work: Path) -> tuple[str, Any]:
    """The assistant's database URL, and the throwaway PostgreSQL server to stop afterwards (or None)."""
    if kind == "sqlite":
        return f"sqlite:///{work / 'bench.db'}", None
    sys.path.insert(0, str(ROOT))  # the tests' helper: initdb in a temporary directory, a free loopback port
    from tests.pg import start_postgres

    server = start_postgres(durable=True)  # commits flushed to disk, as in production
    return server.url, server


def summarise_growth(sizes: list[tuple[int, Measured]], workers: int) -> None:
    """The cost of a request at each caseload size, against the smallest: flat means linear growth."""
    say("")
    say(f"Cost per request as the caseload grows ({workers} workers, closed loop; ratio against the first size)")
    say(f"  {'caseload':>9} {'CPU ms':>7} {'x first':>8} {'asst/s':>8} {'p99 ms':>9}")
    base = None
    for size, measured in sizes:
        cpu = measured.cpu_ms if measured.cpu_ms is not None else float("nan")
        base = base or cpu
        say(
            f"  {size:>9} {cpu:>7.2f} {cpu / base:>8.2f} {measured.throughput.rate:>8.0f} "
            f"{ms(measured.latency.percentile(99)):>9}"
        )


def summarise(runs: list[tuple[int, Measured, Measured, bool]], rate: float) -> None:
    say("")
    say(
        f"Summary: throughput closed loop; latency open loop at {rate:g} requests/s; CPU per request in the closed loop"
    )
    head = (
        f"  {'workers':>7} {'bare/s':>8} {'asst/s':>8} {'ratio':>7} {'+sent':>7} {'CPU ms':>7} "
        f"{'p50 ms':>9} {'p99 ms':>9} {'RSS MB':>7} {'errors':>7}  aim"
    )
    say(head)
    for workers, b, a, met in runs:
        ratio = a.throughput.rate / b.throughput.rate if b.throughput.rate else 0.0
        sustained = a.throughput.sustained / b.throughput.rate if b.throughput.rate else 0.0
        cpu = "-" if a.cpu_ms is None else f"{a.cpu_ms:.2f}"
        say(
            f"  {workers:>7} {b.throughput.rate:>8.0f} {a.throughput.rate:>8.0f} {ratio:>7.1%} {sustained:>7.1%} "
            f"{cpu:>7} {ms(a.latency.percentile(50)):>9} {ms(a.latency.percentile(99)):>9} "
            f"{a.peak_rss:>7.0f} {a.errors + b.errors:>7}  {'met' if met else 'MISSED'}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short run (about 5 minutes)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite", help="the assistant's database")
    parser.add_argument(
        "--workers", type=worker_counts, default=[2], help="gunicorn workers, one run each: e.g. 1,2,4 (default 2)"
    )
    parser.add_argument("--connections", type=int, default=8, help="closed-loop concurrency (default 8)")
    parser.add_argument("--rate", type=float, default=200.0, help="open-loop requests/s (default 200)")
    parser.add_argument("--participants", type=int, help="caseload size per run (default: enough for every phase)")
    parser.add_argument(
        "--grow",
        type=float,
        help="then grow the caseload this many times over and run again, to show the cost per request as the "
        "data grows (default 10, --quick 5; 1: no second size)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (database, logs)")
    parser.add_argument("--seed", type=int, default=1, help="seed for the generated replies")
    parser.add_argument("--ref", help="benchmark this git revision (e.g. HEAD) instead of the working tree")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="sample the assistant's workers with py-spy in its closed loop"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        say("wrk is needed for the closed loop: apt-get install wrk")
        return 2
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # an overloaded server queues many connections
    profile = PROFILES["quick" if args.quick else "full"]
    latency_n = round(args.rate * profile.latency_seconds)
    per_run = args.participants or profile.participants
    if per_run - profile.warmup - latency_n < 100:
        say(f"--participants must be at least {profile.warmup + latency_n + 100}")
        return 2
    counts: list[int] = args.workers
    if args.grow is None:
        args.grow = 5.0 if args.quick else 10.0

    work = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    postgres = None
    servers: list[Server] = []
    try:
        db, postgres = start_database(args.db, work)
        port = free_port()
        public_url = f"http://{HOST}:{port}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANT_", "TWILIO_"))},
            "ASSISTANT_DATABASE_URL": db,
            "ASSISTANT_PUBLIC_URL": public_url,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "ASSISTANT_SMS_TRANSPORT": "console",
            "ASSISTANT_CONSOLE_LOG": str(work / "sms.jsonl"),
            "ASSISTANT_DISPATCH": "thread",
            # All the load comes from one address and goes to a console transport, so two limits
            # meant for production would measure themselves rather than the work: lift them.
            "ASSISTANT_WEBHOOK_RATE_LIMIT": "1000000 per minute",  # per client address, per worker
            "ASSISTANT_SEND_RATE": "100000",  # SMS segments a second per sending number
        }
        rounds = len(counts) + (1 if args.grow > 1 else 0)
        participants = per_run * rounds
        grown = round(participants * args.grow)
        if grown > len(PHONE_RANGE):
            say(f"--grow {args.grow:g} needs {grown} phone numbers: at most {len(PHONE_RANGE)}")
            return 2
        say(f"Webhook benchmark ({'quick' if args.quick else 'full'}), working in {work}")
        say(f"  code: {use_revision(args.ref, work, env) if args.ref else describe_tree()}")
        say(f"  database: {args.db}" + (" (a throwaway server, fsync on)" if postgres else ""))
        say("  lifted for the benchmark: the webhook rate limit per client address and the SMS send pacing")
        say(f"  setup: {participants} participants ({per_run} a run); db-upgrade, import-caseload, tick")
        phones, first = prepare_database(env, db, work, participants)
        signed = sign_all(phones, public_url, random.Random(args.seed))
        runs: list[tuple[int, Measured, Measured, bool]] = []
        clean = True

        def one_run(workers: int, mine: list[Signed], label: str) -> tuple[Measured, Measured, bool]:
            warm, rest = mine[: profile.warmup], mine[profile.warmup :]
            latency, throughput = rest[:latency_n], rest[latency_n:]
            bare = Server(
                "bare Flask",
                "bare_app:create_app()",
                free_port(),
                env,
                work / f"bare-{label}.log",
                "--pythonpath",
                str(BENCH),
                workers=workers,
            )
            full = Server(
                "assistant", "assistant:create_app()", port, env, work / f"assistant-{label}.log", workers=workers
            )
            servers.extend([bare, full])
            say("")
            say(f"Run with {workers} workers: gunicorn {' '.join(full.command()[1:-1])} APP (the same for both)")
            plan: dict[str, Any] = dict(
                warmup=warm,
                throughput=throughput,
                latency=latency,
                work=work,
                profile=profile,
                connections=args.connections,
                rate=args.rate,
            )
            earlier = frozenset(str(r[0]) for r in query(db, "SELECT provider_sid FROM message WHERE direction='in'"))
            bare.start()
            try:  # the bare app gets the same requests, replayed round and round
                b = measure(bare, reuse=True, **plan)
            finally:
                bare.stop()
            full.start()
            try:  # each participant answers once
                spy_dir = args.profile / label if args.profile and rounds > 1 else args.profile
                a = measure(full, reuse=False, profile_dir=spy_dir, outbox=db, **plan)
                unsent = wait_outbox_drained(db)
                floor = refused_loop(full, throughput, work, label, profile.throughput_seconds, args.connections)
            finally:
                full.stop()
            check = audit(db, a, [(warm, a.warmup), (throughput, a.throughput), (latency, None)], unsent, earlier)
            met = report(b, a, check, connections=args.connections, rate=args.rate, workers=workers, database=args.db)
            report_floor(b, floor)
            if spy_dir:
                say("")
                summarise_profile(spy_dir)
                say("  (sampling slows the profiled closed loop: take its throughput from a run without --profile)")
            return b, a, met and check.exact

        for n, workers in enumerate(counts):
            b, a, met = one_run(workers, signed[n * per_run : (n + 1) * per_run], f"w{workers}")
            runs.append((workers, b, a, met))
            clean = clean and met
        sizes: list[tuple[int, Measured]] = [(participants, runs[-1][2])]
        if grown > participants:
            workers = counts[-1]
            say("")
            say(
                f"Growing the caseload to {grown} (people who do not text during the run), then {workers} workers again"
            )
            grow_caseload(env, db, work, participants, grown, first)
            b, a, met = one_run(workers, signed[len(counts) * per_run :], f"w{workers}-grown")
            clean = clean and met
            sizes.append((grown, a))
            summarise_growth(sizes, workers)
        if len(runs) > 1:
            summarise(runs, args.rate)
        return 0 if clean else 1
    finally:
        for server in servers:
            server.stop()
        for engine in _engines.values():
            engine.dispose()
        if postgres is not None:
            postgres.stop()
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
