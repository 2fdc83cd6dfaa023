"""The dependency audit counts what pip-audit checked: packages it skipped are a warning, never
"no known vulnerabilities"; a known vulnerability fails; the weekly job emails the service admins."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import select

from assistant.care.mail import send_notifications
from assistant.cli.commands import main as cli_main
from assistant.cli.dependency_audit import (
    CLEAN,
    NOT_AUDITED,
    VULNERABLE,
    AuditResult,
    main,
    parse_report,
    queue_admin_emails,
    verdict,
)
from assistant.db.models import Notification, Service, User
from assistant.db.units import transaction
from assistant.runtime import Runtime

REPO = Path(__file__).resolve().parent.parent
PACKAGES = [("flask", "3.1.0"), ("requests", "2.32.3"), ("jinja2", "3.1.4")]
OSV_DOWN = (
    "Traceback (most recent call last):\n  ...\nrequests.exceptions.ConnectionError: "
    "HTTPSConnectionPool(host='api.osv.dev', port=443): Failed to resolve 'api.osv.dev'\n"
)


def lock_file(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.lock"
    path.write_text(
        "# a lock file\n"
        + "".join(
            f"{name}=={version} \\\n    --hash=sha256:{'0' * 64}\n    # via example\n" for name, version in PACKAGES
        ),
        encoding="utf-8",
    )
    return path


def all_skipped() -> str:
    return json.dumps(
        {
            "dependencies": [
                {"name": n, "skip_reason": f"Dependency not found on PyPI and could not be audited: {n} ({v})"}
                for n, v in PACKAGES
            ],
            "fixes": [],
        }
    )


def some_found() -> str:
    deps: list[dict[str, object]] = [{"name": n, "version": v, "vulns": []} for n, v in PACKAGES]
    deps[2]["vulns"] = [{"id": "GHSA-h75v-3vvj-5mfj", "fix_versions": ["3.1.5"], "aliases": ["CVE-2024-56326"]}]
    return json.dumps({"dependencies": deps, "fixes": []})


def all_clean() -> str:
    return json.dumps({"dependencies": [{"name": n, "version": v, "vulns": []} for n, v in PACKAGES], "fixes": []})


def run(tmp_path: Path, report: str, *extra: str) -> int:
    saved = tmp_path / "report.json"
    saved.write_text(report, encoding="utf-8")
    return main(["--requirement", str(lock_file(tmp_path)), "--report", "pypi", str(saved), *extra])


def test_every_package_skipped_is_a_warning_never_no_known_vulnerabilities(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert run(tmp_path, all_skipped()) == CLEAN
    out = capsys.readouterr()
    text = out.out + out.err
    assert "dependency audit: 3 of 3 packages not audited (no vulnerability source reachable)" in out.err
    assert "WARNING" in out.err
    assert "no known vulnerabilities" not in text.lower()
    assert "::warning" not in text
    # The production job treats it as a failure of its own.
    assert run(tmp_path, all_skipped(), "--require-audit") == NOT_AUDITED


def test_under_ci_an_unaudited_run_is_an_annotated_warning_not_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    assert run(tmp_path, all_skipped()) == CLEAN
    err = capsys.readouterr().err
    assert (
        "::warning title=dependency audit::dependency audit: 3 of 3 packages not audited "
        "(no vulnerability source reachable)" in err
    )


def test_a_known_vulnerability_fails_and_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert run(tmp_path, some_found()) == VULNERABLE
    err = capsys.readouterr().err
    assert "dependency audit: 1 known vulnerability in the locked packages" in err
    assert "jinja2 3.1.4: GHSA-h75v-3vvj-5mfj (fixed in 3.1.5)" in err


def test_every_package_checked_and_clean_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert run(tmp_path, all_clean(), "--require-audit") == CLEAN
    out = capsys.readouterr()
    assert out.out.strip() == "dependency audit: 3 packages audited (pypi), no known vulnerabilities"
    assert "WARNING" not in out.err


def test_a_report_covering_fewer_packages_than_the_lock_is_not_clean() -> None:
    partial = json.dumps({"dependencies": [{"name": "flask", "version": "3.1.0", "vulns": []}]})
    found = verdict([parse_report("pypi", partial)], total=3)
    assert found.message == (
        "WARNING: dependency audit: 2 of 3 packages not audited (the vulnerability source answered for 1 only)"
    )


def test_a_source_that_fails_outright_counts_as_unreachable() -> None:
    osv = parse_report("osv", "", error=OSV_DOWN)
    assert osv == AuditResult(source="osv", error=OSV_DOWN.strip().splitlines()[-1])
    found = verdict([parse_report("pypi", all_skipped()), osv], total=3, require_audit=True)
    assert found.exit_code == NOT_AUDITED
    assert found.message == "WARNING: dependency audit: 3 of 3 packages not audited (no vulnerability source reachable)"
    assert found.lines == [
        "pypi: 3 of 3 packages skipped (not found there)",
        "osv: " + OSV_DOWN.strip().splitlines()[-1],
    ]
    # A vulnerability from any source fails, whatever another could not check.
    assert verdict([osv, parse_report("pypi", some_found())], total=3).exit_code == VULNERABLE


def test_dev_test_runs_the_counted_audit_not_bare_pip_audit() -> None:
    dev = (REPO / "dev").read_text(encoding="utf-8")
    assert '"$VENV/bin/python" -m assistant.cli.dependency_audit --requirement requirements.lock' in dev
    assert not re.search(r"\$VENV/bin/pip-audit", dev)


def test_a_finding_is_emailed_to_each_active_service_admin(
    rt: Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = rt.clock.now()
    with transaction(rt.engine) as db:
        service = Service(slug="north", name="North", settings={})
        db.add(service)
        db.flush()
        assert service.id is not None
        for email, role, active in [
            ("admin@example.org", "service_admin", True),
            ("gone@example.org", "service_admin", False),
            ("lead@example.org", "team_lead", True),
        ]:
            db.add(User(email=email, password_hash="x", role=role, service_id=service.id, active=active))

    clean = verdict([parse_report("pypi", all_clean())], total=3)
    assert queue_admin_emails(rt, clean, now) == []

    found = verdict([parse_report("pypi", some_found())], total=3)
    assert queue_admin_emails(rt, found, now) == ["admin@example.org"]
    assert send_notifications(rt, now) == 1
    with transaction(rt.engine) as db:
        [note] = db.exec(select(Notification)).all()
    assert (note.to_email, note.status) == ("admin@example.org", "sent")
    assert note.subject == "Dependency audit: known vulnerabilities in the assistant's packages"
    assert "jinja2 3.1.4: GHSA-h75v-3vvj-5mfj (fixed in 3.1.5)" in note.body
    assert "[email to admin@example.org]" in capsys.readouterr().out


def fake_pip_audit(tmp_path: Path, report: str) -> Path:
    """A stand-in for the pip-audit program: the given report from the PyPI source; OSV unreachable."""
    saved = tmp_path / "pypi.json"
    saved.write_text(report, encoding="utf-8")
    program = tmp_path / "pip-audit"
    program.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "source = sys.argv[sys.argv.index('--vulnerability-service') + 1]\n"
        "if source != 'pypi':\n"
        f"    sys.exit({OSV_DOWN!r})\n"
        f"print(open({str(saved)!r}).read())\n"
        "sys.exit(1 if 'GHSA' in open(" + repr(str(saved)) + ").read() else 0)\n",
        encoding="utf-8",
    )
    program.chmod(0o755)
    return program


@pytest.mark.parametrize(
    ("report", "code", "subject"),
    [
        (some_found, VULNERABLE, "Dependency audit: known vulnerabilities in the assistant's packages"),
        (all_skipped, NOT_AUDITED, "Dependency audit: the assistant's packages could not be checked"),
        (all_clean, CLEAN, None),
    ],
)
def test_the_weekly_job_command_exits_by_what_it_found_and_emails_the_admins(
    rt: Runtime, db_url: str, tmp_path: Path, report: Callable[[], str], code: int, subject: str | None
) -> None:
    with transaction(rt.engine) as db:
        service = Service(slug="north", name="North", settings={})
        db.add(service)
        db.flush()
        assert service.id is not None
        db.add(User(email="admin@example.org", password_hash="x", role="service_admin", service_id=service.id))
    env = {
        "ASSISTANT_DATABASE_URL": db_url,
        "ASSISTANT_CONSOLE_LOG": str(tmp_path / "sms.jsonl"),
        "ASSISTANT_PUBLIC_URL": "https://assistant.example.org",
        "CI": "",
    }
    args = [
        "audit-dependencies",
        "--requirement",
        str(lock_file(tmp_path)),
        "--pip-audit",
        str(fake_pip_audit(tmp_path, report())),
        "--email-admins",
        "--now",
        "2026-11-23T06:00:00+00:00",
    ]
    result = CliRunner().invoke(cli_main, args, env=env, catch_exceptions=False)
    assert result.exit_code == code, result.output
    with transaction(rt.engine) as db:
        notes = db.exec(select(Notification)).all()
    if subject is None:
        assert "dependency audit: 3 packages audited (pypi), no known vulnerabilities" in result.output
        assert notes == []
    else:
        assert [(n.to_email, n.subject, n.status) for n in notes] == [("admin@example.org", subject, "sent")]
        assert "no known vulnerabilities" not in result.output.lower()
