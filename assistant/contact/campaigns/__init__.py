"""Campaigns: a service texts a group, safely and once.

Planning writes one CampaignRecipient per participant (unique per campaign), each
with its own due time; the clock turns due recipients into outbox messages under
the participant's lock, honouring quiet hours, bank holidays, any open
questionnaire, and the contact policy's hold while a crisis flag is unacknowledged.
Re-running, editing or crashing can never send anyone the same campaign twice: the
recipient row is claimed in the same transaction that queues its message.

`text` checks and fills the wording, `audience` chooses who it reaches, `planning` defines a
campaign and plans its copies, `queueing` turns due copies into texts, `state` pauses, resumes
or cancels it and counts its progress, `replies` handles a reply to its keyword. Texts are
written and withdrawn only through `assistant.outbox.writer`.
"""

from __future__ import annotations

from assistant.contact.campaigns.audience import (
    AUDIENCE_KEYS,
    Preview,
    audience_query,
    count_matching,
    matching,
    matching_chunks,
    preview,
)
from assistant.contact.campaigns.planning import RELATIVE_FIELDS, create, due_for, plan, refusals, replan_for
from assistant.contact.campaigns.queueing import run_due
from assistant.contact.campaigns.replies import handle_reply, recent_campaign
from assistant.contact.campaigns.state import progress, set_status
from assistant.contact.campaigns.text import (
    MERGE,
    MERGE_FIELDS,
    CampaignError,
    check_text,
    for_text,
    merge_values,
    render,
    template_text,
    templates,
)

__all__ = [
    "AUDIENCE_KEYS",
    "MERGE",
    "MERGE_FIELDS",
    "RELATIVE_FIELDS",
    "CampaignError",
    "Preview",
    "audience_query",
    "check_text",
    "count_matching",
    "create",
    "due_for",
    "for_text",
    "handle_reply",
    "matching",
    "matching_chunks",
    "merge_values",
    "plan",
    "preview",
    "progress",
    "recent_campaign",
    "refusals",
    "render",
    "replan_for",
    "run_due",
    "set_status",
    "template_text",
    "templates",
]
