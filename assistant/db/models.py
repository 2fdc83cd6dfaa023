"""All tables. Times are stored in UTC and come back timezone-aware."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware one is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_column(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


def json_column() -> Any:
    return Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))


def table(model: type[SQLModel]) -> sa.Table:
    """A model's Core table: statements on its columns skip the ORM's per-statement work."""
    found: sa.Table = model.__table__  # type: ignore[attr-defined]
    return found


class Service(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=200)
    settings: dict[str, Any] = json_column()


class Specialist(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=254)
    name: str = Field(default="", max_length=200)
    service_id: int = Field(foreign_key="service.id", index=True)
    team: str | None = Field(default=None, max_length=64)
    # Their daily digest of non-urgent flags: local time (None: the service's), last one sent.
    digest_time: str | None = Field(default=None, max_length=5)
    last_digest_at: datetime | None = utc_column()
    # Full-time equivalent (1.0 full time, 0.6 three days a week): their share of the caseload cap.
    fte: float = Field(default=1.0, sa_column_kwargs={"server_default": "1.0"})


class Participant(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("service_id", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    service_id: int = Field(foreign_key="service.id", index=True)
    external_id: str = Field(max_length=64, index=True)
    first_name: str = Field(max_length=100)
    phone: str = Field(unique=True, max_length=20)
    specialist_id: int = Field(foreign_key="specialist.id", index=True)
    cohort: str = Field(default="out_of_work", max_length=20)
    checkin_day: int = 1  # Monday is 0
    checkin_time: str = Field(default="10:30", max_length=5)
    checkin_every_weeks: int = 1
    timezone: str = Field(default="Europe/London", max_length=64)
    language: str = Field(default="en-GB", max_length=16)
    opted_out: bool = False
    opted_out_at: datetime | None = utc_column()
    unreachable: bool = False
    unreachable_reason: str | None = Field(default=None, max_length=200)
    paused: bool = False
    # Hours automated texts may arrive, local time; None means the service's default.
    allowed_from: str | None = Field(default=None, max_length=5)
    allowed_until: str | None = Field(default=None, max_length=5)
    # Their own windows when one pair of hours does not fit: "06:00-07:30,17:30-20:00", or one
    # crossing midnight, "22:00-02:00" (see assistant/windows.py). Set, it replaces the hours above.
    contact_windows: str | None = Field(default=None, max_length=23)
    # A break they asked for by text: automated texts wait until then (paused is set meanwhile).
    paused_until: datetime | None = utc_column()
    # Appointment places are only texted to people who asked for that.
    show_location: bool = False
    support_started_on: date | None = None
    support_ends_on: date | None = None
    # The journey's two ends: where and when the referral came from; why support ended, and who said so.
    referral_date: date | None = None
    referral_source: str | None = Field(default=None, max_length=64)
    exit_reason: str | None = Field(default=None, max_length=32)
    exit_recorded_at: datetime | None = utc_column()
    exit_recorded_by: str | None = Field(default=None, max_length=254)
    # Consent to be contacted by text (the latest Consent row for "sms_contact"), kept here for quick checks.
    sms_consent: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    erased_at: datetime | None = utc_column()
    tags: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False, server_default="[]"))
    last_inbound_at: datetime | None = utc_column()
    created_at: datetime | None = utc_column()
    updated_at: datetime | None = utc_column()


class FlowSession(SQLModel, table=True):
    """One run of a flow for one participant. While waiting, it is also a due row (wait_until)."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    flow: str = Field(max_length=64)
    flow_version: int
    status: str = Field(default="waiting", max_length=16, index=True)
    state: dict[str, Any] = json_column()
    question: str | None = Field(default=None, max_length=64)
    wait_until: datetime | None = utc_column(index=True)
    # Bumped on every change, so work planned against an older version is skipped.
    version: int = 1
    # A wait whose timeout failed to run is tried again later; the error stays on the row.
    timeout_attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    last_error: str | None = Field(default=None, max_length=500)
    started_at: datetime | None = utc_column()
    ended_at: datetime | None = utc_column()
    end_reason: str | None = Field(default=None, max_length=64)


