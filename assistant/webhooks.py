"""Twilio's webhooks and the health check."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, request
from flask_limiter.util import get_remote_address
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from twilio.request_validator import RequestValidator

from assistant.conversation.inbound import receive_sms
from assistant.limits import AddressLimit, limiter
from assistant.runtime import Runtime
from assistant.sending.status import record_status_callback

bp = Blueprint("twilio", __name__)


@limiter.request_filter
def _counted_by_the_blueprint() -> bool:
    """Flask-Limiter leaves Twilio's endpoints alone: `within_rate_limit` counts them."""
    return request.blueprint == bp.name


@bp.before_request
def within_rate_limit() -> None:
    # Per sender address, per worker: Twilio retries a 429, so a flood is slowed and nothing lost.
    counts: AddressLimit = current_app.extensions["assistant.webhook_limit"]
    if not counts.hit(runtime().settings.webhook_rate_limit, bp.name, get_remote_address()):
        abort(429)


EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["assistant"]
    return rt


def _signed() -> bool:
    """Check X-Twilio-Signature against the public URL Twilio called (not the one we see behind a proxy)."""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    rt = runtime()
    url = rt.settings.public_url.rstrip("/") + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    return bool(RequestValidator(rt.settings.twilio_auth_token).validate(url, request.form, signature))


def _twiml() -> Response:
    return Response(EMPTY_TWIML, mimetype="text/xml")


@bp.post("/twilio/sms")
def inbound_sms() -> Response:
    if not _signed():
        abort(403)
    sid = request.form.get("MessageSid", "").strip()
    sender = request.form.get("From", "").strip()
    if not sid or not sender or len(sid) > 64 or "\x00" in sid + sender:
        abort(400, "MessageSid and From are required, without NUL characters")
    # A participant's text is never refused for what is in it: a NUL (which no column can hold) is dropped.
    body = request.form.get("Body", "").replace("\x00", "")
    rt = runtime()
    dispatcher = current_app.extensions["assistant.sending.dispatch"]
    received = receive_sms(rt, sid=sid, sender=sender, body=body, now=rt.clock.now(), claim=dispatcher.sends)
    dispatcher.kick(received.outbox, emails=received.emails, booked=received.booked)
    return _twiml()


@bp.post("/twilio/status")
def status_callback() -> tuple[str, int]:
    if not _signed():
        abort(403)
    sid = request.form.get("MessageSid", "").strip()
    status = request.form.get("MessageStatus", "").strip().lower()
    if not sid or not status or len(sid) > 64 or len(status) > 16:
        abort(400, "MessageSid and MessageStatus are required")
    code = request.form.get("ErrorCode", "").strip()[:16] or None
    rt = runtime()
    record_status_callback(rt, sid=sid, status=status, error_code=code, now=rt.clock.now())
    return "", 204


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    try:
        with runtime().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except sa_exc.SQLAlchemyError:
        return {"status": "error", "database": "unavailable"}, 503
    return {"status": "ok", "database": "ok"}, 200
