"""The dependency audit: pip-audit over the locked packages, counted honestly.

pip-audit reports a package it could not look up (the vulnerability source unreachable, or a
package index that is only a mirror) as skipped, and still says "No known vulnerabilities found".
This reads its JSON report and says how many packages were checked and how many were not:

  every package checked, nothing found   exit 0, "dependency audit: N packages audited, no known vulnerabilities"
  a known vulnerability in any package   exit 1, each one listed
  some or all packages not checked       a warning "dependency audit: N of M packages not audited (...)";
                                         exit 0, or 2 with --require-audit (the production job)

Run it as `python -m assistant.cli.dependency_audit --requirement requirements.lock` (./dev test does),
or as `assistant audit-dependencies`, which also emails the service admins (the weekly job).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistant.runtime import Runtime

# Tried in this order; the first that checks every package is used.
SOURCES = ("pypi", "osv")
CLEAN, VULNERABLE, NOT_AUDITED = 0, 1, 2


@dataclass(frozen=True)
class Vulnerability:
    package: str
    version: str
    id: str
    fix_versions: tuple[str, ...] = ()

    def line(self) -> str:
        fix = f" (fixed in {', '.join(self.fix_versions)})" if self.fix_versions else " (no fixed version yet)"
        return f"{self.package} {self.version}: {self.id}{fix}"


@dataclass(frozen=True)
class AuditResult:
    """What one pip-audit run checked. `error` is set when it produced no report at all."""

    source: str
    total: int = 0
    audited: int = 0
    vulnerabilities: tuple[Vulnerability, ...] = ()
    error: str = ""

    @property
    def skipped(self) -> int:
        return self.total - self.audited


@dataclass(frozen=True)
class Verdict:
    exit_code: int
    message: str
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join([self.message, *self.lines])


def parse_report(source: str, report: str, *, error: str = "") -> AuditResult:
    """pip-audit's `--format json` output (empty or not JSON when the source failed outright)."""
    try:
        data = json.loads(report) if report.strip() else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("dependencies"), list):
        last = (error.strip().splitlines() or ["no report"])[-1]
        return AuditResult(source=source, error=last[:300])
    dependencies = [d for d in data["dependencies"] if isinstance(d, dict)]
    audited = [d for d in dependencies if "skip_reason" not in d]
    found = tuple(
        Vulnerability(
            package=str(d.get("name", "?")),
            version=str(d.get("version", "?")),
            id=str(v.get("id", "?")),
            fix_versions=tuple(str(f) for f in v.get("fix_versions") or ()),
        )
        for d in audited
        for v in d.get("vulns") or ()
        if isinstance(v, dict)
    )
    return AuditResult(source=source, total=len(dependencies), audited=len(audited), vulnerabilities=found)


def best(results: Sequence[AuditResult]) -> AuditResult:
    """The run that checked the most packages (the first of equals)."""
    if not results:
        return AuditResult(source="none", error="no vulnerability source tried")
    return max(results, key=lambda r: (r.audited, -results.index(r)))


def verdict(results: Sequence[AuditResult], *, total: int, require_audit: bool = False) -> Verdict:
    """The message and exit code for the audit as a whole. `total` is the number of locked packages."""
    found = [v for r in results for v in r.vulnerabilities]
    if found:
        unique = sorted({v.line() for v in found})
        return Verdict(
            VULNERABLE,
            f"dependency audit: {len(unique)} known vulnerabilit{'y' if len(unique) == 1 else 'ies'} "
            "in the locked packages",
            unique,
        )
    chosen = best(results)
    total = max(total, chosen.total)
    if total and chosen.audited >= total:
        return Verdict(CLEAN, f"dependency audit: {total} packages audited ({chosen.source}), no known vulnerabilities")
    missing = total - chosen.audited if total else 0
    reasons = [
        f"{r.source}: {r.error or f'{r.skipped} of {r.total} packages skipped (not found there)'}" for r in results
    ]
    if chosen.audited == 0:
        message = f"dependency audit: {missing} of {total} packages not audited (no vulnerability source reachable)"
    else:
        message = (
            f"dependency audit: {missing} of {total} packages not audited "
            f"(the vulnerability source answered for {chosen.audited} only)"
        )
    return Verdict(NOT_AUDITED if require_audit else CLEAN, "WARNING: " + message, reasons)