class Message(SQLModel, table=True):
    """Every SMS in and out. Outbound rows are also the outbox."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    direction: str = Field(max_length=3)  # "in" or "out"
    body: str
    at: datetime | None = utc_column(index=True)
    status: str = Field(max_length=16, index=True)
    flow: str | None = Field(default=None, max_length=64)
    message_key: str | None = Field(default=None, max_length=128)
    session_id: int | None = Field(default=None, foreign_key="flowsession.id")
    phone: str = Field(max_length=40, index=True)  # the participant's side
    provider_sid: str | None = Field(default=None, max_length=64, index=True)
    error_code: str | None = Field(default=None, max_length=16)
    error_message: str | None = Field(default=None, max_length=300)
    attempts: int = 0
    next_attempt_at: datetime | None = utc_column(index=True)
    claimed_at: datetime | None = utc_column()
    sent_at: datetime | None = utc_column()
    expires_at: datetime | None = utc_column()
    segments: int = 1
    # Sent by the schedule (not a direct reply): quiet hours and holidays apply.
    automated: bool = False


class InboundReceipt(SQLModel, table=True):
    """Twilio MessageSids already handled: a retried webhook is acknowledged and ignored."""

    message_sid: str = Field(primary_key=True, max_length=64)
    received_at: datetime | None = utc_column()


class StatusEvent(SQLModel, table=True):
    """Every delivery status callback, kept so late or early ones can be applied in any order."""

    id: int | None = Field(default=None, primary_key=True)
    provider_sid: str = Field(max_length=64, index=True)
    status: str = Field(max_length=16)
    error_code: str | None = Field(default=None, max_length=16)
    received_at: datetime | None = utc_column()
    applied: bool = False


class Answer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    session_id: int | None = Field(default=None, foreign_key="flowsession.id")
    message_id: int | None = Field(default=None, foreign_key="message.id")
    flow: str = Field(max_length=64)
    question: str = Field(max_length=64)
    value: str = Field(max_length=64)
    raw: str | None = None
    at: datetime | None = utc_column()
    late: bool = False


class Flag(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    specialist_id: int = Field(foreign_key="specialist.id", index=True)
    kind: str = Field(max_length=64)
    severity: str = Field(max_length=16)
    reason: str
    status: str = Field(default="open", max_length=16, index=True)
    evidence: list[Any] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    created_at: datetime | None = utc_column()
    updated_at: datetime | None = utc_column()
    acknowledged_at: datetime | None = utc_column()
    acknowledged_by: str | None = Field(default=None, max_length=254)
    resolved_at: datetime | None = utc_column()
    resolved_by: str | None = Field(default=None, max_length=254)
    note: str | None = None
    # Urgent flags are the schedule of their own reminders: people are told again at next_notice_at
    # until someone acknowledges (then it is None). notices counts those sent since the flag was
    # raised or last acknowledged; last_notice_at is when the latest went.
    next_notice_at: datetime | None = utc_column(index=True)
    last_notice_at: datetime | None = utc_column()
    notices: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class DueTask(SQLModel, table=True):
    """Something to do at a time: the database is the schedule."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    kind: str = Field(max_length=32)
    due_at: datetime | None = utc_column(nullable=False, index=True)
    status: str = Field(default="pending", max_length=16, index=True)
    payload: dict[str, Any] = json_column()
    created_at: datetime | None = utc_column()
    done_at: datetime | None = utc_column()
    outcome: str | None = Field(default=None, max_length=64)
    # A row whose handling failed is retried later with backoff; the error stays on the row.
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    last_error: str | None = Field(default=None, max_length=500)


