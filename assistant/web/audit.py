"""The audit log (service admins), as a page and as CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from flask import Blueprint, Response, render_template, request
from sqlmodel import col, select

from assistant.db.models import (
    AuditLog,
    Participant,
)
from assistant.reporting.formats import cell
from assistant.web import plain
from assistant.web.common import (
    me,
    roles,
    unit,
)

bp = Blueprint("audit", __name__)


@bp.get("/audit")
@roles("service_admin")
def audit_log() -> Any:
    with unit() as db:
        rows = db.exec(
            select(AuditLog).where(AuditLog.service_id == me().service_id).order_by(col(AuditLog.id).desc()).limit(500)
        ).all()
    if request.args.get("format") == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["at", "user", "action", "participant", "detail"])
        for row in rows:
            writer.writerow(
                [
                    cell(v)
                    for v in (
                        row.at.isoformat() if row.at else "",
                        row.user_email,
                        row.action,
                        row.participant_id or "",
                        json.dumps(row.detail),
                    )
                ]
            )
        return Response(
            out.getvalue(), mimetype="text/csv", headers={"Content-Disposition": 'attachment; filename="audit.csv"'}
        )
    with unit() as db:
        ids = {r.participant_id for r in rows if r.participant_id}
        people = {
            p.id: p.external_id
            for p in db.exec(select(Participant).where(col(Participant.id).in_(ids))).all()
            if p.id is not None
        }
    return render_template("audit.html", rows=plain.audit_rows(list(rows), people))
