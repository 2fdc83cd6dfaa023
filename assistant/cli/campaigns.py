"""The `campaign` command group: create, list, show, pause, resume and cancel campaigns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from sqlmodel import col, select

from assistant.cli.commands import main
from assistant.cli.common import _change_row, _runtime, _when
from assistant.db.models import CampaignStatus, Participant
from assistant.db.units import transaction

if TYPE_CHECKING:
    from assistant.contact.campaigns import Preview


@main.group("campaign")
def campaign_group() -> None:
    """Scheduled reminders and announcements for a group of participants."""


def _audience(pairs: tuple[str, ...]) -> dict[str, str]:
    audience = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.ClickException(f"audience filters are KEY=VALUE, not {pair!r}")
        audience[key.strip()] = value.strip()
    return audience


def _relative(text: str | None) -> dict[str, object] | None:
    """'support_end:-28@10:00' -> 28 days before support ends, at 10:00 local."""
    if not text:
        return None
    field_name, _, rest = text.partition(":")
    days, _, at = rest.partition("@")
    try:
        return {"field": field_name, "days": int(days), "at": at or "10:00"}
    except ValueError:
        raise click.ClickException("--relative looks like support_end:-28@10:00") from None


@campaign_group.command("create")
@click.option("--service", "service_slug", required=True)
@click.option("--name", required=True)
@click.option(
    "--text", default="", help="The message, with {{ first_name }}, {{ specialist_name }}, {{ appointment_time }}."
)
@click.option("--template", help="Start from a text in messages/en-GB/campaign/ (e.g. cv_clinic) instead of --text.")
@click.option("--flow", help="Start this flow instead of sending a text (e.g. questionnaire_phq9_gad7).")
@click.option("--audience", "audience_pairs", multiple=True, help="Filter KEY=VALUE (repeatable).")
@click.option("--at", "at_text", help="Send at this time (ISO, with zone).")
@click.option("--relative", "relative_text", help="Relative to a date on each record, e.g. support_end:-28@10:00.")
@click.option("--reply-keyword", help="A one-word reply that records interest, e.g. YES.")
@click.option("--by", "by", default="cli", help="Who is creating it (email).")
@click.option("--preview", is_flag=True, help="Show the count and a sample; queue nothing.")
@click.option("--now", "now_text", help="Plan it as if it were this time (ISO, with zone).")
def campaign_create(
    service_slug: str,
    name: str,
    text: str,
    template: str | None,
    flow: str | None,
    audience_pairs: tuple[str, ...],
    at_text: str | None,
    relative_text: str | None,
    reply_keyword: str | None,
    by: str,
    preview: bool,
    now_text: str | None,
) -> None:
    """Create (or preview) a campaign. Everything is checked before anything is queued."""
    from assistant.contact import campaigns
    from assistant.db.models import Service

    rt = _runtime()
    if template:
        if text:
            raise click.ClickException("give --text or --template, not both")
        try:
            text = campaigns.template_text(rt.settings.messages_dir, template)
        except campaigns.CampaignError as exc:
            raise click.ClickException(f"refused: {exc}") from None
    audience = _audience(audience_pairs)
    now = _when(now_text)
    with transaction(rt.engine) as db:
        service = db.exec(select(Service).where(Service.slug == service_slug)).first()
        if service is None or service.id is None:
            raise click.ClickException(f"no service {service_slug!r}")
        # What the campaign is, as creating it and its preview both check it.
        described: dict[str, Any] = {
            "service_id": service.id,
            "name": name,
            "text": text,
            "now": now,
            "send_at": _when(at_text) if at_text else None,
            "relative": _relative(relative_text),
            "reply_keyword": reply_keyword,
            "flow": flow,
            "flows": rt.flows,
        }
        try:
            if preview:
                # The same checks as creating it: a preview never shows what would be refused.
                if problems := campaigns.refusals(db, **described, when_given_only=True):
                    raise campaigns.CampaignError("; ".join(problems))
                _show(campaigns.preview(db, service.id, "" if flow else text, audience, now))
                return
            campaign = campaigns.create(db, **described, audience=audience, created_by=by)
        except campaigns.CampaignError as exc:
            raise click.ClickException(f"refused: {exc}") from None
        count = len(campaigns.progress(db, campaign)["participants"]["planned"])
    click.echo(f"campaign #{campaign.id} scheduled for {count} participant(s)")


def _show(shown: Preview) -> None:
    """A preview: how many would get it, and a sample of the texts as they would read."""
    click.echo(f"{shown.count} participant(s) would get it. Sample:")
    for item in shown.sample:
        click.echo(
            f"- {item['first_name']} ({item['participant']}), {item['segments']} segment(s), "
            f"{'GSM-7' if item['gsm7'] else 'UCS-2'}: {item['body']}"
        )


@campaign_group.command("list")
def campaign_list() -> None:
    from assistant.db.models import Campaign

    rt = _runtime()
    with transaction(rt.engine) as db:
        found = db.exec(select(Campaign).order_by(Campaign.id)).all()  # type: ignore[arg-type]
        for c in found:
            when = f"{c.send_at:%Y-%m-%d %H:%M} UTC" if c.send_at else f"relative {c.relative}"
            click.echo(f"#{c.id} {c.status:10} {c.name} ({when})")
        if not found:
            click.echo("no campaigns yet")


@campaign_group.command("show")
@click.argument("campaign_id", type=int)
@click.option("--participants", is_flag=True, help="List who is behind each number.")
def campaign_show(campaign_id: int, participants: bool) -> None:
    """Progress: queued, sent, delivered, failed (with reasons), replied, opted out in response."""
    from assistant.contact import campaigns
    from assistant.db.models import Campaign

    rt = _runtime()
    with transaction(rt.engine) as db:
        campaign = db.get(Campaign, campaign_id)
        if campaign is None:
            raise click.ClickException(f"no campaign #{campaign_id}")
        report = campaigns.progress(db, campaign)
        people: dict[int | None, str] = {}
        if participants:
            ids = sorted({pid for state_ids in report["participants"].values() for pid in state_ids})
            for first in range(0, len(ids), 5000):
                chunk = ids[first : first + 5000]
                people |= dict(
                    db.exec(select(Participant.id, Participant.external_id).where(col(Participant.id).in_(chunk))).all()
                )
    click.echo(f"#{campaign.id} {campaign.name}: {campaign.status}, {report['total']} participant(s)")
    for state, count in report["counts"].items():
        line = f"  {state:10} {count}"
        if participants and report["participants"].get(state):
            line += "  " + ", ".join(people.get(i, "?") for i in report["participants"][state])
        click.echo(line)
    for reason, count in report["failures"].items():
        click.echo(f"  failed because {reason}: {count}")


def _campaign_status(campaign_id: int, status: str) -> None:
    from assistant.contact import campaigns
    from assistant.db.models import Campaign

    withdrawn = _change_row(
        Campaign, campaign_id, "campaign", lambda db, campaign, now: campaigns.set_status(db, campaign, status, now)
    )
    click.echo(f"campaign #{campaign_id} {status}" + (f"; {withdrawn} not yet sent withdrawn" if withdrawn else ""))


@campaign_group.command("pause")
@click.argument("campaign_id", type=int)
def campaign_pause(campaign_id: int) -> None:
    _campaign_status(campaign_id, CampaignStatus.PAUSED)


@campaign_group.command("resume")
@click.argument("campaign_id", type=int)
def campaign_resume(campaign_id: int) -> None:
    _campaign_status(campaign_id, CampaignStatus.SCHEDULED)


@campaign_group.command("cancel")
@click.argument("campaign_id", type=int)
def campaign_cancel(campaign_id: int) -> None:
    _campaign_status(campaign_id, CampaignStatus.CANCELLED)