class Appointment(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("participant_id", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    external_id: str = Field(max_length=64)
    starts_at: datetime | None = utc_column(nullable=False, index=True)
    duration_minutes: int = 60
    kind: str = Field(max_length=32)
    location: str = Field(default="", max_length=300)
    with_whom: str = Field(default="", max_length=200)
    outcome: str | None = Field(default=None, max_length=32)
    outcome_at: datetime | None = utc_column()
    confirmed_at: datetime | None = utc_column()
    cancellation_requested_at: datetime | None = utc_column()
    # Bumped whenever the time or status changes: reminders planned for an older version are skipped.
    version: int = 1
    created_at: datetime | None = utc_column()
    updated_at: datetime | None = utc_column()


class ContactRequest(SQLModel, table=True):
    """A change to their own contact a participant asked for by text (pause, less, more, another
    day or time, a new number): what was asked, what came of it, and when. The specialist sees these."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    kind: str = Field(max_length=16)  # pause, less, more, day_time, new_number
    # asked (a question back is waiting), done, refused (a wrong code), expired, passed_on (to the specialist)
    status: str = Field(max_length=16, index=True)
    detail: dict[str, Any] = json_column()
    # A new number waits for the code texted to it: only a hash is kept, and the tries.
    code_hash: str | None = Field(default=None, max_length=64)
    tries: int = 0
    created_at: datetime | None = utc_column(nullable=False)
    expires_at: datetime | None = utc_column()
    done_at: datetime | None = utc_column()


class Measure(SQLModel, table=True):
    """One questionnaire result: scored only when complete; partial ones are kept as partial."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    session_id: int | None = Field(default=None, foreign_key="flowsession.id")
    instrument: str = Field(max_length=16, index=True)
    status: str = Field(max_length=16)  # complete, partial, expired, declined, crisis, paused
    total: int | None = None
    band: str | None = Field(default=None, max_length=64)
    items: dict[str, Any] = json_column()
    started_at: datetime | None = utc_column()
    completed_at: datetime | None = utc_column()


class Notification(SQLModel, table=True):
    """An email to a person about a flag: an outbox like the SMS one, sent after commit."""

    id: int | None = Field(default=None, primary_key=True)
    flag_id: int | None = Field(default=None, foreign_key="flag.id", index=True)
    to_email: str = Field(max_length=254)
    subject: str = Field(max_length=200)
    body: str
    status: str = Field(default="queued", max_length=16, index=True)
    attempts: int = 0
    next_attempt_at: datetime | None = utc_column(index=True)
    created_at: datetime | None = utc_column()
    sent_at: datetime | None = utc_column()
    error: str | None = Field(default=None, max_length=300)


class ContactLog(SQLModel, table=True):
    """A contact the specialist made outside the assistant (a call, a meeting): evidence too."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    at: datetime | None = utc_column(nullable=False, index=True)
    channel: str = Field(max_length=16)
    note: str = Field(default="", max_length=2000)
    logged_by: str = Field(max_length=254)
    logged_at: datetime | None = utc_column()
    # reached, not_reached (no answer, message left), sent (a letter, an email, a text); None: not said.
    outcome: str | None = Field(default=None, max_length=16)
    # An attempt the assistant made itself (a follow-up text): evidence of trying, not of contact.
    automated: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


class StaffTask(SQLModel, table=True):
    """Something for the specialist to do by hand (a call, an email, a letter), on their Today list
    from its due time until they log it done. Done or not, the software never ends support."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    kind: str = Field(max_length=16)  # call, email, letter
    reason: str = Field(max_length=300)
    source: str = Field(max_length=32)  # dna_followup
    payload: dict[str, Any] = json_column()
    due_at: datetime | None = utc_column(nullable=False, index=True)
    status: str = Field(default="open", max_length=16, index=True)  # open, done
    created_at: datetime | None = utc_column()
    done_at: datetime | None = utc_column()
    done_by: str | None = Field(default=None, max_length=254)
    contact_log_id: int | None = Field(default=None, foreign_key="contactlog.id")


class User(SQLModel, table=True):
    """Someone who signs in to the dashboard."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=254)
    password_hash: str = Field(max_length=200)
    role: str = Field(max_length=16)  # specialist, team_lead, service_admin
    service_id: int = Field(foreign_key="service.id", index=True)
    specialist_id: int | None = Field(default=None, foreign_key="specialist.id")
    team: str | None = Field(default=None, max_length=64)
    active: bool = True
    failed_logins: int = 0
    locked_until: datetime | None = utc_column()
    last_login_at: datetime | None = utc_column()
    password_changed_at: datetime | None = utc_column()
    created_at: datetime | None = utc_column()


class SignIn(SQLModel, table=True):
    """One signed-in browser: the cookie holds only its random token, stored here as a SHA-256 hash."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    service_id: int = Field(foreign_key="service.id", index=True)
    role: str = Field(max_length=16)  # the role at sign-in: a change of role ends the session
    created_at: datetime | None = utc_column(nullable=False)
    last_seen_at: datetime | None = utc_column(nullable=False)
    remote_addr: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=300)
    ended_at: datetime | None = utc_column()
    end_reason: str | None = Field(default=None, max_length=32)


class FailedSignIn(SQLModel, table=True):
    """A refused sign-in, by address: counted in the database so every worker sees the same count."""

    __table_args__ = (sa.Index("ix_failedsignin_address_at", "address", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=64)
    at: datetime | None = utc_column(nullable=False)


class JobHealth(SQLModel, table=True):
    """How each of the clock's jobs last went, for the service admins' health panel."""

    name: str = Field(primary_key=True, max_length=32)
    last_run_at: datetime | None = utc_column()
    last_ok_at: datetime | None = utc_column()
    last_error_at: datetime | None = utc_column()
    last_error: str | None = Field(default=None, max_length=500)
    failed_rows: int = 0


class AuditLog(SQLModel, table=True):
    """Every view of a participant's record and every change: who, what, when."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime | None = utc_column(nullable=False, index=True)
    service_id: int | None = Field(default=None, foreign_key="service.id", index=True)
    user_email: str = Field(max_length=254)
    action: str = Field(max_length=64)
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    detail: dict[str, Any] = json_column()


class Campaign(SQLModel, table=True):
    """A message (or a flow) a service sends to a group, at a time or relative to a date on each record."""

    id: int | None = Field(default=None, primary_key=True)
    service_id: int = Field(foreign_key="service.id", index=True)
    name: str = Field(max_length=200)
    status: str = Field(default="scheduled", max_length=16, index=True)  # scheduled, paused, cancelled, done
    text: str = ""  # with {{ merge_fields }}; empty when a flow is started instead
    flow: str | None = Field(default=None, max_length=64)
    audience: dict[str, Any] = json_column()
    send_at: datetime | None = utc_column()
    # Relative to a date on each participant's record, e.g. {"field": "support_end", "days": -28, "at": "10:00"}.
    relative: dict[str, Any] | None = Field(
        default=None, sa_column=sa.Column(sa.JSON(none_as_null=True), nullable=True)
    )
    reply_keyword: str | None = Field(default=None, max_length=32)
    created_by: str = Field(max_length=254)
    created_at: datetime | None = utc_column()
    updated_at: datetime | None = utc_column()


class CampaignRecipient(SQLModel, table=True):
    """One participant's copy of a campaign: the unique pair is why nobody gets it twice."""

    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "participant_id"),
        # The clock claims due copies in this order: the index saves sorting every waiting copy per batch.
        sa.Index("ix_campaignrecipient_claim", "status", "due_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    status: str = Field(default="planned", max_length=16, index=True)
    due_at: datetime | None = utc_column(index=True)
    message_id: int | None = Field(default=None, foreign_key="message.id")
    reason: str | None = Field(default=None, max_length=200)
    replied_at: datetime | None = utc_column()


class Consent(SQLModel, table=True):
    """Consent (or another lawful basis) per purpose, as recorded, with who recorded it and when.
    The latest row for a purpose is the one in force; earlier rows are the history."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    purpose: str = Field(max_length=32)  # sms_contact, evaluation, share_with_referrer
    granted: bool
    lawful_basis: str = Field(max_length=64)
    recorded_by: str = Field(max_length=254)
    recorded_at: datetime | None = utc_column(nullable=False)
    note: str = Field(default="", max_length=500)


class ImportRun(SQLModel, table=True):
    """One CSV import, from the dashboard or the CLI: who, when, what file, what came of it, every error."""

    id: int | None = Field(default=None, primary_key=True)
    # The service the file was imported into; None when a CLI file spanned several (or none could be told).
    service_id: int | None = Field(default=None, foreign_key="service.id", index=True)
    kind: str = Field(max_length=16)  # caseload, appointments
    file_name: str = Field(max_length=255)
    imported_by: str = Field(max_length=254)
    via: str = Field(max_length=16)  # dashboard, cli
    at: datetime | None = utc_column(nullable=False, index=True)
    outcome: str = Field(max_length=16)  # imported, rejected
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))


class SendPace(SQLModel, table=True):
    """When the next segment may leave a sending pool: one row all sending processes share."""

    pool: str = Field(primary_key=True, max_length=64)
    next_at: float = 0.0  # seconds since the epoch


class JobStart(SQLModel, table=True):
    """A job start the specialist recorded; sustainment answers (13 and 26 weeks) are kept on it."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    started_on: date
    hours_per_week: float
    employer: str = Field(default="", max_length=200)
    sector: str = Field(max_length=64)
    recorded_by: str = Field(max_length=254)
    recorded_at: datetime | None = utc_column(nullable=False)
    # {"13": "yes", "26": "changed_job"}: the answer to each sustainment check, by weeks in work.
    sustainment: dict[str, Any] = json_column()


class QuestionnaireLink(SQLModel, table=True):
    """A private page for one sitting of a questionnaire. The text holds only a random token; this
    row keeps its SHA-256 hash, never the token. It shows nothing once the sitting ends or expires."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    session_id: int = Field(foreign_key="flowsession.id", index=True)
    created_at: datetime | None = utc_column(nullable=False)
    expires_at: datetime | None = utc_column(nullable=False)
    ended_at: datetime | None = utc_column()
    end_reason: str | None = Field(default=None, max_length=32)


class ReplyRhythm(SQLModel, table=True):
    """How one participant usually answers, kept up to date per text: a few numbers a specialist
    could read (see engine/rhythm.py), never a history scan."""

    participant_id: int = Field(foreign_key="participant.id", primary_key=True)
    asks: int = 0  # check-ins (and gentle follow-ups) sent
    answered: int = 0  # of those, answered by a text before the next one
    log_hours_sum: float = 0.0  # sum and sum of squares of ln(hours to reply), over answered asks
    log_hours_sq: float = 0.0
    pending: int = 0  # asks since their last text
    first_pending_at: datetime | None = utc_column()
    last_ask_at: datetime | None = utc_column(index=True)
    # What was done about the silence under way: "" nothing yet, "followed_up", "flagged".
    noted: str = Field(default="", max_length=16)
