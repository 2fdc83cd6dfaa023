"""The record page shows how the person usually answers, next to their last reply, in words."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from assistant.db.models import ReplyRhythm
from assistant.db.units import transaction

from ..conftest import START
from .conftest import World


def _keep(world: World, external_id: str, delays_hours: list[float], *, asks: int, pending: int, days: int) -> None:
    logs = [math.log(h) for h in delays_hours]
    first = START - timedelta(days=days)
    with transaction(world.rt.engine) as db:
        db.add(
            ReplyRhythm(
                participant_id=world.ids[external_id],
                asks=asks,
                answered=len(logs),
                log_hours_sum=sum(logs),
                log_hours_sq=sum(x * x for x in logs),
                pending=pending,
                first_pending_at=first if pending else None,
                last_ask_at=first,
            )
        )


def _summary(client: Any, world: World, external_id: str) -> str:
    page = client.get(f"/participants/{world.ids[external_id]}")
    assert page.status_code == 200
    text: str = page.get_data(as_text=True)
    return text.split('id="summary-title"')[1].split("</dl>")[0]


def test_the_usual_rhythm_sits_next_to_the_last_reply(as_user: Any, world: World) -> None:
    # Ten answers of eleven settled, each within twelve minutes; one text out two days unanswered.
    _keep(world, "P001", [0.2] * 10, asks=12, pending=1, days=2)
    summary = _summary(as_user("sam@example.org"), world, "P001")
    line = (
        "<dt>Usual rhythm</dt><dd>Usually replies within 3 hours; answers about 9 in 10 texts. "
        "No reply yet to the last text (sent 2 days ago).</dd>"
    )
    assert line in summary
    assert summary.index("<dt>Last reply</dt>") < summary.index("<dt>Usual rhythm</dt>")


def test_several_unanswered_texts_are_counted_from_the_first(as_user: Any, world: World) -> None:
    # Six answers of ten, each thirty hours late; three texts unanswered since nine days ago.
    _keep(world, "P003", [30.0] * 6, asks=13, pending=3, days=9)
    summary = _summary(as_user("chris@example.org"), world, "P003")
    assert (
        "Usually replies within 3 days; answers about 7 in 10 texts. "
        "No reply yet to the last 3 texts (the first sent 9 days ago)."
    ) in summary


def test_a_newcomer_reads_as_new_with_what_is_assumed(as_user: Any, world: World) -> None:
    sam = as_user("sam@example.org")
    # In work, nothing kept yet: the cohort's prior, 8 in 10 within e^(ln 6 + 1.28 x 1.2) = 28 hours.
    assert "<dd>New: no usual pattern yet (assumed to answer about 8 in 10, within 28 hours).</dd>" in _summary(
        sam, world, "P002"
    )
    # Out of work, one text answered and one out since yesterday: still new.
    _keep(world, "P001", [2.0], asks=2, pending=1, days=1)
    summary = _summary(sam, world, "P001")
    assert "<dd>New: no usual pattern yet (assumed to answer about " in summary
    assert "No reply yet to the last text (sent yesterday).</dd>" in summary
