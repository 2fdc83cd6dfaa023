"""The short block `assistant run` prints once it is up: where the dashboard is, how to make a user,
how to text it as a participant, and how to stop."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlmodel import col, select

from assistant.care.quiet import next_allowed
from assistant.db.models import DueTask, Participant, Service, TaskStatus
from assistant.db.service_settings import for_service
from assistant.db.units import transaction
from assistant.runtime import Runtime


def next_checkin(rt: Runtime) -> str | None:
    """'Alex's next check-in: Tue 1 Dec, 10:30': the first pending check-in, moved out of quiet hours."""
    with transaction(rt.engine) as db:
        task = db.exec(
            select(DueTask)
            .where(DueTask.status == TaskStatus.PENDING, DueTask.kind == "checkin")
            .order_by(col(DueTask.due_at), col(DueTask.id))
        ).first()
        if task is None or task.due_at is None:
            return None
        person = db.get(Participant, task.participant_id)
        if person is None:
            return None
        settings = for_service(db, person.service_id)
        at = next_allowed(max(task.due_at, rt.clock.now()), person, settings)
    here = at.astimezone(ZoneInfo(person.timezone))
    return f"{person.first_name}'s next check-in: {here:%a} {here.day} {here:%b}, {here:%H:%M}"


def banner(rt: Runtime, host: str, port: int) -> str:
    with transaction(rt.engine) as db:
        first = db.exec(select(Participant).order_by(col(Participant.id))).first()
        service = db.get(Service, first.service_id) if first else None
    slug = service.slug if service else "SERVICE"
    lines = [
        "",
        "The assistant is running.",
        f"  Dashboard    http://{host}:{port}/",
        f"  Make a user  .venv/bin/assistant create-user you@example.org --role service_admin --service {slug}",
    ]
    if first is not None:
        lines.append(
            f"  Text it      .venv/bin/assistant simulate --participant {first.external_id}  (another terminal)"
        )
    lines.append("  Stop         Ctrl+C")
    if (checkin := next_checkin(rt)) is not None:
        lines.append(f"  {checkin} (texts wait for allowed hours)")
    lines.append(f"  Database     {rt.settings.database_url}")
    return "\n".join(lines) + "\n"
