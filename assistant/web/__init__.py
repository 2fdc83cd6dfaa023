"""The dashboard and the webhooks: one Flask blueprint per feature. Views call the same service
functions the CLI calls and hold no rules of their own.

May import every package below it: jobs, imports, reporting, conversation, contact, sessions,
sending, care, outbox, content, db and engine.
"""

from __future__ import annotations

from flask import Flask

from assistant.web import (
    admin,
    appointments,
    audit,
    auth,
    campaigns,
    caseload,
    filters,
    flags,
    health,
    imports,
    journey,
    participant,
    questionnaire,
    reports,
    sessions,
    team,
    today,
)
from assistant.web.common import login_manager

BLUEPRINTS = (
    auth, sessions, caseload, flags, participant, appointments, team, audit, admin, imports, campaigns,
    journey, reports, today, health, questionnaire,
)  # fmt: skip


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    filters.init_app(app)
    for module in BLUEPRINTS:
        app.register_blueprint(module.bp)
