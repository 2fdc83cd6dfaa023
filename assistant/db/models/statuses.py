"""The values each table's status column can hold, one enum per column. Members are the strings
stored, so they compare equal to them and the database, migrations and JSON are unchanged."""

from __future__ import annotations

from enum import StrEnum


class MessageStatus(StrEnum):
    """Message.status: an outbound text's way through the outbox and the provider, or an inbound one's."""

    QUEUED = "queued"  # in the outbox, waiting for the sender
    SENDING = "sending"  # claimed by the sender
    # The provider's own statuses, from its answer or its delivery callbacks.
    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    READ = "read"
    # Withdrawn before it went.
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    SUPPRESSED = "suppressed"
    # Inbound.
    RECEIVED = "received"
    TRIAGE = "triage"  # from an unknown number, for staff to look at
    TRIAGE_RISK = "triage_risk"  # ...and it read as risk
    TRIAGE_REVIEWED = "triage_reviewed"  # looked at, and left unlinked


class SessionStatus(StrEnum):
    """FlowSession.status."""

    WAITING = "waiting"  # for a text
    ON_PAGE = "on_page"  # for an answer on a questionnaire's private page
    ENDED = "ended"


class TaskStatus(StrEnum):
    """DueTask.status."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class FlagStatus(StrEnum):
    """Flag.status."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class NotificationStatus(StrEnum):
    """Notification.status: an email's way through the email outbox."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class StaffTaskStatus(StrEnum):
    """StaffTask.status."""

    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class CampaignStatus(StrEnum):
    """Campaign.status."""

    SCHEDULED = "scheduled"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


class RecipientStatus(StrEnum):
    """CampaignRecipient.status: one participant's copy of a campaign."""

    PLANNED = "planned"
    QUEUED = "queued"
    SENT = "sent"  # a flow started (a text's copy follows its message instead)
    REPLIED = "replied"
    WITHDRAWN = "withdrawn"
    FAILED = "failed"


class MeasureStatus(StrEnum):
    """Measure.status: how a questionnaire sitting ended."""

    COMPLETE = "complete"
    PARTIAL = "partial"
    EXPIRED = "expired"
    DECLINED = "declined"
    CRISIS = "crisis"
    PAUSED = "paused"


class RequestStatus(StrEnum):
    """ContactRequest.status: what came of a change a participant asked for by text."""

    ASKED = "asked"  # a question back is waiting
    CODE_SENT = "code_sent"  # a new number waits for the code texted to it
    ANSWERED = "answered"
    DONE = "done"
    UNCHANGED = "unchanged"
    REFUSED = "refused"
    WRONG_CODE = "wrong_code"
    REPLACED = "replaced"
    PASSED_ON = "passed_on"  # to the specialist


class SilenceNote(StrEnum):
    """ReplyRhythm.noted: what was done about the silence under way."""

    NOTHING_YET = ""
    FOLLOWED_UP = "followed_up"  # one gentle follow-up text
    FLAGGED = "flagged"  # their specialist was told
