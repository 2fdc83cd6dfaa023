"""Staff accounts from the command line: create a user, change a role, deactivate one."""

from __future__ import annotations

from typing import Any

import click
from sqlmodel import Session, col, select

from assistant.cli.commands import main
from assistant.cli.common import _cli_user, _runtime
from assistant.db.models import Participant, User
from assistant.db.units import transaction, upgrade


@main.command("create-user")
@click.argument("email")
@click.option("--role", type=click.Choice(["specialist", "team_lead", "service_admin"]), required=True)
@click.option("--service", "service_slug", required=True, help="The service they work in.")
@click.option("--team", help="For a team lead: the team whose caseloads they see.")
@click.option(
    "--password",
    envvar="ASSISTANT_NEW_USER_PASSWORD",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Asked for if not given (or set ASSISTANT_NEW_USER_PASSWORD).",
)
def create_user(email: str, role: str, service_slug: str, team: str | None, password: str) -> None:
    """Create a dashboard user (the first service admin, or anyone after)."""
    from assistant.auth import PasswordRuleError, hash_password
    from assistant.db.models import Service, Specialist, User

    if role == "team_lead" and not (team or "").strip():
        raise click.ClickException("a team lead needs --team: the team whose caseloads they see")
    rt = _runtime()
    upgrade(rt.settings.database_url)
    email = email.strip().lower()
    if "@" not in email or any(c.isspace() for c in email):
        raise click.ClickException(f"not an email address: {email!r}")
    try:
        hashed = hash_password(password)
    except PasswordRuleError as exc:
        raise click.ClickException(str(exc)) from None
    with transaction(rt.engine) as db:
        service = db.exec(select(Service).where(Service.slug == service_slug)).first()
        if service is None:
            service = Service(slug=service_slug, name=service_slug)
            db.add(service)
            db.flush()
        if db.exec(select(User).where(User.email == email)).first():
            raise click.ClickException(f"{email} already has an account")
        specialist = db.exec(select(Specialist).where(Specialist.email == email)).first()
        if role == "specialist" and specialist is None:
            raise click.ClickException(f"{email} is not a specialist on any imported caseload")
        assert service.id is not None
        db.add(
            User(
                email=email,
                password_hash=hashed,
                role=role,
                service_id=service.id,
                specialist_id=specialist.id if specialist else None,
                team=team or (specialist.team if specialist else None),
                created_at=rt.clock.now(),
                password_changed_at=rt.clock.now(),
            )
        )
        teams = set(db.exec(select(Specialist.team).where(Specialist.service_id == service.id)).all()) - {None}
    click.echo(f"created {role} {email} in service {service_slug}")
    if role == "team_lead" and team not in teams:  # most often a typing slip: they would see nobody
        known = ", ".join(sorted(str(t) for t in teams)) or "none yet"
        click.echo(
            f"note: no specialist in {service_slug} is on team {team!r} yet, so this lead sees no caseload "
            f"until one is (teams in {service_slug}: {known}; a specialist's team is the caseload file's team column)"
        )


def _user_or_fail(db: Any, email: str) -> Any:
    from assistant.db.models import User

    user = db.exec(select(User).where(User.email == email.strip().lower())).first()
    if user is None:
        raise click.ClickException(f"no account for {email}")
    return user


@main.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice(["specialist", "team_lead", "service_admin"]))
@click.option("--team", help="For a team lead: the team whose caseloads they see.")
def set_role(email: str, role: str, team: str | None) -> None:
    """Change a dashboard user's role; every session of theirs ends at once."""
    from assistant.care.audit import audit
    from assistant.care.signins import change_role

    if role == "team_lead" and not (team or "").strip():
        raise click.ClickException("a team lead needs --team: the team whose caseloads they see")
    rt = _runtime()
    with transaction(rt.engine) as db:
        user = _user_or_fail(db, email)
        if role == "specialist" and user.specialist_id is None:
            raise click.ClickException(f"{user.email} is not a specialist on any imported caseload")
        before = user.role
        if team:
            user.team = team.strip()
        change_role(db, user, role, rt.clock.now())
        audit(db, user, "role_change", rt.clock.now(), by=_cli_user(), before=before, after=role)
    click.echo(f"{user.email} is now {role}; their sessions have ended")


@main.command("deactivate-user")
@click.argument("email")
def deactivate_user(email: str) -> None:
    """Stop a dashboard user signing in; every session of theirs ends at once."""
    from assistant.care.audit import audit
    from assistant.care.signins import deactivate

    rt = _runtime()
    with transaction(rt.engine) as db:
        user = _user_or_fail(db, email)
        deactivate(db, user, rt.clock.now())
        audit(db, user, "deactivate", rt.clock.now(), by=_cli_user())
        caseload = _still_on_caseload(db, user)
    click.echo(f"{user.email} can no longer sign in; their sessions have ended")
    if caseload:
        click.echo(
            f"{caseload} participant(s) are still on their caseload: move each to another specialist "
            "(Transfer, on the participant's page). Until then their flags go to the duty and escalation contacts."
        )


def _still_on_caseload(db: Session, user: User) -> int:
    """Participants (not erased, support not ended) still owned by this user's specialist record."""
    if user.specialist_id is None:
        return 0
    return len(
        db.exec(
            select(Participant.id).where(
                Participant.specialist_id == user.specialist_id,
                col(Participant.erased_at).is_(None),
                col(Participant.exit_reason).is_(None),
            )
        ).all()
    )
