"""deploy/ as an operator uses it: gunicorn.conf.py under a real gunicorn, the settings example,
the systemd units, the runbook's commands and its backup and restore; the app behind a reverse
proxy (ProxyFix); and the JSON-lines logs, which never show a phone number or a message body.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import fields
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask import Flask, request
from sqlmodel import func, select

from assistant.app import create_app
from assistant.cli.commands import main as cli_main
from assistant.clock import FixedClock
from assistant.config import _ENV_NAMES, ConfigError, Settings, load_settings
from assistant.db.models import InboundReceipt, Message, Participant
from assistant.db.units import transaction, upgrade
from assistant.imports.caseload import import_caseload
from assistant.jobs.tick import tick
from assistant.logs import QUIET_LIBRARIES, JsonLinesHandler, configure, gunicorn_logconfig
from assistant.runtime import Runtime, build_runtime
from assistant.signing import twilio_signature
from assistant.transports import ConsoleTransport

from .conftest import AUTH_TOKEN, PUBLIC_URL, START, _truncate_all, test_settings
from .pg import PostgresServer
from .ports import free_port

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
UNITS = ("assistant-web.service", "assistant-scheduler.service")
AUDIT_UNITS = ("assistant-audit.service", "assistant-audit.timer")
INSTALL_ROOT = "/opt/assistant"
ENV_FILE = "/etc/assistant/assistant.env"
SETTING_NAMES = {_ENV_NAMES.get(f.name, "ASSISTANT_" + f.name.upper()) for f in fields(Settings)}


def venv_bin(name: str) -> Path:
    """A console script of this virtualenv (the one running the tests)."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return here
    found = shutil.which(name)
    assert found, f"{name} is not installed"
    return Path(found)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any of the service's own settings, plus `extra`."""
    prefixes = ("ASSISTANT_", "TWILIO_", "WEB_", "FLASK_", "FORWARDED_ALLOW_IPS", "GUNICORN_CMD_ARGS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(extra)
    return env


def stop_process(proc: subprocess.Popen[bytes], grace: float = 15) -> None:
    """SIGTERM to the process group, then SIGKILL if it has not gone within `grace` seconds."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass


def wait_http(url: str, *, deadline: float, proc: subprocess.Popen[bytes] | None = None) -> requests.Response:
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}")
        try:
            return requests.get(url, timeout=5)
        except (requests.ConnectionError, requests.Timeout) as exc:  # still booting
            last = exc
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in time: {last}")


def sms_params(sid: str, sender: str, body: str) -> dict[str, str]:
    return {"MessageSid": sid, "AccountSid": "AC" + "1" * 32, "From": sender, "To": "+447700900000", "Body": body}


# --- gunicorn.conf.py under a real gunicorn ---------------------------------------------------


def test_gunicorn_conf_serves_the_app_with_json_access_logs(tmp_path: Path, sqlite_template: Path) -> None:
    db = tmp_path / "assistant.db"
    shutil.copy(sqlite_template, db)
    port = free_port()
    env = clean_env(
        WEB_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="2",
        ASSISTANT_DATABASE_URL=f"sqlite:///{db}",
        ASSISTANT_PUBLIC_URL=PUBLIC_URL,
        ASSISTANT_PROXY_HOPS="1",
        ASSISTANT_DISPATCH="inline",
        ASSISTANT_CONSOLE_LOG=str(tmp_path / "sms.jsonl"),
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        PYTHONUNBUFFERED="1",
    )
    out, err = tmp_path / "gunicorn.out", tmp_path / "gunicorn.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [str(venv_bin("gunicorn")), "-c", str(DEPLOY / "gunicorn.conf.py"), "assistant:create_app()"],
            cwd=tmp_path,  # nothing in the configuration depends on the working directory
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        health = wait_http(f"{base}/healthz?to=07700900123", deadline=time.monotonic() + 90, proc=proc)
        assert health.status_code == 200 and health.json() == {"status": "ok", "database": "ok"}

        # A signed webhook as the reverse proxy passes it on: another Host, X-Forwarded-*.
        params = sms_params("SM" + "d" * 32, "+447700900999", "hello, call me on 07700 900888")
        proxied = {
            "Host": "10.1.2.3:8000",
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "assistant.example.org",
        }
        signature = twilio_signature(PUBLIC_URL + "/twilio/sms", params, AUTH_TOKEN)
        answer = requests.post(
            f"{base}/twilio/sms", data=params, headers={**proxied, "X-Twilio-Signature": signature}, timeout=10
        )
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/xml")
        # Signed for the address gunicorn is really on: not what Twilio calls, so refused.
        wrong = twilio_signature(f"{base}/twilio/sms", params, AUTH_TOKEN)
        refused = requests.post(f"{base}/twilio/sms", data=params, headers={"X-Twilio-Signature": wrong}, timeout=10)
        assert refused.status_code == 403
    finally:
        stop_process(proc)
    assert proc.returncode == 0, err.read_text()

    lines = [line for line in err.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert sum("Booting worker" in r["message"] for r in records) >= 2
    access = [r for r in records if r["logger"] == "gunicorn.access"]
    seen = [(a["http"]["method"], a["http"]["path"], a["http"]["status"]) for a in access]
    assert [s for s in seen if s[1] != "/healthz"] == [("POST", "/twilio/sms", "200"), ("POST", "/twilio/sms", "403")]
    assert ("GET", "/healthz", "200") in seen
    text = err.read_text()
    assert "?" not in "".join(a["message"] for a in access)  # no query strings
    assert "7700" not in text and "hello" not in text  # no phone numbers, no bodies
    # The unknown number got its one neutral reply, sent once.
    [sent] = [json.loads(line) for line in (tmp_path / "sms.jsonl").read_text().splitlines()]
    assert sent["to"] == "+447700900999"


# --- ProxyFix: the right scheme, host and client behind a reverse proxy ------------------------

FORWARDED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "assistant.example.org",
}
INTERNAL = "http://10.1.2.3:8000"  # where the proxy reaches the app


@pytest.fixture
def app_with_hops(tmp_path: Path, sqlite_template: Path) -> Iterator[Callable[[int], tuple[Flask, Runtime]]]:
    runtimes: list[Runtime] = []

    def make(hops: int) -> tuple[Flask, Runtime]:
        path = tmp_path / f"hops{hops}.db"
        shutil.copy(sqlite_template, path)
        settings = test_settings(f"sqlite:///{path}", tmp_path, proxy_hops=hops)
        rt = build_runtime(
            settings, clock=FixedClock(START), transport=ConsoleTransport(record=None, stream=io.StringIO())
        )
        runtimes.append(rt)
        app = create_app(runtime=rt)

        @app.get("/_seen")
        def seen() -> dict[str, Any]:
            return {"scheme": request.scheme, "host": request.host, "remote": request.remote_addr, "url": request.url}

        return app, rt

    yield make
    for rt in runtimes:
        rt.engine.dispose()


def _post_signed(app: Flask, sid: str, headers: dict[str, str], *, url: str = PUBLIC_URL) -> Any:
    params = sms_params(sid, "+447700900555", "hello")
    signature = twilio_signature(url + "/twilio/sms", params, AUTH_TOKEN)
    return app.test_client().post(
        "/twilio/sms",
        data=params,
        headers={**headers, "X-Twilio-Signature": signature},
        base_url=INTERNAL,
        environ_base={"REMOTE_ADDR": "10.1.2.1"},
    )


def _inbound_sids(rt: Runtime) -> list[str]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(InboundReceipt.message_sid)).all())


def test_behind_a_proxy_the_app_sees_the_client_and_signed_requests_still_validate(
    app_with_hops: Callable[[int], tuple[Flask, Runtime]],
) -> None:
    app, rt = app_with_hops(1)
    client = app.test_client()
    seen = client.get("/_seen", headers=FORWARDED, base_url=INTERNAL, environ_base={"REMOTE_ADDR": "10.1.2.1"}).json
    assert seen == {
        "scheme": "https",
        "host": "assistant.example.org",
        "remote": "203.0.113.7",
        "url": PUBLIC_URL + "/_seen",
    }
    # Only the last hop is believed: a client cannot choose its own address.
    spoofed = client.get(
        "/_seen",
        headers={**FORWARDED, "X-Forwarded-For": "198.51.100.66, 203.0.113.7"},
        base_url=INTERNAL,
        environ_base={"REMOTE_ADDR": "10.1.2.1"},
    ).json
    assert spoofed is not None and spoofed["remote"] == "203.0.113.7"

    assert _post_signed(app, "SM" + "a" * 32, FORWARDED).status_code == 200
    # A signature over the URL the proxy used inside is not Twilio's: refused.
    assert _post_signed(app, "SM" + "b" * 32, FORWARDED, url=INTERNAL).status_code == 403
    assert _inbound_sids(rt) == ["SM" + "a" * 32]


def test_without_proxy_hops_forwarded_headers_are_ignored(
    app_with_hops: Callable[[int], tuple[Flask, Runtime]],
) -> None:
    app, rt = app_with_hops(0)
    seen = (
        app.test_client()
        .get("/_seen", headers=FORWARDED, base_url=INTERNAL, environ_base={"REMOTE_ADDR": "10.1.2.1"})
        .json
    )
    assert seen is not None and (seen["scheme"], seen["host"], seen["remote"]) == ("http", "10.1.2.3:8000", "10.1.2.1")
    # Signatures are checked against ASSISTANT_PUBLIC_URL, so a request through a proxy still validates.
    assert _post_signed(app, "SM" + "c" * 32, FORWARDED).status_code == 200
    assert _inbound_sids(rt) == ["SM" + "c" * 32]


# --- Logs: JSON lines, phone numbers redacted, bodies never -------------------------------------


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    libraries = {name: logging.getLogger(name).level for name in QUIET_LIBRARIES}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, lib_level in libraries.items():
        logging.getLogger(name).setLevel(lib_level)


def test_a_log_record_with_a_phone_number_comes_out_redacted() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("assistant.tests.redaction")
    logger.propagate, logger.level = False, logging.INFO
    handler = JsonLinesHandler(stream)
    logger.addHandler(handler)
    try:
        logger.warning("reply from %s, forwarded to %s", "+447700900123", "07700 900456")
        logger.info("texted", extra={"phone": 447700900789, "message_id": 41, "body": "my week was awful"})
        try:
            raise sa.exc.IntegrityError(
                "INSERT INTO message (phone, body) VALUES (%s, %s)",
                ("+44 7700 900321", "I lost my job today"),
                Exception("duplicate key value violates unique constraint: Key (phone)=(+447700900321)"),
            )
        except sa.exc.IntegrityError:
            logger.exception("could not record a text")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    first, second, third = (json.loads(line) for line in text.splitlines())
    assert first["message"] == "reply from [phone], forwarded to [phone]" and first["level"] == "WARNING"
    assert (second["phone"], second["message_id"], second["body"]) == ("[phone]", 41, "[not logged]")
    assert third["level"] == "ERROR" and "IntegrityError" in third["exception"]
    assert "[parameters: not logged]" in third["exception"]
    assert not re.search(r"7700\s?900", text), text
    assert "awful" not in text and "lost my job" not in text


def test_create_app_logs_json_lines_at_the_configured_level(
    root_logging: None, tmp_path: Path, sqlite_template: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "assistant.db"
    shutil.copy(sqlite_template, path)
    rt = build_runtime(test_settings(f"sqlite:///{path}", tmp_path, log_level="WARNING"), clock=FixedClock(START))
    try:
        create_app(runtime=rt)
        create_app(runtime=rt)
    finally:
        rt.engine.dispose()
    root = logging.getLogger()
    assert sum(isinstance(h, JsonLinesHandler) for h in root.handlers) == 1
    assert root.level == logging.WARNING
    capsys.readouterr()
    logging.getLogger("assistant.sending.sender").info("not at WARNING")
    logging.getLogger("assistant.sending.sender").warning("send failed to %s", "+447700900123")
    [line] = capsys.readouterr().err.splitlines()
    assert json.loads(line)["message"] == "send failed to [phone]"


def test_libraries_that_would_log_sql_parameters_stay_quiet(root_logging: None) -> None:
    configure("DEBUG", stream=io.StringIO())
    assert logging.getLogger().isEnabledFor(logging.DEBUG)
    # SQLAlchemy logs every statement with its parameters (phones, bodies) at INFO.
    assert not logging.getLogger("sqlalchemy.engine.Engine").isEnabledFor(logging.INFO)
    assert not logging.getLogger("twilio.http_client").isEnabledFor(logging.INFO)
    config = gunicorn_logconfig("DEBUG")
    assert config["loggers"]["sqlalchemy"]["level"] == "WARNING"
    with pytest.raises(ConfigError, match="ASSISTANT_LOG_LEVEL"):
        configure("LOUD")


# --- The settings example -----------------------------------------------------------------------


def read_env_file(path: Path) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """systemd EnvironmentFile syntax as written here: NAME=value, quotes optional, # comments."""
    values: dict[str, str] = {}
    order: list[tuple[int, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line)
        assert match, f"{path.name}:{number}: not NAME=value: {line!r}"
        name, raw = match.groups()
        assert name not in values, f"{path.name}:{number}: {name} twice"
        value = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
        assert " " not in raw or raw.startswith('"'), f"{path.name}:{number}: quote a value with spaces"
        assert not set("$`\\") & set(value), f"{path.name}:{number}: systemd and a shell would differ"
        values[name] = value
        order.append((number, name))
    return values, order


def gunicorn_conf_reads() -> set[str]:
    return set(re.findall(r"os\.environ\.get\(\"(\w+)\"", (DEPLOY / "gunicorn.conf.py").read_text()))


def test_the_env_example_lists_exactly_the_settings_each_explained() -> None:
    path = DEPLOY / "assistant.env.example"
    values, order = read_env_file(path)
    ours = {n for n in values if n.startswith(("ASSISTANT_", "TWILIO_"))}
    assert ours == SETTING_NAMES, f"missing: {SETTING_NAMES - ours}; not settings: {ours - SETTING_NAMES}"
    # The rest are the web server's, and every one gunicorn.conf.py reads is here.
    assert set(values) - ours == gunicorn_conf_reads() - SETTING_NAMES
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, name in order:
        above = lines[number - 2]
        assert above.startswith("# ") and len(above) > 12, f"{name} has no one-line explanation above it"

    # A shell reads it the same way (the runbook's admin commands source it).
    shell = subprocess.run(
        ["sh", "-c", 'set -a; . "$1"; env -0', "sh", str(path)], capture_output=True, text=True, timeout=30, env={}
    )
    assert shell.returncode == 0, shell.stderr
    sourced = dict(item.split("=", 1) for item in shell.stdout.split("\0") if "=" in item)
    assert {name: sourced.get(name) for name in values} == values

    # As shipped it loads (every number is a number) and, as it should, refuses production without secrets.
    settings = load_settings(values)
    assert (settings.env, settings.sms_transport, int(settings.proxy_hops)) == ("production", "twilio", 1)
    with pytest.raises(ConfigError):
        settings.validate()
    secrets = {
        "ASSISTANT_SECRET_KEY": "Zq3v8LkP0wXrT5mN2bYc7HdJ4sFg9QeA1uKi6oWzVt2Rn8Ly",
        "TWILIO_ACCOUNT_SID": "AC" + "2" * 32,
        "TWILIO_AUTH_TOKEN": "t" * 32,
        "TWILIO_FROM_NUMBER": "+447700900000",
    }
    load_settings(values | secrets).validate()
    # What "REQUIRED" marks is exactly what has to be filled in (and the public URL, to be changed).
    required = {line.split("=")[0] for prev, line in itertools.pairwise(lines) if prev.startswith("# REQUIRED")}
    assert required == set(secrets) | {"ASSISTANT_PUBLIC_URL"}
    assert all(values[name] == "" for name in secrets)


# --- systemd units --------------------------------------------------------------------------------


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(("#", ";")):
            continue
        if header := re.fullmatch(r"\[([A-Za-z]+)\]", line.strip()):
            current = sections.setdefault(header.group(1), {})
            continue
        assert current is not None, f"{path.name}:{number}: a setting outside any section"
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z]+", key.strip()), f"{path.name}:{number}: not Key=Value: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def local_command(argv: list[str]) -> Path:
    """The file on this machine a unit's command names (the install root is this checkout)."""
    program = argv[0]
    if program.startswith(f"{INSTALL_ROOT}/.venv/bin/"):
        return venv_bin(Path(program).name)
    return Path(program)


def check_assistant_subcommand(argv: list[str]) -> None:
    if Path(argv[0]).name == "assistant":
        assert argv[1] in cli_main.commands, f"`assistant {argv[1]}` is not a command"


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_units_parse_and_run_commands_that_exist(unit: str) -> None:
    sections = parse_unit(DEPLOY / unit)
    assert {"Unit", "Service", "Install"} <= sections.keys()
    service = sections["Service"]
    single = {key: values[-1] for key, values in service.items()}
    assert single["Restart"] == "always"
    assert single["EnvironmentFile"] == ENV_FILE
    assert (single["NoNewPrivileges"], single["ProtectSystem"], single["PrivateTmp"]) == ("yes", "strict", "yes")
    assert single["User"] == "assistant" and single["WorkingDirectory"] == INSTALL_ROOT
    assert sections["Install"]["WantedBy"] == ["multi-user.target"]
    commands = [shlex.split(c) for key in ("ExecStartPre", "ExecStart", "ExecReload") for c in service.get(key, [])]
    for argv in commands:
        program = local_command(argv)
        assert program.is_file() and os.access(program, os.X_OK), f"{argv[0]} is not an executable here"
        check_assistant_subcommand(argv)
    [start] = [shlex.split(c) for c in service["ExecStart"]]
    if unit == "assistant-web.service":
        assert [Path(a).name for a in shlex.split(service["ExecStartPre"][0])] == ["assistant", "db-upgrade"]
        assert Path(start[0]).name == "gunicorn" and start[-1] == "assistant:create_app()"
        conf = start[start.index("-c") + 1]
        assert conf == f"{INSTALL_ROOT}/deploy/gunicorn.conf.py" and (REPO / "deploy" / "gunicorn.conf.py").is_file()
        assert single["Type"] == "notify"  # gunicorn tells systemd when it is ready
    else:
        assert [Path(start[0]).name, *start[1:]] == ["assistant", "scheduler"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    env_file = tmp_path / "assistant.env"
    env_file.write_text("")
    for unit in (*UNITS, *AUDIT_UNITS):
        text = (DEPLOY / unit).read_text(encoding="utf-8")
        text = text.replace(f"{INSTALL_ROOT}/.venv/bin/", f"{venv_bin('gunicorn').parent}/")
        text = text.replace(INSTALL_ROOT, str(REPO)).replace(ENV_FILE, str(env_file))
        (tmp_path / unit).write_text(text, encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / u) for u in (*UNITS, *AUDIT_UNITS))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert not [line for line in output.splitlines() if "assistant-" in line], output


def test_the_weekly_audit_timer_runs_the_audit_service_and_it_emails_the_admins() -> None:
    timer = parse_unit(DEPLOY / "assistant-audit.timer")
    assert timer["Timer"]["Unit"] == ["assistant-audit.service"]
    assert timer["Timer"]["Persistent"] == ["true"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]
    [calendar] = timer["Timer"]["OnCalendar"]
    if shutil.which("systemd-analyze"):
        result = subprocess.run(
            ["systemd-analyze", "calendar", "--iterations=2", calendar], capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, result.stderr
        # Once a week: the next two runs are seven days apart.
        days = re.findall(r"\d{4}-\d{2}-\d{2}", result.stdout.split("Next elapse:", 1)[1])
        assert len(days) >= 2
        assert (date.fromisoformat(days[1]) - date.fromisoformat(days[0])).days == 7

    sections = parse_unit(DEPLOY / "assistant-audit.service")
    service = {key: values[-1] for key, values in sections["Service"].items()}
    assert service["Type"] == "oneshot" and "Install" not in sections  # started by the timer only
    assert service["EnvironmentFile"] == ENV_FILE and service["User"] == "assistant"
    assert (service["NoNewPrivileges"], service["ProtectSystem"], service["PrivateTmp"]) == ("yes", "strict", "yes")
    argv = shlex.split(service["ExecStart"])
    program = local_command(argv)
    assert program.is_file() and os.access(program, os.X_OK)
    check_assistant_subcommand(argv)
    assert argv[1] == "audit-dependencies" and "--email-admins" in argv
    command = cli_main.commands["audit-dependencies"]
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    assert {a for a in argv[2:] if a.startswith("--")} <= options
    lock = argv[argv.index("--requirement") + 1]
    assert lock == f"{INSTALL_ROOT}/requirements-run.lock" and (REPO / "requirements-run.lock").is_file()
    assert argv[argv.index("--pip-audit") + 1] == f"{INSTALL_ROOT}/.audit-venv/bin/pip-audit"


# --- The runbook ----------------------------------------------------------------------------------


def runbook_lines() -> list[str]:
    text = (DEPLOY / "RUNBOOK.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:sh|bash)\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_the_runbook_commands_name_real_subcommands_units_and_files() -> None:
    lines = runbook_lines()
    used = [m.group(1) for line in lines if (m := re.match(r"assistant ([a-z][a-z-]*)", line))]
    assert {"db-upgrade", "import-caseload"} <= set(used)
    for name in used:
        assert name in cli_main.commands, f"the runbook uses `assistant {name}`, which is not a command"
    units = {u for line in lines if line.startswith("systemctl ") for u in re.findall(r"assistant-[a-z]+", line)}
    assert units == {"assistant-web", "assistant-scheduler", "assistant-audit"}
    assert all((DEPLOY / f"{u}.service").is_file() for u in units)
    text = (DEPLOY / "RUNBOOK.md").read_text(encoding="utf-8")
    for path in set(re.findall(rf"{INSTALL_ROOT}/deploy/([\w.-]+)", text)):
        assert (DEPLOY / path).is_file(), path
    bind = re.search(r'or "([\d.]+:\d+)"', (DEPLOY / "gunicorn.conf.py").read_text())
    assert bind and f"curl -fsS http://{bind.group(1)}/healthz" in lines
    for needed in ("pg_dump ", "pg_restore ", "journalctl ", "db-upgrade"):
        assert any(needed in line for line in lines), needed


@pytest.mark.postgres
def test_the_runbooks_backup_and_restore_round_trip(postgres: PostgresServer, tmp_path: Path) -> None:
    """pg_dump and pg_restore with the runbook's own options, then `assistant db-upgrade` on the copy."""
    _truncate_all(postgres.url)
    caseload = tmp_path / "caseload.csv"
    caseload.write_text(
        "participant_id,first_name,phone,specialist_email,checkin_day,checkin_time\n"
        "P001,Alex,07700 900101,sam.jones@example.org,Tue,10:30\n"
        "P002,Jordan,07700 900102,sam.jones@example.org,Tue,10:30\n"
    )
    rt = build_runtime(test_settings(postgres.url, tmp_path), clock=FixedClock(START))
    import_caseload(rt, caseload, START)
    tick(rt, START.replace(day=24, hour=10, minute=30))
    rt.engine.dispose()

    dump_lines = [line for line in runbook_lines() if line.startswith("sudo -u postgres pg_dump ")]
    restore_lines = [line for line in runbook_lines() if line.startswith("sudo -u postgres pg_restore ")]
    assert dump_lines and restore_lines
    dump_flags = [a for a in shlex.split(dump_lines[0]) if a.startswith("--") and not a.startswith("--file=")]
    restore_flags = [a for a in shlex.split(restore_lines[0]) if a.startswith("--") and not a.startswith("--dbname=")]
    assert "--format=custom" in dump_flags and "--exit-on-error" in restore_flags

    connect = ["--host=127.0.0.1", f"--port={postgres.port}", "--username=postgres"]
    admin = sa.create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    copy = f"restored_{os.getpid()}"
    with admin.connect() as c:
        if not c.exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = 'assistant'").first():
            c.exec_driver_sql("CREATE ROLE assistant")
        c.exec_driver_sql(f"DROP DATABASE IF EXISTS {copy}")
        c.exec_driver_sql(f"CREATE DATABASE {copy} OWNER assistant")
    try:
        dump = tmp_path / "assistant.dump"
        subprocess.run(
            [str(postgres.bindir / "pg_dump"), *connect, *dump_flags, f"--file={dump}", "postgres"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        subprocess.run(
            [str(postgres.bindir / "pg_restore"), *connect, f"--dbname={copy}", *restore_flags, str(dump)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        url = postgres.url_for(copy)
        result = subprocess.run(
            [str(venv_bin("assistant")), "db-upgrade"],
            env=clean_env(ASSISTANT_DATABASE_URL=url),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0 and "database is up to date" in result.stdout, result.stderr
        upgrade(url)
        engine = sa.create_engine(url)
        try:
            with transaction(engine) as db:
                people = db.exec(select(func.count()).select_from(Participant)).one()
                texts = db.exec(select(Message.status).where(Message.direction == "out")).all()
        finally:
            engine.dispose()
        assert people == 2 and texts == ["sent", "sent"]
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {copy} WITH (FORCE)")
        admin.dispose()
