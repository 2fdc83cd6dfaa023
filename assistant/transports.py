"""SMS transports: where outbound messages actually go.

`console` prints each message and records it in a JSON-lines file (so a restart can
tell what was already "sent"); `twilio` calls Twilio's REST API with the official SDK.
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Protocol

from assistant.config import Settings

# Twilio errors that mean "this number will never take a text from us".
PERMANENT_NUMBER_ERRORS = {"21211", "21610", "21614", "30005", "30006"}
OPTED_OUT_ERROR = "21610"


@dataclass(frozen=True)
class SendResult:
    ok: bool
    sid: str | None = None
    status: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    transient: bool = False


class Transport(Protocol):
    name: str
    senders: int

    def send(self, *, to: str, body: str, key: str, status_callback: str | None) -> SendResult: ...

    def lookup(self, *, to: str, body: str, key: str, since: datetime) -> str | None:
        """The provider's id for a message we may have sent before a crash, or None."""
        ...


class ConsoleTransport:
    name = "console"
    senders = 1

    def __init__(self, record: Path | None = None, stream: IO[str] | None = None) -> None:
        self.record = record
        self.stream = stream
        self._lock = threading.Lock()
        self._sent: dict[str, str] = {}
        if record and record.exists():
            for line in record.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    item = json.loads(line)
                    self._sent[item["key"]] = item["sid"]

    def send(self, *, to: str, body: str, key: str, status_callback: str | None) -> SendResult:
        with self._lock:
            if key in self._sent:  # already out: never print it twice
                return SendResult(ok=True, sid=self._sent[key], status="sent")
            sid = "SM" + uuid.uuid4().hex
            stream = self.stream or sys.stdout
            print(f"\n[SMS to {to}]\n{body}\n", file=stream, flush=True)
            self._sent[key] = sid
            if self.record:
                self.record.parent.mkdir(parents=True, exist_ok=True)
                with self.record.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"key": key, "sid": sid, "to": to}) + "\n")
            return SendResult(ok=True, sid=sid, status="sent")

    def lookup(self, *, to: str, body: str, key: str, since: datetime) -> str | None:
        return self._sent.get(key)


class TwilioTransport:
    name = "twilio"

    def __init__(self, settings: Settings) -> None:
        from twilio.rest import Client

        self.client = Client(settings.twilio_account_sid, settings.twilio_auth_token)
        if settings.twilio_api_url:
            self.client.api.base_url = settings.twilio_api_url.rstrip("/")
        # Several numbers (comma-separated) share the load in turn.
        self.from_numbers = [n.strip() for n in settings.twilio_from_number.split(",") if n.strip()]
        self._turn = 0
        self.messaging_service_sid = settings.twilio_messaging_service_sid
        self.senders = max(1, len(self.from_numbers))

    def send(self, *, to: str, body: str, key: str, status_callback: str | None) -> SendResult:
        from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException

        kwargs: dict[str, str] = {"to": to, "body": body}
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        else:
            kwargs["from_"] = self.from_numbers[self._turn % len(self.from_numbers)]
            self._turn += 1
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            message = self.client.messages.create(**kwargs)  # type: ignore[arg-type]
        except (TwilioRestException, TwilioServiceException) as exc:
            # Both error formats carry the HTTP status and Twilio's error code.
            detail = exc.msg if isinstance(exc, TwilioRestException) else (exc.detail or exc.title)
            return _failure(exc.status, exc.code, str(detail))
        except (TwilioException, OSError) as exc:  # network trouble: try again later
            return SendResult(ok=False, error_code="network", error_message=str(exc)[:300], transient=True)
        return SendResult(ok=True, sid=message.sid, status=message.status)

    def lookup(self, *, to: str, body: str, key: str, since: datetime) -> str | None:
        # Twilio has no idempotency key for messages: match on recipient, time and body.
        after = (since - timedelta(minutes=5)).astimezone(UTC)
        for message in self.client.messages.list(to=to, date_sent_after=after, limit=50):
            if message.body == body:
                return str(message.sid)
        return None


def _failure(status: int, code: object, detail: str) -> SendResult:
    error_code = str(code) if code is not None else f"http-{status}"
    transient = status == 429 or status >= 500 or error_code == "20429"
    return SendResult(ok=False, error_code=error_code, error_message=detail[:300], transient=transient)


def make_transport(settings: Settings) -> Transport:
    if settings.sms_transport == "twilio":
        return TwilioTransport(settings)
    return ConsoleTransport(record=settings.console_log)