def locked_packages(requirement: Path) -> int:
    """How many packages a hash-pinned lock file pins (`name==version \\` lines)."""
    count = 0
    for line in requirement.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if "==" in text and not text.startswith(("-", "--")):
            count += 1
    return count


def pip_audit_command() -> str:
    here = Path(sys.executable).parent / "pip-audit"
    return str(here) if here.exists() else (shutil.which("pip-audit") or "pip-audit")


def run_pip_audit(
    requirement: Path, source: str, *, timeout: float = 10, limit: float = 600, program: str | None = None
) -> AuditResult:
    """One pip-audit run against one vulnerability source; a failed or stuck run is a result too."""
    command = [
        program or pip_audit_command(),
        "--requirement",
        str(requirement),
        "--disable-pip",
        "--no-deps",
        "--progress-spinner",
        "off",
        "--format",
        "json",
        "--vulnerability-service",
        source,
        "--timeout",
        str(int(timeout)),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        return AuditResult(source=source, error=f"no answer within {int(limit)} s")
    except OSError as exc:
        return AuditResult(source=source, error=f"pip-audit could not run: {exc}")
    return parse_report(source, done.stdout, error=done.stderr)


def audit(
    requirement: Path, *, sources: Sequence[str] = SOURCES, timeout: float = 10, program: str | None = None
) -> list[AuditResult]:
    total = locked_packages(requirement)
    results: list[AuditResult] = []
    for source in sources:
        result = run_pip_audit(requirement, source, timeout=timeout, program=program)
        results.append(result)
        if result.vulnerabilities or (result.total and result.audited >= max(total, result.total)):
            break
    return results


def queue_admin_emails(rt: Runtime, found: Verdict, now: datetime) -> list[str]:
    """An email to every active service admin about a finding (or an audit that could not run),
    through the notification outbox (retried like flag emails). Returns who it goes to."""
    from sqlmodel import col, select

    from assistant.db.models import Notification, NotificationStatus, User
    from assistant.db.units import transaction

    if found.exit_code == CLEAN and not found.message.startswith("WARNING"):
        return []
    subject = (
        "Dependency audit: known vulnerabilities in the assistant's packages"
        if found.exit_code == VULNERABLE
        else "Dependency audit: the assistant's packages could not be checked"
    )
    body = (
        f"{found.text}\n\nThe weekly dependency audit on this server found the above. "
        "Whoever runs the server should upgrade the packages named (see SECURITY.md) or, if no "
        "vulnerability source could be reached, let the audit reach one."
    )
    with transaction(rt.engine) as db:
        admins = db.exec(
            select(User.email).where(User.role == "service_admin", col(User.active).is_(True)).order_by(User.email)
        ).all()
        recipients = sorted(set(admins))
        for email in recipients:
            db.add(
                Notification(
                    to_email=email,
                    subject=subject,
                    body=body,
                    status=NotificationStatus.QUEUED,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    return recipients


def report(found: Verdict, *, ci: bool) -> None:
    """Print the verdict; under CI a warning or failure is an annotation the run's summary shows."""
    stream = sys.stdout if found.exit_code == CLEAN and not found.message.startswith("WARNING") else sys.stderr
    print(found.text, file=stream, flush=True)
    if ci and found.message.startswith("WARNING"):
        print(f"::warning title=dependency audit::{found.message.removeprefix('WARNING: ')}", file=stream)
    elif ci and found.exit_code == VULNERABLE:
        print(f"::error title=dependency audit::{found.message}", file=stream)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m assistant.cli.dependency_audit", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--requirement", type=Path, default=Path("requirements.lock"))
    parser.add_argument("--source", action="append", choices=SOURCES, help="vulnerability source(s) to try")
    parser.add_argument("--timeout", type=float, default=10, help="seconds per request to the source")
    parser.add_argument("--require-audit", action="store_true", help="exit 2 when any package was not audited")
    parser.add_argument("--report", nargs=2, metavar=("SOURCE", "JSON_FILE"), help="read a saved pip-audit report")
    args = parser.parse_args(argv)
    total = locked_packages(args.requirement)
    if args.report:
        source, path = args.report
        results = [parse_report(source, Path(path).read_text(encoding="utf-8"))]
    else:
        results = audit(args.requirement, sources=args.source or SOURCES, timeout=args.timeout)
    found = verdict(results, total=total, require_audit=args.require_audit)
    report(found, ci=os.environ.get("CI", "").lower() == "true")
    return found.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
