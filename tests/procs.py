"""Processes on this machine as /proc shows them: the live children of a process (gunicorn's workers)."""

from __future__ import annotations

from pathlib import Path


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
