"""Campaigns (service admins): compose, preview, schedule, pause, and follow their progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlmodel import col, select
from werkzeug.wrappers import Response as WerkzeugResponse

from assistant.care.audit import audit
from assistant.contact import campaigns as camp
from assistant.db.models import (
    Campaign,
    Participant,
)
from assistant.db.service_settings import for_service
from assistant.imports.appointments import parse_local
from assistant.web.common import (
    in_my_service_or_404,
    me,
    now,
    roles,
    rt,
    unit,
)

bp = Blueprint("campaigns", __name__)


def _campaign_form() -> tuple[dict[str, Any], dict[str, Any]]:
    form = request.form
    audience = {k: form.get(f"audience_{k}", "").strip() for k in ("cohort", "specialist", "tag")}
    audience = {k: v for k, v in audience.items() if v}
    values: dict[str, Any] = {
        "name": form.get("name", "")[:200],
        "text": form.get("text", "")[:1600],
        "reply_keyword": form.get("reply_keyword", "").strip() or None,
    }
    values["send_at_text"] = form.get("send_at", "").strip()[:40]
    values["when"] = form.get("when", "at") if form.get("when") in ("now", "at", "relative") else "at"
    values["template"] = form.get("template", "")[:100]
    values["relative_field"] = form.get("relative_field", "support_end")[:40]
    values["relative_days"] = form.get("relative_days", "").strip()[:6]
    values["relative_at"] = form.get("relative_at", "").strip()[:5] or "10:00"
    return values, audience


def _send_time(values: dict[str, Any]) -> tuple[datetime | None, dict[str, Any] | None]:
    """Now, a local time, or days before or after a date on each record (as the CLI's --relative)."""
    if values["when"] == "now":
        return now(), None
    if values["when"] == "relative":
        try:
            days = int(values["relative_days"])
        except ValueError:
            raise ValueError("give the number of days as a whole number, e.g. -28 for 28 days before") from None
        return None, {"field": values["relative_field"], "days": days, "at": values["relative_at"]}
    text = values["send_at_text"].replace("T", " ")
    return (parse_local(text, rt().settings.default_timezone) if text else None), None


@bp.route("/campaigns", methods=["GET", "POST"])
@roles("service_admin")
def campaigns_page() -> Any:
    values, audience = _campaign_form() if request.method == "POST" else ({}, {})
    preview = error = None
    with unit() as db:
        if request.method == "POST":
            try:
                if request.form.get("action") == "template":
                    # Fill the message box with a ready-made text to edit; nothing is checked or queued yet.
                    values["text"] = camp.template_text(rt().settings.messages_dir, request.form.get("template", ""))
                elif request.form.get("action") == "create":
                    send_at, relative = _send_time(values)
                    campaign = camp.create(
                        db,
                        service_id=me().service_id,
                        name=values["name"],
                        text=values["text"],
                        audience=audience,
                        created_by=me().email,
                        now=now(),
                        send_at=send_at,
                        relative=relative,
                        reply_keyword=values["reply_keyword"],
                        flows=rt().flows,
                    )
                    audit(db, me(), "campaign_create", now(), campaign=campaign.id)
                    flash(f"Campaign '{campaign.name}' scheduled.")
                    return redirect(url_for("campaigns.campaign_page", campaign_id=campaign.id))
                else:
                    limit = for_service(db, me().service_id).campaign_segment_limit
                    problems = camp.check_text(values["text"], limit)
                    text = values["text"] if not problems else ""
                    preview = camp.preview(db, me().service_id, text, audience, now())
                    error = "; ".join(problems) or None
            except (camp.CampaignError, ValueError) as exc:
                error = str(exc)
        rows = db.exec(
            select(Campaign).where(Campaign.service_id == me().service_id).order_by(col(Campaign.id).desc())
        ).all()
    status = 400 if error else 200
    return render_template(
        "campaigns.html",
        campaigns=rows,
        preview=preview,
        error=error,
        values=values,
        audience=audience,
        templates=camp.templates(rt().settings.messages_dir),
    ), status


@bp.post("/campaigns/<int(max=2147483647):campaign_id>/status")
@roles("service_admin")
def campaign_status(campaign_id: int) -> WerkzeugResponse:
    with unit() as db:
        campaign = in_my_service_or_404(db, Campaign, campaign_id)
        try:
            camp.set_status(db, campaign, request.form.get("status", ""), now())
            audit(db, me(), "campaign_status", now(), campaign=campaign_id, status=request.form.get("status"))
            flash(f"Campaign {campaign.status}.")
        except camp.CampaignError as exc:
            flash(str(exc), "error")
    return redirect(url_for("campaigns.campaign_page", campaign_id=campaign_id))


SHOWN_PER_STATE = 50  # names listed per progress state; the rest are counted


@bp.get("/campaigns/<int(max=2147483647):campaign_id>")
@roles("service_admin")
def campaign_page(campaign_id: int) -> str:
    with unit() as db:
        campaign = in_my_service_or_404(db, Campaign, campaign_id)
        report = camp.progress(db, campaign)
        shown = {pid for ids in report["participants"].values() for pid in ids[:SHOWN_PER_STATE]}
        people = {p.id: p for p in db.exec(select(Participant).where(col(Participant.id).in_(shown))).all()}
    return render_template(
        "campaign.html", campaign=campaign, report=report, people=people, shown_per_state=SHOWN_PER_STATE
    )
