"""Times, settings, audit entries, campaign states and reply rhythms in the words a person reads on the dashboard."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from assistant.db.models import AuditLog, Campaign, CampaignStatus
from assistant.engine.rhythm import Rhythm, describe

ACTIONS = {
    "sign_in": "Signed in",
    "password_reset": "Changed their password",
    "session_end": "Ended a session",
    "session_end_others": "Ended their other sessions",
    "view_record": "Opened the record",
    "export_record": "Exported the record",
    "flag_acknowledge": "Acknowledged a flag",
    "flag_resolve": "Resolved a flag",
    "pause": "Paused automated texts",
    "resume": "Resumed automated texts",
    "preferences": "Changed contact preferences",
    "send_message": "Sent a one-off text",
    "transfer": "Transferred to another specialist",
    "appointment_add": "Added an appointment",
    "appointment_move": "Moved an appointment",
    "appointment_outcome": "Recorded an appointment outcome",
    "service_settings": "Changed service settings",
    "import": "Imported a file",
    "campaign_create": "Scheduled a campaign",
    "campaign_status": "Changed a campaign's state",
}
CAMPAIGN_STATES = {
    "scheduled": "Scheduled",
    "sending": "Sending",
    "paused": "Paused",
    "cancelled": "Cancelled",
    "done": "Finished: every text sent, withdrawn or failed",
}
PROGRESS = {
    "planned": "Waiting for its time",
    "queued": "Sending",
    "sent": "Sent",
    "delivered": "Delivered",
    "failed": "Could not be sent",
    "replied": "Replied",
    "withdrawn": "Withdrawn",
    "opted_out": "Opted out since",
}


def local(value: datetime, zone: str) -> datetime:
    return value.astimezone(ZoneInfo(zone))


def when(value: datetime | None, now: datetime, zone: str) -> str:
    """'Tue 1 Dec, 19:14' in the service's zone; the year only when it is not this year."""
    if value is None:
        return "-"
    here, today = local(value, zone), local(now, zone)
    year = "" if here.year == today.year else f" {here.year}"
    return f"{here:%a} {here.day} {here:%b}{year}, {here:%H:%M}"


def day(value: datetime | None, zone: str) -> str:
    """'1 Dec 2026': day, month, year."""
    if value is None:
        return "-"
    here = local(value, zone)
    return f"{here.day} {here:%b %Y}"


def ago(then: datetime | None, now: datetime, zone: str) -> str:
    """'just now', '5 minutes ago', '2 hours ago', 'yesterday', '3 days ago', or 'in 2 hours' ahead.
    A day or more away is counted in calendar days in the zone: Saturday 10:00 is "in 2 days" on
    Thursday afternoon, not "tomorrow"."""
    if then is None:
        return "never"
    seconds = (now - then).total_seconds()
    ahead = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        return "just now"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = int(seconds // size)
            if unit == "day":
                count = max(1, abs((local(then, zone).date() - local(now, zone).date()).days))
            if unit == "day" and count == 1:
                return "tomorrow" if ahead else "yesterday"
            words = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"in {words}" if ahead else f"{words} ago"
    return "just now"  # pragma: no cover


def rhythm_words(rhythm: Rhythm, first_pending_at: datetime | None, now: datetime, zone: str) -> str:
    """How they usually answer, and what is still unanswered: 'Usually replies within 3 hours;
    answers about 9 in 10 texts. No reply yet to the last text (sent 2 days ago).'"""
    usual = describe(rhythm)
    words = f"{usual[0].upper()}{usual[1:]}."
    if rhythm.pending and first_pending_at is not None:
        texts, sent = (
            ("the last text", "sent") if rhythm.pending == 1 else (f"the last {rhythm.pending} texts", "the first sent")
        )
        words += f" No reply yet to {texts} ({sent} {ago(first_pending_at, now, zone)})."
    return words


def value_words(name: str, value: Any) -> str:
    """One setting's value as a sentence fragment: lists joined, choices by their labels, yes or no."""
    from assistant.contact.settings_change import CHOICES

    labels = dict(CHOICES.get(name, ()))
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list | tuple):
        items = [labels.get(str(v), str(v)) for v in value]
        if not items:
            return "None"
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    if value in ("", None):
        return "None"
    return labels.get(str(value), str(value))


def setting_label(name: str) -> str:
    from assistant.contact.settings_change import LABELS

    if name == "rules_off":
        return "Rules turned off"
    return LABELS.get(name, name.replace("_", " ").capitalize())


def settings_rows(values: dict[str, Any]) -> list[tuple[str, str]]:
    return [(setting_label(name), value_words(name, value)) for name, value in values.items()]


def audit_rows(rows: list[AuditLog], people: dict[int, str]) -> list[dict[str, Any]]:
    """Each entry as: what happened, about whom (their participant id), and old -> new values."""
    shown = []
    for row in rows:
        detail = dict(row.detail or {})
        changes = [
            (setting_label(k), value_words(k, v.get("old")), value_words(k, v.get("new")))
            for k, v in (detail.pop("changes", None) or {}).items()
            if isinstance(v, dict)
        ]
        shown.append(
            {
                "at": row.at,
                "who": row.user_email,
                "what": ACTIONS.get(row.action, row.action.replace("_", " ").capitalize()),
                "participant": people.get(row.participant_id or 0, ""),
                "changes": changes,
                "detail": ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in detail.items() if v not in (None, "")),
            }
        )
    return shown


def campaign_state(campaign: Campaign, counts: dict[str, int] | None = None) -> str:
    """'Sending' until every copy is sent, withdrawn or failed, whatever the campaign row says."""
    pending = (counts or {}).get("planned", 0) + (counts or {}).get("queued", 0)
    if (
        campaign.status in (CampaignStatus.SCHEDULED, CampaignStatus.DONE)
        and counts is not None
        and counts.get("queued", 0)
    ):
        return CAMPAIGN_STATES["sending"]
    if campaign.status == CampaignStatus.DONE and pending:
        return CAMPAIGN_STATES["sending"]
    return CAMPAIGN_STATES.get(campaign.status, campaign.status.capitalize())


ACRONYMS = {"cv": "CV", "nhs": "NHS", "ips": "IPS"}


def template_label(name: str) -> str:
    """'cv_clinic' -> 'CV clinic'."""
    words = [ACRONYMS.get(w, w) for w in name.split("_")]
    if words and words[0] not in ACRONYMS.values():
        words[0] = words[0].capitalize()
    return " ".join(words)
