"""What a newcomer sees in the terminal: clean log lines, and `assistant run`'s short block."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from assistant.cli.banner import banner
from assistant.db.models import DueTask, Participant
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload
from assistant.logs import configure
from assistant.runtime import Runtime

COLOURED = '\x1b[32m"GET / HTTP/1.1" 200 -\x1b[0m'


@pytest.fixture
def root_handler() -> Iterator[None]:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    root.handlers[:] = before
    root.setLevel(level)


def test_production_lines_are_json_without_colour_codes(root_handler: None) -> None:
    out = io.StringIO()
    configure("INFO", stream=out, readable=False)
    logging.getLogger("werkzeug").info(COLOURED)
    [line] = out.getvalue().splitlines()
    item = json.loads(line)
    assert item["message"] == '"GET / HTTP/1.1" 200 -' and "\x1b" not in line


def test_development_lines_are_readable(root_handler: None) -> None:
    out = io.StringIO()
    configure("INFO", stream=out, readable=True)
    logging.getLogger("werkzeug").info(COLOURED)
    configure("INFO", stream=out)  # the app factory's own call keeps the readable format
    logging.getLogger("assistant.test").warning("call +447700900123 back")
    lines = out.getvalue().splitlines()
    assert lines[0].endswith('INFO    werkzeug: "GET / HTTP/1.1" 200 -') and "\x1b" not in lines[0]
    assert lines[1].endswith("WARNING assistant.test: call [phone] back")
    assert not any(line.startswith("{") for line in lines)


def test_run_block_names_the_next_check_in_outside_quiet_hours(rt: Runtime, caseload_file: Path, clock: object) -> None:
    import_caseload(rt, caseload_file, rt.clock.now())
    with transaction(rt.engine) as db:
        alex = db.exec(select(Participant).where(Participant.external_id == "P001")).one()
        for task in db.exec(select(DueTask)).all():
            db.delete(task)
        assert alex.id is not None
        # An escalation-like task first (not a check-in), then a check-in due at 06:00, inside quiet hours.
        db.add(DueTask(participant_id=alex.id, kind="dna_attempt", due_at=datetime(2026, 11, 23, 5, 0, tzinfo=UTC)))
        db.add(DueTask(participant_id=alex.id, kind="checkin", due_at=datetime(2026, 11, 24, 6, 0, tzinfo=UTC)))
    block = banner(rt, "127.0.0.1", 5000)
    assert "Dashboard    http://127.0.0.1:5000/" in block
    assert "create-user you@example.org --role service_admin --service north" in block
    assert "simulate --participant P001" in block and "Ctrl+C" in block
    assert "Alex's next check-in: Tue 24 Nov, 08:00" in block  # moved to when texts may arrive
    assert len(block.strip().splitlines()) <= 8
