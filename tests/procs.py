"""Processes the tests start: the live children of a process (gunicorn's workers), as /proc shows
them, and the environment that gives a long-running process the machine's own clock."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def on_machine_clock(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (this process's by default) without libfaketime, for the servers and service processes
    the tests start when the suite runs with a shifted clock (`faketime -f +365d`).

    libfaketime shifts the monotonic clock with the date, and then a timed wait never ends: a
    threading.Event's, APScheduler's between ticks, PostgreSQL's lock timeout. Its opt-out for the
    monotonic clock makes time.sleep fail instead. A deployed process keeps its own clock all the
    same; the tests ask one what time it is rather than assume theirs (`Stack.now`)."""
    source = os.environ if env is None else env
    kept = {name: value for name, value in source.items() if not name.startswith(("FAKETIME", "DONT_FAKE", "FAKE_"))}
    preload = [lib for lib in kept.pop("LD_PRELOAD", "").split() if "faketime" not in lib]
    if preload:
        kept["LD_PRELOAD"] = " ".join(preload)
    return kept


def child_pids(parent: int) -> set[int]:
    """The live processes whose parent is `parent` (gunicorn's workers, for its master)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == parent and fields[0] != "Z":
                found.add(int(entry.name))
    return found
