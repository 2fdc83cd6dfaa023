"""Logs as JSON lines on stderr (systemd's journal keeps them), for the web and scheduler processes.

Every line goes through `Redact`: anything that looks like a phone number becomes
`[phone]`, SQL parameters are cut from error text, and fields that could carry a
message body are dropped. Libraries that would log SQL parameters or API payloads
stay at WARNING whatever ASSISTANT_LOG_LEVEL says.

The web process calls `configure` from `create_app`; gunicorn's own loggers get the
same handler through `gunicorn_logconfig` (deploy/gunicorn.conf.py); `configure()` with
no arguments (the level from ASSISTANT_LOG_LEVEL) is for command-line processes such
as the scheduler.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from assistant.config import ConfigError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
PHONE_MASK = "[phone]"
BODY_MASK = "[not logged]"

# +44 7700 900123, 07700 900123, 447700900123, 0044 20 7946 0000, +1 (555) 010-0199 ...:
# a number 9 to 15 digits long with a phone's prefix, not part of an identifier or a decimal.
_PHONE = re.compile(r"(?<![\w+.])(?:\+|00|0|44)(?:[ \t\-()]{0,2}\d){8,14}(?![\w])")
# Terminal colour codes (the development server adds them to request lines): never inside a log line.
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# SQLAlchemy's error text ends with the statement's parameters: phone numbers and bodies.
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*")
# Extra fields that could hold what someone wrote or was sent: never logged.
BODY_FIELDS = frozenset({"body", "text", "message_body", "content", "sms", "reply"})
# Libraries whose INFO lines carry SQL parameters, API payloads or per-tick chatter.
QUIET_LIBRARIES = ("sqlalchemy", "twilio", "apscheduler", "urllib3", "alembic")
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_ACCESS_FIELDS = {"m": "method", "U": "path", "s": "status", "B": "bytes", "M": "ms"}


def redact(text: str) -> str:
    """The text with phone numbers and SQL parameters taken out."""
    return _PHONE.sub(PHONE_MASK, _SQL_PARAMETERS.sub("[parameters: not logged]", _ANSI.sub("", text)))


def _clean(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):  # a phone number can be an int too
        return value if redact(str(value)) == str(value) else PHONE_MASK
    if isinstance(value, Mapping):
        return {str(k): BODY_MASK if str(k).lower() in BODY_FIELDS else _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return redact(str(value))


class Redact(logging.Filter):
    """Rewrites each record in place so no handler after it sees a phone number or a body."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):
            return True
        args = record.args
        if record.name == "gunicorn.access" and isinstance(args, Mapping):
            # Only these parts of a request are kept: never its query string, headers or body.
            record.__dict__["http"] = {name: _clean(args.get(atom)) for atom, name in _ACCESS_FIELDS.items()}
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} {args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key in list(record.__dict__):
            if key in _STANDARD or key.startswith("_"):
                continue
            value = record.__dict__[key]
            record.__dict__[key] = BODY_MASK if key.lower() in BODY_FIELDS else _clean(value)
        record.__dict__["_redacted"] = True
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, process, and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        item: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in item:
                item[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            item["exception"] = record.exc_text
        if record.stack_info:
            item["stack"] = record.stack_info
        return json.dumps(item, ensure_ascii=False, default=str)


class ReadableFormatter(logging.Formatter):
    """Development: 'HH:MM:SS LEVEL logger: message key=value', already redacted, no colour codes."""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        extra = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_"))
        line = f"{at} {record.levelname:<7} {record.name}: {record.getMessage()}" + (f" {extra}" if extra else "")
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        return line + (f"\n{record.exc_text}" if record.exc_text else "")


class JsonLinesHandler(logging.Handler):
    """Writes redacted JSON lines to a stream: stderr as it is at the time of each line, unless given one."""

    def __init__(self, stream: TextIO | None = None, level: int | str = logging.NOTSET) -> None:
        super().__init__(level)
        self.target = stream
        self.setFormatter(JsonFormatter())
        self.addFilter(Redact())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = self.target or sys.stderr
            stream.write(line + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def level_number(level: str) -> int:
    name = level.strip().upper()
    if name not in LEVELS:
        raise ConfigError(f"ASSISTANT_LOG_LEVEL must be one of {', '.join(LEVELS)}, not {level!r}")
    number: int = logging.getLevelNamesMapping()[name]
    return number


def configure(
    level: str | None = None, *, stream: TextIO | None = None, readable: bool | None = None
) -> logging.Handler:
    """Send this process's logs to stderr as redacted JSON lines. Safe to call more than once.

    `level` defaults to ASSISTANT_LOG_LEVEL. An earlier handler of ours on the root
    logger is kept (gunicorn's workers already have one), never doubled.
    """
    if level is None:
        from assistant.config import load_settings

        level = load_settings().log_level
    number = level_number(level)
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, JsonLinesHandler)), None)
    if handler is None or (stream is not None and handler.target is not stream):
        if handler is not None:
            root.removeHandler(handler)
        handler = JsonLinesHandler(stream)
        root.addHandler(handler)
    if readable is not None:
        handler.setFormatter(ReadableFormatter() if readable else JsonFormatter())
    root.setLevel(number)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(number, logging.WARNING))
    return handler


def gunicorn_logconfig(level: str = "INFO") -> dict[str, Any]:
    """gunicorn's `logconfig_dict`: its error and access logs as the same redacted JSON lines."""
    number = level_number(level)
    name, libraries = logging.getLevelName(number), logging.getLevelName(max(number, logging.WARNING))
    handler = {"()": f"{__name__}.JsonLinesHandler"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": name, "handlers": ["json"]},
        "loggers": {
            "gunicorn.error": {"level": name, "handlers": ["json"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["json"], "propagate": False},
            **{lib: {"level": libraries} for lib in QUIET_LIBRARIES},
        },
        "handlers": {"json": handler},
        "formatters": {},
    }
