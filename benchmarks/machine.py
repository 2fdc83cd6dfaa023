"""What every benchmark says about the run itself: the code it measured, how busy the machine was,
and a baseline measured in the same run, so figures from a shared 2-core machine can be compared."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
# Other processes using more than this many cores make a run's times suspect.
BUSY_CORES = 0.15


def describe_code(paths: tuple[str, ...] = ("assistant", "flows", "messages", "benchmarks")) -> str:
    """The commit measured, and how many files the working tree changes on top of it."""
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    status = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=ROOT, capture_output=True, text=True)
    changed = len(status.stdout.splitlines())
    return f"commit {head.stdout.strip() or '?'}" + (f" with {changed} files changed" if changed else "")


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy since boot, all cores (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU time of this process and the children it has waited for."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class Phase:
    """Wall and CPU time of a stretch of work, and the cores other processes used meanwhile."""

    wall: float = 0.0
    cpu: float = 0.0
    others_cores: float = 0.0

    def busy_warning(self) -> str | None:
        if self.others_cores <= BUSY_CORES:
            return None
        return (
            f"WARNING: other processes used {self.others_cores:.2f} cores during this phase: wall times are"
            " inflated; compare CPU times and the ratios to the baseline of this run, or run again"
        )


class Timer:
    """with Timer() as t: ...  then t.phase."""

    def __enter__(self) -> Timer:
        self._wall, self._cpu, self._busy = time.monotonic(), own_cpu_seconds(), machine_busy_seconds()
        return self

    def __exit__(self, *_exc: object) -> None:
        wall = time.monotonic() - self._wall
        cpu = own_cpu_seconds() - self._cpu
        others = max(0.0, machine_busy_seconds() - self._busy - cpu)
        self.phase = Phase(wall=wall, cpu=cpu, others_cores=others / wall if wall > 0 else 0.0)


def transaction_baseline(engine: sa.Engine, count: int = 300) -> float:
    """CPU seconds of one empty write transaction through the project's own helper (BEGIN, one
    SELECT, COMMIT): the floor under any unit of work, measured in the same run as the work."""
    from assistant.db.units import transaction

    probe = sa.text("SELECT 1")

    def run() -> None:
        with transaction(engine) as db:
            db.execute(probe)

    for _ in range(20):
        run()
    started = own_cpu_seconds()
    for _ in range(count):
        run()
    return (own_cpu_seconds() - started) / count
