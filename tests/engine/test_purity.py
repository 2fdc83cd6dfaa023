"""The engine imports nothing but the standard library."""

from __future__ import annotations

import subprocess
import sys

from assistant.config import ROOT


def test_engine_imports_no_framework() -> None:
    code = (
        "import sys, assistant.engine\n"
        "heavy = {'flask', 'werkzeug', 'sqlmodel', 'sqlalchemy', 'twilio', 'apscheduler', 'jinja2', 'requests'}\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & heavy)\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "", f"assistant.engine pulled in: {result.stdout.strip()}"


def test_engine_source_never_reads_the_clock() -> None:
    for path in (ROOT / "assistant" / "engine").glob("*.py"):
        source = path.read_text()
        for forbidden in ("datetime.now", "time.time", "utcnow", "date.today", "open("):
            assert forbidden not in source, f"{path.name} uses {forbidden}"
