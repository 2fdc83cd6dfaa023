"""`assistant simulate` changes only the simulated participant: `/wait` runs their due work and nobody else's."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from assistant.db.models import DueTask, Message, Participant
from assistant.db.units import make_engine, transaction

from .conftest import CASELOAD_HEADER
from .test_cli import cli_env, run  # noqa: F401  (fixture)


def _state(db_url: str) -> dict[str, tuple[list[tuple[str, str]], int]]:
    """Per participant: their pending tasks (kind, due time) and how many texts they have."""
    engine = make_engine(db_url)
    with transaction(engine) as db:
        people = {p.id: p.external_id for p in db.exec(select(Participant)).all()}
        state: dict[str, tuple[list[tuple[str, str]], int]] = {}
        for pid, external in people.items():
            tasks = db.exec(select(DueTask).where(DueTask.participant_id == pid, DueTask.status == "pending")).all()
            texts = db.exec(select(Message).where(Message.participant_id == pid)).all()
            state[external] = (sorted((t.kind, str(t.due_at)) for t in tasks), len(texts))
    engine.dispose()
    return state


def test_wait_runs_only_the_simulated_participants_due_work(
    cli_env: dict[str, str],  # noqa: F811
    tmp_path: Path,
    db_url: str,
) -> None:
    caseload = tmp_path / "same-morning.csv"
    caseload.write_text(
        CASELOAD_HEADER
        + "P001,Alex,07700 900101,sam.jones@example.org,Sam Jones,north,out_of_work,Tue,10:30\n"
        + "P002,Jordan,07700 900102,sam.jones@example.org,Sam Jones,north,out_of_work,Tue,10:15\n"
        + "P003,Priya,07700 900103,chris.lee@example.org,Chris Lee,north,out_of_work,Tue,10:45\n",
        encoding="utf-8",
    )
    run(cli_env, "import-caseload", str(caseload), "--now", "2026-11-22T12:00:00+00:00")
    before = _state(db_url)
    assert before["P002"][1] == 0 and before["P002"][0], before  # Jordan's check-in is planned
    # An hour on, Alex's, Jordan's and Priya's Tuesday check-ins have all fallen due; only Alex is simulated.
    code, out = run(
        cli_env, "simulate", "--participant", "P001", "--now", "2026-11-24T10:00:00+00:00", stdin="/wait 1h\n/quit\n"
    )
    assert code == 0, out
    assert "How has your week been?" in out
    after = _state(db_url)
    assert after["P001"][1] == 1  # Alex's check-in went
    assert after["P002"] == before["P002"]  # Jordan's is untouched: still pending, at the same time, nothing sent
    assert after["P003"] == before["P003"]
    assert "[SMS to +447700900102]" not in out and "[SMS to +447700900103]" not in out


def test_a_long_wait_sends_each_contact_when_it_falls_due_not_too_late_at_the_end(
    cli_env: dict[str, str],  # noqa: F811
    caseload_file: Path,
    db_url: str,
) -> None:
    run(cli_env, "import-caseload", str(caseload_file), "--now", "2026-11-22T12:00:00+00:00")
    # Monday evening: Alex's check-in is Tuesday 10:30, inside two days, but long before their end.
    code, out = run(
        cli_env, "simulate", "--participant", "P001", "--now", "2026-11-23T21:00:00+00:00", stdin="/wait 2d\n/quit\n"
    )
    assert code == 0, out
    assert "How has your week been?" in out and "1 contact(s) started" in out
    engine = make_engine(db_url)
    with transaction(engine) as db:
        skipped = db.exec(select(DueTask).where(DueTask.status == "skipped_too_late")).all()
    engine.dispose()
    assert skipped == []
