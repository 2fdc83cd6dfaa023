"""The clock's health for service admins: how each job last went, and the due rows of their
service that failed and are waiting to be tried again (or were given up)."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlmodel import col, select

from assistant.db.models import DueTask, FlowSession, JobHealth, Participant, SessionStatus
from assistant.jobs.tick import JOBS
from assistant.web.common import me, roles, unit

bp = Blueprint("health", __name__)


@bp.get("/health")
@roles("service_admin")
def page() -> str:
    with unit() as db:
        jobs = {row.name: row for row in db.exec(select(JobHealth)).all()}
        in_service = select(Participant.id).where(Participant.service_id == me().service_id)
        tasks = db.exec(
            select(DueTask, Participant.external_id)
            .join(Participant, col(Participant.id) == DueTask.participant_id)
            .where(col(DueTask.participant_id).in_(in_service), DueTask.attempts > 0)
            .order_by(col(DueTask.due_at))
            .limit(200)
        ).all()
        waits = db.exec(
            select(FlowSession, Participant.external_id)
            .join(Participant, col(Participant.id) == FlowSession.participant_id)
            .where(col(FlowSession.participant_id).in_(in_service), FlowSession.timeout_attempts > 0)
            .where(col(FlowSession.status).in_((SessionStatus.WAITING, SessionStatus.ON_PAGE)))
            .limit(200)
        ).all()
    return render_template("health.html", jobs=[(name, jobs.get(name)) for name, _ in JOBS], tasks=tasks, waits=waits)
