"""Template filters and helpers every page uses: times in the service's time zone, in words."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask, Response, current_app

from assistant.timing import DAYS
from assistant.web import plain
from assistant.web.common import now, rt


def zone() -> str:
    return str(rt().settings.default_timezone)


def local_time(value: datetime | None, fmt: str | None = None) -> str:
    """'Tue 1 Dec, 19:14' (the year when it is not this one); with a format, that format, day first."""
    if value is None:
        return "-"
    if fmt is None:
        return plain.when(value, now(), zone())
    return plain.local(value, zone()).strftime(fmt)


def day(value: datetime | None) -> str:
    return plain.day(value, zone())


def helpers() -> dict[str, Any]:
    return {
        "ago": lambda then: plain.ago(then, now(), zone()),
        "days": [d.capitalize() for d in DAYS],
        "plain": plain,
    }


def favicon() -> Response:
    return current_app.send_static_file("app/favicon.svg")


def init_app(app: Flask) -> None:
    app.add_template_filter(local_time, "local")
    app.add_template_filter(day, "day")
    app.context_processor(helpers)
    app.add_url_rule("/favicon.ico", "favicon", favicon)
