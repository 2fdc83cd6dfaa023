"""The dashboard: one blueprint per feature, sharing assistant.web.common."""

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
    imports,
    participant,
    sessions,
    team,
)
from assistant.web.common import login_manager

BLUEPRINTS = (auth, sessions, caseload, flags, participant, appointments, team, audit, admin, imports, campaigns)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    filters.init_app(app)
    for module in BLUEPRINTS:
        app.register_blueprint(module.bp)
