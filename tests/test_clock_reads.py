"""Time comes from the injected clock: assistant/clock.py is the one place the machine's clock is read.

A test that reads the real date, or code that reads it behind a test's back, passes on the day it
is written and fails some weeks later. This scans the code, the tests and the benchmarks for direct
reads of the wall clock; the few that are meant are listed below with the reason.
"""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest

from assistant.clock import SystemClock
from assistant.config import ROOT

from .conftest import START

# path (from the repository root) -> why it may read the wall clock itself
ALLOWED = {
    "assistant/clock.py": "the system clock",
    "assistant/db/send_pace.py": "the send pace is seconds on a timeline shared by processes, not a date",
    "benchmarks/webhook.py": "it plans check-ins for the server processes it measures, which run on the machine's clock",
}

# What reads the wall clock, by where it comes from.
DATETIME_CLASS_READS = {"datetime": {"now", "utcnow", "today"}, "date": {"today"}}
TIME_READS = {"time", "time_ns", "localtime", "gmtime", "ctime", "asctime", "strftime"}


def clock_reads(source: str) -> list[str]:
    """Each direct wall-clock read in `source`, as `line: what`."""
    tree = ast.parse(source)
    modules: dict[str, str] = {}  # local name -> "datetime" or "time" (the module)
    classes: dict[str, str] = {}  # local name -> "datetime" or "date" (the class)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in ("datetime", "time"):
                    modules[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module in ("datetime", "time"):
            for alias in node.names:
                if node.module == "datetime" and alias.name in DATETIME_CLASS_READS:
                    classes[alias.asname or alias.name] = alias.name
                elif node.module == "time" and alias.name in TIME_READS:
                    found.append(f"{node.lineno}: from time import {alias.name}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        base = node.value
        if isinstance(base, ast.Name) and classes.get(base.id) in DATETIME_CLASS_READS:
            if node.attr in DATETIME_CLASS_READS[classes[base.id]]:
                found.append(f"{node.lineno}: {base.id}.{node.attr}")
        elif isinstance(base, ast.Name) and modules.get(base.id) == "time" and node.attr in TIME_READS:
            found.append(f"{node.lineno}: {base.id}.{node.attr}")
        elif (
            isinstance(base, ast.Attribute)
            and isinstance(base.value, ast.Name)
            and modules.get(base.value.id) == "datetime"
            and node.attr in DATETIME_CLASS_READS.get(base.attr, set())
        ):
            found.append(f"{node.lineno}: {base.value.id}.{base.attr}.{node.attr}")
    return sorted(found, key=lambda hit: int(hit.split(":")[0]))


def python_files() -> list[Path]:
    files = []
    for folder in ("assistant", "tests", "benchmarks"):
        files += [p for p in (ROOT / folder).rglob("*.py") if "node_modules" not in p.parts]
    return sorted(files)


def test_only_the_clock_module_reads_the_real_clock() -> None:
    files = python_files()
    assert len(files) > 50 and ROOT / "assistant" / "clock.py" in files
    offenders = {}
    for path in files:
        name = path.relative_to(ROOT).as_posix()
        reads = clock_reads(path.read_text(encoding="utf-8"))
        if reads and name not in ALLOWED:
            offenders[name] = reads
    assert not offenders, (
        "these read the machine's clock; take `now` from the caller or the runtime's clock "
        f"(tests: the `clock` fixture or --now): {offenders}"
    )


def test_every_allowed_file_still_reads_the_clock() -> None:
    # An exception nobody needs any more is taken off the list.
    for name in ALLOWED:
        assert clock_reads((ROOT / name).read_text(encoding="utf-8")), f"{name} no longer reads the clock"


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import UTC, datetime\nx = datetime.now(UTC)",
        "from datetime import datetime as dt\nx = dt.utcnow()",
        "from datetime import date\nx = date.today()",
        "import datetime\nx = datetime.datetime.now()",
        "import datetime as d\nx = d.date.today()",
        "import time\nx = time.time()",
        "import time\nclock = time.time",
        "import time as t\nx = t.localtime()",
        "from time import time\nx = time()",
    ],
)
def test_the_scan_sees_each_way_of_reading_the_clock(source: str) -> None:
    assert clock_reads(source)


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import datetime\nx = datetime.fromisoformat('2026-11-22T12:00:00+00:00')",
        "import time\nx = time.monotonic()\ntime.sleep(0)",
        "x = rt.clock.now()",
        "from datetime import date\nx = date(2026, 11, 22)",
    ],
)
def test_the_scan_leaves_other_uses_alone(source: str) -> None:
    assert clock_reads(source) == []


def test_the_system_clock_is_far_from_the_test_dates_during_tests() -> None:
    # tests/conftest.py moves it, so code that reads it instead of the injected clock shows at once.
    assert SystemClock().now() - START > timedelta(days=9 * 365)
