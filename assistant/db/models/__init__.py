"""All tables, by what they hold; every name is importable from here. Times are stored in UTC and come back
timezone-aware."""

from __future__ import annotations

from assistant.db.models.access import AuditLog, FailedSignIn, ImportRun, SignIn, User, specialist_has_left
from assistant.db.models.care import Appointment, ContactLog, Flag, Measure, Notification, ReplyRhythm, StaffTask
from assistant.db.models.columns import UTCDateTime, json_column, table, utc_column
from assistant.db.models.people import Consent, JobStart, Participant, Service, Specialist
from assistant.db.models.schedule import Campaign, CampaignRecipient, DueTask, JobHealth, SendPace
from assistant.db.models.statuses import (
    CampaignStatus,
    FlagStatus,
    MeasureStatus,
    MessageStatus,
    NotificationStatus,
    RecipientStatus,
    RequestStatus,
    SessionStatus,
    SilenceNote,
    StaffTaskStatus,
    TaskStatus,
)
from assistant.db.models.texts import (
    Answer,
    ContactRequest,
    FlowSession,
    InboundReceipt,
    Message,
    QuestionnaireLink,
    StatusEvent,
)

__all__ = [
    "Answer",
    "Appointment",
    "AuditLog",
    "Campaign",
    "CampaignRecipient",
    "CampaignStatus",
    "Consent",
    "ContactLog",
    "ContactRequest",
    "DueTask",
    "FailedSignIn",
    "Flag",
    "FlagStatus",
    "FlowSession",
    "ImportRun",
    "InboundReceipt",
    "JobHealth",
    "JobStart",
    "Measure",
    "MeasureStatus",
    "Message",
    "MessageStatus",
    "Notification",
    "NotificationStatus",
    "Participant",
    "QuestionnaireLink",
    "RecipientStatus",
    "ReplyRhythm",
    "RequestStatus",
    "SendPace",
    "Service",
    "SessionStatus",
    "SignIn",
    "SilenceNote",
    "Specialist",
    "StaffTask",
    "StaffTaskStatus",
    "StatusEvent",
    "TaskStatus",
    "UTCDateTime",
    "User",
    "json_column",
    "specialist_has_left",
    "table",
    "utc_column",
]
