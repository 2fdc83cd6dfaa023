"""CSV imports: upload (service admins), the list and each run's report (team leads too)."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from assistant.care.audit import audit
from assistant.db.models import (
    ImportRun,
    Service,
)
from assistant.reporting.formats import cell
from assistant.web.common import (
    in_my_service_or_404,
    me,
    now,
    roles,
    rt,
    unit,
)

bp = Blueprint("imports", __name__)


@bp.route("/imports", methods=["GET", "POST"])
@roles("team_lead", "service_admin")
def imports_page() -> Any:
    from assistant.imports.runs import recent_runs, run_import

    status = 200
    if request.method == "POST":
        if me().role != "service_admin":
            abort(404)  # team leads see the list; only admins upload
        kind = request.form.get("kind", "")
        upload = request.files.get("file")
        if kind not in ("caseload", "appointments") or upload is None or not upload.filename:
            flash("Choose what kind of file it is and a CSV file to upload.", "error")
            status = 400
        else:
            data = upload.read(MAX_UPLOAD + 1)
            with unit() as db:
                service = db.get(Service, me().service_id)
            assert service is not None
            outcome = run_import(
                rt(),
                kind,
                data,
                file_name=upload.filename,
                by=me().email,
                via="dashboard",
                now=now(),
                service=service,
            )
            with unit() as db:
                audit(db, me(), "import", now(), kind=kind, run=outcome.run.id, outcome=outcome.run.outcome)
            if outcome.report is not None:
                flash(
                    f"Imported {outcome.run.file_name}: {outcome.run.created} created, "
                    f"{outcome.run.updated} updated, {outcome.run.unchanged} unchanged."
                )
            else:
                flash(
                    f"{outcome.run.file_name} was not imported: nothing was changed. "
                    f"{len(outcome.errors)} problem{'' if len(outcome.errors) == 1 else 's'} to fix.",
                    "error",
                )
            return redirect(url_for("imports.import_page", run_id=outcome.run.id), 303)
    with unit() as db:
        runs = recent_runs(db, me().service_id)
    return render_template("imports.html", runs=runs, max_mb=MAX_UPLOAD // (1024 * 1024)), status


MAX_UPLOAD = 5 * 1024 * 1024  # the importers' own limit


@bp.get("/imports/<int(max=2147483647):run_id>")
@roles("team_lead", "service_admin")
def import_page(run_id: int) -> str:
    with unit() as db:
        run = in_my_service_or_404(db, ImportRun, run_id)
    # The errors quote the file's rows, which may be anyone in the service: admins only.
    return render_template("import.html", run=run, show_errors=me().role == "service_admin")


@bp.get("/imports/<int(max=2147483647):run_id>/errors.csv")
@roles("service_admin")
def import_errors_csv(run_id: int) -> Response:
    with unit() as db:
        run = in_my_service_or_404(db, ImportRun, run_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "column", "problem"])
    for error in run.errors:
        line, column, problem = _split_error(error)
        writer.writerow([cell(line), cell(column), cell(problem)])
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="import-{run.id}-errors.csv"'},
    )


ERROR_AT = re.compile(r"line (\d+)(?:, column ([^:]+))?: (.*)", re.DOTALL)


def _split_error(error: str) -> tuple[str, str, str]:
    """'line 3, column phone: reason' as its parts; other problems are about the whole file."""
    match = ERROR_AT.fullmatch(error)
    if match is None:
        return "", "", error
    return match.group(1), match.group(2) or "", match.group(3)


@bp.app_template_filter("error_parts")
def error_parts(error: str) -> tuple[str, str, str]:
    return _split_error(error)
