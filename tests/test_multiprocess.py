"""Real processes on one PostgreSQL database: gunicorn with 4 workers, 2 scheduler processes, `tick`s.

A burst of signed replies (some people sending two at once, Twilio repeating MessageSids)
is recorded once each and answered once each, in order; a sender killed with SIGKILL in
the middle of a batch loses nothing and sends nothing twice; and the database going away
makes the webhook answer 503 at once, until it is back and the service carries on by itself.
A web worker killed with SIGKILL inside the inbound transaction leaves nothing behind, and
one killed after the commit but before answering Twilio gets its reply sent once: either
way Twilio's retry is recorded, and answered, exactly once, and the other workers carry on.

What was really sent is the console transport's record file: one JSON line a send,
keyed `out-<message id>`, appended by whichever process sent it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import holidays
import pytest
import requests
import sqlalchemy as sa
from sqlmodel import SQLModel, col, select

from assistant.clock import FixedClock
from assistant.db.models import Message, Participant
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload
from assistant.outbox.writer import queue_sms
from assistant.runtime import build_runtime
from assistant.sending.reconcile import STALE_CLAIM, reconcile_stale
from assistant.sending.sender import CLAIMED_TOGETHER, send_due
from assistant.signing import twilio_signature
from assistant.transports import SendResult

from .conftest import AUTH_TOKEN, PUBLIC_URL, _truncate_all, test_settings
from .pg import PostgresServer
from .procs import child_pids, on_machine_clock
from .test_deploy import DEPLOY, clean_env, free_port, sms_params, stop_process, venv_bin, wait_http

pytestmark = pytest.mark.postgres

LONDON = ZoneInfo("Europe/London")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HEADER = "participant_id,first_name,phone,specialist_email,specialist_name,service,checkin_day,checkin_time\n"


def latest_slot(now: datetime) -> datetime:
    """The latest time before `now` (in London) when an automated text may go: 08:30-19:30, not a bank holiday."""
    at = now.astimezone(LONDON).replace(second=0, microsecond=0) - timedelta(minutes=2)
    bank = holidays.country_holidays("GB", subdiv="ENG", years=range(at.year - 1, at.year + 1))
    for _ in range(7 * 24 * 12):
        if at.date() not in bank and (8, 30) <= (at.hour, at.minute) <= (19, 30):
            return at
        at -= timedelta(minutes=5)
    raise AssertionError("no allowed time in the last week")


def write_caseload(path: Path, count: int, day: str, at: str) -> list[str]:
    phones = [f"+447700900{200 + i:03d}" for i in range(count)]
    rows = [
        f"M{i:03d},Person{i},07700 900{200 + i:03d},s{i % 3}@example.org,Specialist {i % 3},north,{day},{at}\n"
        for i in range(count)
    ]
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    return phones


@dataclass
class Stack:
    """The service's processes for one test, all on loopback, all stopped at the end."""

    server: PostgresServer
    tmp: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    named: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    web: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.record = self.tmp / "sms.jsonl"
        # The service's processes run on the machine's clock, as deployed, whatever the suite's.
        self.env = on_machine_clock(
            clean_env(
                ASSISTANT_DATABASE_URL=self.server.url,
                ASSISTANT_PUBLIC_URL=PUBLIC_URL,
                TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                ASSISTANT_SMS_TRANSPORT="console",
                ASSISTANT_CONSOLE_LOG=str(self.record),
                ASSISTANT_DISPATCH="thread",
                ASSISTANT_TICK_SECONDS="0.5",
                ASSISTANT_SEND_RATE="500",
                ASSISTANT_LOG_LEVEL="WARNING",
                PYTHONUNBUFFERED="1",
            )
        )
        self.engine = sa.create_engine(self.server.url, pool_pre_ping=True)

    def assistant(self, *args: str, timeout: float = 60) -> str:
        result = subprocess.run(
            [str(venv_bin("assistant")), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def spawn(self, name: str, argv: list[str], **env: str) -> subprocess.Popen[bytes]:
        with (self.tmp / f"{name}.out").open("ab") as out, (self.tmp / f"{name}.err").open("ab") as err:
            proc = subprocess.Popen(
                argv, env=self.env | env, stdout=out, stderr=err, cwd=self.tmp, start_new_session=True
            )
        self.procs.append(proc)
        self.named[name] = proc
        return proc

    def tick(self, name: str, now: datetime, **env: str) -> subprocess.Popen[bytes]:
        return self.spawn(name, [str(venv_bin("assistant")), "tick", "--now", now.isoformat()], **env)

    def start_web(self, workers: int = 4, *options: str, **env: str) -> str:
        port = free_port()
        argv = [str(venv_bin("gunicorn")), "-c", str(DEPLOY / "gunicorn.conf.py"), "-w", str(workers), *options]
        proc = self.spawn("web", [*argv, "-b", f"127.0.0.1:{port}", "assistant:create_app()"], **env)
        self.web = proc
        base = f"http://127.0.0.1:{port}"
        # Four workers booting on a busy machine can take a while: this waits for life, it times nothing.
        assert wait_http(f"{base}/healthz", deadline=time.monotonic() + 90, proc=proc).status_code == 200
        return base

    def close(self) -> None:
        for proc in self.procs:
            stop_process(proc, grace=10)
        self.engine.dispose()

    # --- what happened -------------------------------------------------------------------------

    def sent_keys(self) -> list[str]:
        if not self.record.exists():
            return []
        return [json.loads(line)["key"] for line in self.record.read_text(encoding="utf-8").splitlines() if line]

    def sent_at_least(self, count: int) -> bool:
        return len(self.sent_keys()) >= count

    def outbound(self) -> list[tuple[int, str, str]]:
        with self.engine.connect() as c:
            rows = c.execute(sa.text("SELECT id, phone, status FROM message WHERE direction = 'out' ORDER BY id"))
            return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def now(self) -> datetime:
        """The time the service's processes see. They run on this machine's clock, and so does the
        database server they share (`on_machine_clock`, whatever the suite's own clock): its clock
        stands for theirs (the tests' own clock is injected)."""
        with self.engine.connect() as c:
            at: datetime = c.execute(sa.text("SELECT now()")).scalar_one()
        return at.astimezone(UTC)

    def inbound_sids(self) -> list[str]:
        with self.engine.connect() as c:
            rows = c.execute(sa.text("SELECT provider_sid FROM message WHERE direction = 'in' ORDER BY id"))
            return [str(r[0]) for r in rows]

    def settled(self, inbound: int) -> bool:
        out = self.outbound()
        pending = [m for m in out if m[2] in ("queued", "sending")]
        sent = [m for m in out if m[2] == "sent"]
        return not pending and len(self.inbound_sids()) == inbound and len(self.sent_keys()) >= len(sent)

    def wait_until(self, condition: Callable[[], bool], seconds: float, what: str) -> None:
        """Waits for what should happen soon. It times nothing: a suite running in parallel on a
        loaded machine can take tens of seconds to start a process, so the deadlines are generous."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.2)
        raise AssertionError(f"not within {seconds}s: {what}\n{self.diagnosis()}")

    def output(self, name: str) -> str:
        path = self.tmp / name
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def running(self, name: str) -> bool:
        """The process spawned as `name` is alive and says its clock has started."""
        return self.named[name].poll() is None and "scheduler running" in self.output(f"{name}.out")

    def diagnosis(self) -> str:
        """What a failed wait needs to be understood: the unsent rows and each process's last errors."""
        lines = [f"not sent: {[m for m in self.outbound() if m[2] != 'sent']}"]
        lines.append(f"inbound: {len(self.inbound_sids())}, sends recorded: {len(self.sent_keys())}")
        for err in sorted(self.tmp.glob("*.err")):
            tail = [line for line in err.read_text(encoding="utf-8", errors="replace").splitlines() if "ERROR" in line]
            lines += [f"{err.name}: {line[:2000]}" for line in tail[-3:]]
        return "\n".join(lines)

    def check_each_message_sent_once_in_order(self) -> list[tuple[int, str, str]]:
        """Every outbound message sent, exactly one send each, each person's in id order."""
        out = self.outbound()
        keys = self.sent_keys()
        twice = sorted({k for k in keys if keys.count(k) > 1})
        assert not twice, f"sent more than once: {twice}"
        assert [m for m in out if m[2] != "sent"] == [], "not all messages were sent"
        assert set(keys) == {f"out-{m[0]}" for m in out}, "the sends and the sent rows differ"
        phone_of = {f"out-{m[0]}": m[1] for m in out}
        order: dict[str, list[int]] = defaultdict(list)
        for key in keys:
            order[phone_of[key]].append(int(key.removeprefix("out-")))
        for phone, ids in order.items():
            assert ids == sorted(ids), f"{phone} got {ids}: out of order"
        return out


@pytest.fixture
def stack(postgres: PostgresServer, tmp_path: Path) -> Iterator[Stack]:
    _truncate_all(postgres.url)
    services = Stack(postgres, tmp_path)
    try:
        yield services
    finally:
        services.close()
        ensure_running(postgres)


def pg_ctl(server: PostgresServer, *args: str) -> None:
    server._run(str(server.bindir / "pg_ctl"), "-D", str(server.directory / "data"), *args)


def ensure_running(server: PostgresServer) -> None:
    status = subprocess.run(
        [*server.as_user, str(server.bindir / "pg_ctl"), "-D", str(server.directory / "data"), "status"],
        capture_output=True,
        timeout=30,
    )
    if status.returncode != 0:  # restart reuses the options it was started with (postmaster.opts)
        pg_ctl(server, "-l", str(server.directory / "log"), "-w", "-t", "30", "restart")


def post_sms(base: str, sid: str, sender: str, body: str, timeout: float = 15) -> int:
    params = sms_params(sid, sender, body)
    signature = twilio_signature(PUBLIC_URL + "/twilio/sms", params, AUTH_TOKEN)
    answer = requests.post(
        f"{base}/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}, timeout=timeout
    )
    return answer.status_code


def sid(label: str) -> str:
    return ("SM" + label).ljust(34, "0")


def test_burst_of_replies_across_four_workers_and_two_schedulers(stack: Stack) -> None:
    slot = latest_slot(stack.now())
    phones = write_caseload(stack.tmp / "caseload.csv", 30, DAYS[slot.weekday()], f"{slot:%H:%M}")
    out = stack.assistant(
        "import-caseload", str(stack.tmp / "caseload.csv"), "--now", (slot - timedelta(minutes=30)).isoformat()
    )
    assert "created 30" in out

    # Two senders start the check-ins due at the same instant: each is started and sent once.
    first, second = stack.tick("tick-1", slot), stack.tick("tick-2", slot)
    assert first.wait(timeout=60) == 0 and second.wait(timeout=60) == 0
    started = [
        int(m.group(1))
        for name in ("tick-1", "tick-2")
        for m in re.finditer(r"started (\d+),", (stack.tmp / f"{name}.out").read_text())
    ]
    assert sum(started) == 30
    assert len(stack.check_each_message_sent_once_in_order()) == 30

    base = stack.start_web(workers=4)
    for n in (1, 2):
        stack.spawn(f"scheduler-{n}", [str(venv_bin("assistant")), "scheduler"])
    stack.wait_until(lambda: stack.running("scheduler-1") and stack.running("scheduler-2"), 60, "schedulers running")

    # The burst: everyone answers; some send two texts at once; Twilio repeats some requests.
    jobs: list[tuple[str, str, str]] = []
    for i, phone in enumerate(phones):
        jobs.append((sid(f"{i:03d}a"), phone, "3" if i % 5 == 0 else "good"))
        if i < 15:
            jobs.append((sid(f"{i:03d}b"), phone, "yes" if i % 5 == 0 else "thanks, see you thursday"))
        if i % 3 == 0:
            jobs.append((sid(f"{i:03d}a"), phone, "3" if i % 5 == 0 else "good"))  # the same MessageSid again
    with ThreadPoolExecutor(max_workers=12) as pool:
        codes = list(pool.map(lambda job: post_sms(base, *job), jobs))
    assert codes == [200] * len(jobs)
    unique = {job[0] for job in jobs}
    stack.wait_until(lambda: stack.settled(len(unique)), 60, "every reply recorded and every answer sent")

    assert sorted(stack.inbound_sids()) == sorted(unique)  # each reply recorded exactly once
    sent = stack.check_each_message_sent_once_in_order()
    per_person: dict[str, int] = defaultdict(int)
    for _, phone, _ in sent:
        per_person[phone] += 1
    assert all(per_person[p] >= 2 for p in phones), "someone's reply went unanswered"

    # The database goes away: the webhook fails at once with a 5xx (Twilio retries), nothing hangs.
    pg_ctl(stack.server, "-m", "fast", "-w", "-t", "30", "stop")
    try:
        for n in range(4):
            began = time.monotonic()
            assert post_sms(base, sid(f"down{n}"), phones[n], "are you there?", timeout=10) == 503
            assert time.monotonic() - began < 5
        assert requests.get(f"{base}/healthz", timeout=10).status_code == 503
        # A scheduler started now (the whole machine restarting, say) waits for the database.
        stack.spawn("scheduler-3", [str(venv_bin("assistant")), "scheduler"])
        stack.wait_until(lambda: "database not reachable" in stack.output("scheduler-3.err"), 60, "scheduler 3 waits")
    finally:
        ensure_running(stack.server)

    # Back again: the web workers and the schedulers carry on by themselves.
    stack.wait_until(lambda: requests.get(f"{base}/healthz", timeout=10).status_code == 200, 60, "healthy again")
    stack.wait_until(lambda: stack.running("scheduler-3"), 60, "the scheduler started in the outage running")
    assert [requests.get(f"{base}/healthz", timeout=10).status_code for _ in range(8)] == [200] * 8
    for n in range(4):  # Twilio's retries of the refused texts
        assert post_sms(base, sid(f"down{n}"), phones[n], "are you there?") == 200
    with transaction(stack.engine) as db:
        person = db.exec(select(Participant).where(Participant.phone == phones[-1])).one()
        rt = build_runtime(test_settings(stack.server.url, stack.tmp), engine=stack.engine)
        queued_id = queue_sms(db, rt, person, "common/help", stack.now())  # only a scheduler sends this
    stack.wait_until(lambda: stack.settled(len(unique) + 4), 60, "the texts after the outage answered and sent")
    assert f"out-{queued_id}" in stack.sent_keys()

    stack.close()
    stack.check_each_message_sent_once_in_order()
    assert sorted(stack.inbound_sids()) == sorted(unique | {sid(f"down{n}") for n in range(4)})
    # The web process's log: JSON lines, no errors from the application, no phone numbers.
    log = (stack.tmp / "web.err").read_text(encoding="utf-8")
    records = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert [r for r in records if r["level"] in ("ERROR", "CRITICAL") and not r["logger"].startswith("gunicorn")] == []
    assert "7700" not in log


def test_a_sender_killed_mid_batch_loses_nothing_and_sends_nothing_twice(stack: Stack) -> None:
    at = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday morning, when texts may go
    write_caseload(stack.tmp / "caseload.csv", 20, "Fri", "10:30")
    rt = build_runtime(test_settings(stack.server.url, stack.tmp), clock=FixedClock(at))
    try:
        import_caseload(rt, stack.tmp / "caseload.csv", at - timedelta(days=1))
        with transaction(rt.engine) as db:
            people = db.exec(select(Participant).order_by(col(Participant.id))).all()
            for _ in range(6):  # six texts each, interleaved: 120 in all
                for person in people:
                    queue_sms(db, rt, person, "common/help", at)
    finally:
        rt.engine.dispose()
    paced = {"ASSISTANT_SEND_RATE": "20"}  # 20 a second: a kill lands mid-batch

    for n, (now, after) in enumerate([(at, 25), (at + timedelta(seconds=10), 60)]):
        sender = stack.tick(f"doomed-{n}", now, **paced)
        stack.wait_until(partial(stack.sent_at_least, after), 60, f"{after} sends")
        assert sender.poll() is None, "the sender finished before it could be killed"
        os.killpg(sender.pid, signal.SIGKILL)
        sender.wait(timeout=10)
        statuses = [m[2] for m in stack.outbound()]
        # Each kill leaves at most the texts its pass had claimed together, for reconciling.
        assert statuses.count("sending") <= (n + 1) * CLAIMED_TOGETHER, statuses
        assert 0 < len(stack.sent_keys()) < 120, statuses

    # Two senders start again after the claims have gone stale: the interrupted sends are
    # checked against the provider's record, and the rest go, once each.
    later = at + STALE_CLAIM + timedelta(minutes=1)
    senders = [stack.tick(f"restart-{n}", later, **paced) for n in (1, 2)]
    assert [s.wait(timeout=60) for s in senders] == [0, 0]
    sent = stack.check_each_message_sent_once_in_order()
    assert len(sent) == 120


class Provider:
    """A provider both senders call, like Twilio: no idempotency key, so it sends whatever it is asked to."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.known: dict[str, str] = {}
        self.lock = threading.Lock()


class Sender:
    name = "scripted"
    senders = 1

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.before_send: Callable[[], None] = lambda: None
        self.before_lookup: Callable[[], None] = lambda: None

    def send(self, *, to: str, body: str, key: str, status_callback: str | None) -> SendResult:
        self.before_send()
        with self.provider.lock:
            self.provider.sent.append(key)
            sid = f"SM{len(self.provider.sent):032d}"
            self.provider.known[key] = sid
        return SendResult(ok=True, sid=sid, status="queued")

    def lookup(self, *, to: str, body: str, key: str, since: datetime) -> str | None:
        self.before_lookup()
        return self.provider.known.get(key)


def test_two_senders_reconciling_the_same_stale_claim_send_it_once(postgres: PostgresServer, tmp_path: Path) -> None:
    """The interleaving, step by step, of two `tick`s that find the same stale claim."""
    _truncate_all(postgres.url)
    at = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    write_caseload(tmp_path / "caseload.csv", 1, "Fri", "10:30")
    provider = Provider()
    a, b = Sender(provider), Sender(provider)
    rt_a = build_runtime(test_settings(postgres.url, tmp_path), clock=FixedClock(at), transport=a)
    rt_b = build_runtime(test_settings(postgres.url, tmp_path), clock=FixedClock(at), transport=b)
    try:
        import_caseload(rt_a, tmp_path / "caseload.csv", at)
        with transaction(rt_a.engine) as db:
            message_id = queue_sms(db, rt_a, db.exec(select(Participant)).one(), "common/help", at)
        # A sender claimed it and died before calling the provider.
        with transaction(rt_a.engine) as db:
            row = db.get(Message, message_id)
            assert row is not None
            row.status, row.claimed_at, row.attempts = "sending", at, 1
            db.add(row)
        later = at + STALE_CLAIM + timedelta(minutes=1)

        # Sender A reconciles the same row while B is asking the provider about it, re-claims it and
        # is in the middle of its provider call when B decides.
        a_sending, b_done = threading.Event(), threading.Event()
        errors: list[BaseException] = []

        def a_sends() -> None:
            def in_the_provider_call() -> None:
                a_sending.set()
                b_done.wait(10)

            a.before_send = in_the_provider_call
            try:
                reconcile_stale(rt_a, later)
                send_due(rt_a, later)
            except BaseException as exc:
                errors.append(exc)
                a_sending.set()

        thread = threading.Thread(target=a_sends)

        def b_looks_up() -> None:
            b.before_lookup = lambda: None
            thread.start()
            assert a_sending.wait(10)

        b.before_lookup = b_looks_up
        try:
            reconcile_stale(rt_b, later)
            send_due(rt_b, later)
        finally:
            b_done.set()
            thread.join(20)
        assert not errors and not thread.is_alive()
        with transaction(rt_a.engine) as db:
            final = db.get(Message, message_id)
        assert final is not None and final.status == "sent"
        assert provider.sent == [f"out-{message_id}"], f"sent {len(provider.sent)} times"
    finally:
        rt_a.engine.dispose()
        rt_b.engine.dispose()


# --- a web worker killed in the middle of a request ----------------------------------------------


def pid_with_local_port(port: int, pids: set[int]) -> int | None:
    """Which of `pids` holds the TCP socket whose local end is 127.0.0.1:`port` (from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as fh:
            for line in fh.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        try:
            links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        except OSError:
            continue
        if links & inodes:
            return pid
    return None


def post_sms_outcome(base: str, sid: str, sender: str, body: str) -> int | str:
    """The HTTP status, or the name of what went wrong instead (the connection dropped, ...)."""
    try:
        return post_sms(base, sid, sender, body, timeout=60)
    except requests.RequestException as exc:
        return type(exc).__name__


def rows_about(engine: sa.Engine, participant_id: int, message_sid: str) -> dict[str, str]:
    """A digest of every row about one participant (and the receipt of one MessageSid), table by table."""
    digests = {}
    with engine.connect() as c:
        for table in SQLModel.metadata.sorted_tables:
            args: dict[str, object]
            if table.name == "participant":
                where, args = "id = :p", {"p": participant_id}
            elif table.name == "inboundreceipt":
                where, args = "message_sid = :s", {"s": message_sid}
            elif "participant_id" in table.c:
                where, args = "participant_id = :p", {"p": participant_id}
            else:
                continue
            digest = "md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
            row = c.execute(sa.text(f'SELECT count(*), {digest} FROM "{table.name}" t WHERE {where}'), args).one()
            digests[table.name] = f"{row[0]} {row[1]}"
    return digests


def waiting_backends(engine: sa.Engine, blocker: int) -> list[tuple[int, int]]:
    """(backend pid, client port) of the sessions waiting for a lock that backend `blocker` holds."""
    with engine.connect() as c:
        rows = c.execute(
            sa.text(
                "SELECT pid, client_port FROM pg_stat_activity WHERE CAST(:b AS integer) = ANY(pg_blocking_pids(pid))"
            ),
            {"b": blocker},
        )
        return [(int(r[0]), int(r[1])) for r in rows]


def backend_alive(engine: sa.Engine, pid: int) -> bool:
    with engine.connect() as c:
        return c.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid}).scalar() == 1


def participant_ids(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as c:
        return {str(r[1]): int(r[0]) for r in c.execute(sa.text("SELECT id, phone FROM participant"))}


def start_checkins(stack: Stack, count: int) -> list[str]:
    """`count` people, each with this week's check-in asked and waiting for an answer."""
    slot = latest_slot(stack.now())
    phones = write_caseload(stack.tmp / "caseload.csv", count, DAYS[slot.weekday()], f"{slot:%H:%M}")
    stack.assistant(
        "import-caseload", str(stack.tmp / "caseload.csv"), "--now", (slot - timedelta(minutes=30)).isoformat()
    )
    assert stack.tick("tick", slot).wait(timeout=60) == 0
    assert len(stack.check_each_message_sent_once_in_order()) == count
    return phones


@dataclass
class Doomed:
    """A webhook request held inside its transaction, and the worker that was handling it, killed."""

    worker: int
    backend: int
    answer: Future[int | str]


def kill_worker_inside_transaction(
    stack: Stack, base: str, pool: ThreadPoolExecutor, lock: sa.Connection, phone: str, message_sid: str
) -> Doomed:
    """Post a text while the test holds the participant's row lock, then SIGKILL the worker waiting for it.

    The worker has inserted the MessageSid's receipt and waits in `lock_participant`, inside
    the inbound transaction; the test's session holding the lock is how it is found.
    """
    assert stack.web is not None
    holder = int(lock.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
    lock.execute(sa.text("SELECT id FROM participant WHERE phone = :p FOR UPDATE"), {"p": phone})
    answer = pool.submit(post_sms_outcome, base, message_sid, phone, "good")
    stack.wait_until(lambda: len(waiting_backends(stack.engine, holder)) == 1, 60, "the request waiting for the lock")
    [(backend, client_port)] = waiting_backends(stack.engine, holder)
    worker = pid_with_local_port(client_port, child_pids(stack.web.pid))
    assert worker is not None, "no gunicorn worker holds the waiting database connection"
    os.kill(worker, signal.SIGKILL)
    assert answer.result(timeout=30) != 200, "the killed worker answered"  # Twilio sees an error, and retries
    return Doomed(worker, backend, answer)


def test_a_web_worker_killed_inside_the_inbound_transaction_loses_nothing(stack: Stack) -> None:
    phones = start_checkins(stack, 8)
    ids = participant_ids(stack.engine)
    # A long gunicorn timeout: the test, not gunicorn's watchdog, kills the waiting worker. A long
    # lock timeout: the orphaned session waits for the test's lock however slow the machine is.
    slow = {"ASSISTANT_DB_LOCK_TIMEOUT": "60", "ASSISTANT_DB_STATEMENT_TIMEOUT": "60"}
    base = stack.start_web(3, "--timeout", "120", **slow)
    assert stack.web is not None
    master = stack.web.pid
    workers = child_pids(master)
    assert len(workers) == 3
    first, second = phones[0], phones[1]
    before = rows_about(stack.engine, ids[first], sid("killed-a"))

    with ThreadPoolExecutor(max_workers=4) as pool, stack.engine.connect() as lock:
        # 1. Killed while waiting for the participant's lock, its receipt inserted but not committed.
        lock.begin()
        doomed = kill_worker_inside_transaction(stack, base, pool, lock, first, sid("killed-a"))
        killed = {doomed.worker}
        # The other workers carry on, while the killed one's database session still waits.
        assert [post_sms(base, sid(f"other-{n}"), phones[n], "good") for n in (4, 5, 6)] == [200] * 3
        assert backend_alive(stack.engine, doomed.backend)
        lock.rollback()  # the lock is free: the orphaned session finds its client gone and rolls back
        stack.wait_until(lambda: not backend_alive(stack.engine, doomed.backend), 60, "the orphaned session ended")
        assert rows_about(stack.engine, ids[first], sid("killed-a")) == before, "the killed request left rows"

        stack.wait_until(lambda: len(child_pids(master)) == 3, 60, "gunicorn replaced the worker")
        assert doomed.worker not in child_pids(master)
        # Twilio's retry: the same MessageSid, the same signed request; then once more for good measure.
        assert post_sms(base, sid("killed-a"), first, "good") == 200
        assert post_sms(base, sid("killed-a"), first, "good") == 200

        # 2. Killed the same way, but Twilio's retry comes while the orphaned transaction still holds
        # the uncommitted receipt: the retry waits for it to roll back, then records the text once.
        lock.begin()
        doomed = kill_worker_inside_transaction(stack, base, pool, lock, second, sid("killed-b"))
        killed.add(doomed.worker)
        stack.wait_until(lambda: len(child_pids(master)) == 3, 60, "gunicorn replaced the worker")
        retry = pool.submit(post_sms_outcome, base, sid("killed-b"), second, "good")
        stack.wait_until(
            lambda: len(waiting_backends(stack.engine, doomed.backend)) == 1, 60, "the retry waiting on the receipt"
        )
        lock.rollback()
        assert retry.result(timeout=60) == 200

    expected = {sid("killed-a"), sid("killed-b")} | {sid(f"other-{n}") for n in (4, 5, 6)}
    stack.wait_until(lambda: stack.settled(len(expected)), 60, "every reply recorded and every answer sent")
    assert sorted(stack.inbound_sids()) == sorted(expected)  # each recorded exactly once
    sent = stack.check_each_message_sent_once_in_order()
    per_person = Counter(phone for _, phone, _ in sent)
    for phone in (first, second, phones[4], phones[5], phones[6]):
        assert per_person[phone] == 2, f"{phone}: the check-in and one answer to the reply, not {per_person[phone]}"
    with stack.engine.connect() as c:
        answers = c.execute(sa.text("SELECT participant_id, count(*) FROM answer GROUP BY participant_id")).all()
    assert {int(r[0]): int(r[1]) for r in answers} == {ids[p]: 1 for p in (first, second, *phones[4:7])}
    # The siblings were never restarted: only the killed workers were replaced.
    assert workers - killed <= child_pids(master)


DATE = "Tue, 24 Nov 2026 10:00:00 +0000"


class HeldTwilio:
    """Twilio's Messages API, just enough of it: creates are recorded (the text goes out), and
    the answer to a create for `hold_to` is held back until `release` is set. Lists answer lookups."""

    def __init__(self, hold_to: str) -> None:
        self.hold_to = hold_to
        self.created: list[dict[str, str]] = []
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.held_port = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def reply(self, status: int, payload: dict[str, object]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the caller was killed while we held its answer
                    pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                with fake.lock:
                    message = {"sid": "SM" + uuid.uuid4().hex, "to": form["To"], "body": form["Body"]}
                    fake.created.append(message)
                if form["To"] == fake.hold_to:
                    fake.held_port = self.client_address[1]
                    fake.arrived.set()
                    fake.release.wait(120)
                self.reply(201, {**message, "status": "queued", "date_created": DATE, "date_sent": None})

            def do_GET(self) -> None:
                to = parse_qs(urlsplit(self.path).query).get("To", [""])[0]
                with fake.lock:
                    found = [{**m, "status": "delivered", "date_sent": DATE} for m in fake.created if m["to"] == to]
                self.reply(200, {"messages": found, "next_page_uri": None, "page": 0, "page_size": 50})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_web_worker_killed_after_the_commit_before_answering_sends_the_reply_once(stack: Stack) -> None:
    """Killed after the inbound transaction committed and while its reply was with the provider, unanswered.

    With ASSISTANT_DISPATCH=inline the worker sends the reply before it answers Twilio, so a
    provider that holds its answer keeps the worker between its commit and its response: a
    known point to kill it at. The reply went out but the worker never learnt so; Twilio's
    retry is a duplicate, and the scheduler asks the provider about the claim instead of resending.
    """
    phones = start_checkins(stack, 3)
    person = phones[0]
    twilio = HeldTwilio(hold_to=person)
    provider = {
        "ASSISTANT_SMS_TRANSPORT": "twilio",
        "ASSISTANT_TWILIO_API_URL": twilio.url,
        "TWILIO_FROM_NUMBER": "+447700900000",
    }
    try:
        base = stack.start_web(2, "--timeout", "120", ASSISTANT_DISPATCH="inline", **provider)
        assert stack.web is not None
        master = stack.web.pid
        workers = child_pids(master)
        with ThreadPoolExecutor(max_workers=2) as pool:
            answer = pool.submit(post_sms_outcome, base, sid("committed"), person, "good")
            assert twilio.arrived.wait(30), "the reply never reached the provider"
            worker = pid_with_local_port(twilio.held_port, workers)
            assert worker is not None, "no gunicorn worker is waiting for the provider"
            assert stack.inbound_sids() == [sid("committed")]  # committed before the send
            os.kill(worker, signal.SIGKILL)
            assert answer.result(timeout=30) != 200
        reply = [m for m in stack.outbound() if m[1] == person][-1]
        assert reply[2] == "sending"  # claimed, outcome unknown to us

        stack.wait_until(lambda: len(child_pids(master)) == 2, 60, "gunicorn replaced the worker")
        assert post_sms(base, sid("committed"), person, "good") == 200  # Twilio's retry: a duplicate
        assert post_sms(base, sid("other"), phones[1], "good") == 200  # and the service carries on
        assert workers - {worker} <= child_pids(master)
        assert stack.inbound_sids() == [sid("committed"), sid("other")]
        assert [m for m in stack.outbound() if m[1] == person][-1] == reply  # no second reply queued

        # The scheduler finds the stale claim, asks the provider, and records it as sent.
        later = stack.now() + STALE_CLAIM + timedelta(minutes=1)
        assert stack.tick("reconcile", later, **provider).wait(timeout=60) == 0
        assert [m for m in stack.outbound() if m[1] == person][-1] == (reply[0], person, "sent")
        assert [m["to"] for m in twilio.created].count(person) == 1, "the reply was sent twice"
        assert [m["to"] for m in twilio.created].count(phones[1]) == 1
        with stack.engine.connect() as c:
            answers = c.execute(sa.text("SELECT count(*) FROM answer")).scalar_one()
        assert answers == 2
    finally:
        twilio.close()
