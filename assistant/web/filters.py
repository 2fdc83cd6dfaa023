"""Template filters and helpers every page uses: times in the service's time zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask

from assistant.timing import DAYS
from assistant.views_data import ago
from assistant.web.common import now, rt


def local_time(value: datetime | None, fmt: str = "%a %d %b %Y %H:%M") -> str:
    if value is None:
        return "-"
    return value.astimezone(ZoneInfo(rt().settings.default_timezone)).strftime(fmt)


def helpers() -> dict[str, Any]:
    return {"ago": lambda then: ago(then, now()), "days": [d.capitalize() for d in DAYS]}


def init_app(app: Flask) -> None:
    app.add_template_filter(local_time, "local")
    app.context_processor(helpers)
