"""The outcomes report on a seeded cohort, against rates and denominators worked out by hand, with
small numbers suppressed in the CSV; and the outcome definitions' edge cases."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import select

from assistant.care.clinical_outcomes import Score, combined_outcome, paired_outcomes, scale_outcome
from assistant.care.measures import measures_for_export
from assistant.cli.commands import main
from assistant.db.models import Measure, Participant
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload
from assistant.reporting.formats import outcomes_csv
from assistant.reporting.outcomes import outcomes_report
from assistant.runtime import Runtime

FIRST, LAST, LATER = (datetime(2026, 11, d, 10, 0, tzinfo=UTC) for d in (2, 23, 27))
DECEMBER = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
# id: cohort, first (PHQ-9, GAD-7), last (PHQ-9, GAD-7); None: not completed at that sitting.
COHORT: dict[str, tuple[str, tuple[int, int], tuple[int | None, int | None] | None]] = {
    "A": ("out_of_work", (15, 12), (5, 4)),  # caseness; recovered; reliably better on both
    "B": ("out_of_work", (12, 6), (8, 5)),  # caseness; recovered; no reliable change
    "C": ("out_of_work", (20, 15), (18, 14)),  # caseness; not recovered
    "D": ("out_of_work", (8, 5), (3, 2)),  # below caseness: recovery not applicable
    "E": ("out_of_work", (6, 4), (14, 9)),  # below caseness; reliable deterioration
    "F": ("in_work", (18, 10), (9, 7)),  # caseness; recovered; reliable improvement (PHQ-9)
    "G": ("in_work", (11, 9), (11, 3)),  # caseness; not recovered; reliable improvement (GAD-7)
    "H": ("in_work", (14, 12), (4, 16)),  # PHQ-9 reliably better, GAD-7 reliably worse: neither overall
    "I": ("in_work", (16, 10), None),  # one sitting: nothing to pair
    "J": ("in_work", (16, 10), (7, None)),  # GAD-7 not completed at the last: PHQ-9 pair only
    "K": ("out_of_work", (16, 10), (5, 3)),  # last sitting after the period: nothing to pair in it
}


def _seed(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "caseload.csv"
    lines = ["participant_id,first_name,phone,specialist_email,specialist_name,service,cohort"]
    for n, (pid, (cohort, _, _)) in enumerate(COHORT.items()):
        lines.append(f"{pid},Person{pid},0770090{n:04d},sam@example.org,Sam Jones,north,{cohort}")
    path.write_text("\n".join(lines) + "\n")
    import_caseload(rt, path, datetime(2026, 10, 1, tzinfo=UTC))
    with transaction(rt.engine) as db:
        ids = {p.external_id: p for p in db.exec(select(Participant)).all()}
        for pid, (_, first, last) in COHORT.items():
            person = ids[pid]
            assert person.id is not None
            second = DECEMBER if pid == "K" else LAST
            for when, scores in ((FIRST, first), (second, last)) if last else ((FIRST, first),):
                for instrument, total in zip(("phq9", "gad7"), scores, strict=True):
                    status = "complete" if total is not None else "partial"
                    db.add(Measure(participant_id=person.id, instrument=instrument, status=status, total=total,
                                   started_at=when, completed_at=when))  # fmt: skip
        for pid in ("A", "B", "F"):
            ids[pid].support_started_on = date(2026, 11, 2)
        ids["D"].support_ends_on = date(2026, 11, 20)
        ids["C"].support_started_on = date(2026, 10, 20)  # before the period
        for person in ids.values():
            db.add(person)


def _rates(report: object, dimension: str, value: str, scale: str) -> dict[str, tuple[int, int]]:
    group = next(g for g in report.groups if (g.dimension, g.value) == (dimension, value))  # type: ignore[attr-defined]
    return {k: (r.numerator, r.denominator) for k, r in group.clinical[scale].items()}


def test_outcomes_on_a_seeded_cohort_match_the_hand_count(rt: Runtime, tmp_path: Path) -> None:
    _seed(rt, tmp_path)
    with transaction(rt.engine) as db:
        report = outcomes_report(db, date(2026, 11, 1), date(2026, 11, 30), "Europe/London", select(Participant))
    # Combined: A-H paired (I one sitting, J no GAD-7 at the last, K's last after the period).
    assert _rates(report, "all", "all", "combined") == {
        "caseness_first": (6, 8),  # A B C F G H
        "recovery": (3, 6),  # A B F
        "reliable_improvement": (3, 8),  # A F G
        "reliable_deterioration": (1, 8),  # E
        "reliable_recovery": (2, 6),  # A F
    }
    assert _rates(report, "all", "all", "phq9") == {
        "caseness_first": (7, 9),  # A B C F G H J
        "recovery": (5, 7),  # A B F H J
        "reliable_improvement": (4, 9),  # A F H J
        "reliable_deterioration": (1, 9),  # E
        "reliable_recovery": (4, 7),  # A F H J
    }
    assert _rates(report, "all", "all", "gad7") == {
        "caseness_first": (5, 8),  # A C F G H
        "recovery": (3, 5),  # A F G
        "reliable_improvement": (2, 8),  # A G
        "reliable_deterioration": (2, 8),  # E H
        "reliable_recovery": (2, 5),  # A G
    }
    assert _rates(report, "cohort", "in_work", "combined")["recovery"] == (1, 3)  # F of F G H
    assert _rates(report, "cohort", "out_of_work", "combined")["caseness_first"] == (3, 5)  # A B C of A-E
    service = report.groups[0]
    # Referral dates and job starts are recorded fields; none of this cohort has either in range.
    assert (service.starts, service.exits, service.referrals, service.job_starts) == (3, {"not recorded": 1}, 0, 0)
    assert [g.value for g in report.groups if g.dimension == "referral_source"] == ["not recorded"]

    table = list(csv.reader(io.StringIO(outcomes_csv(report))))
    rows = {(r[2], r[3], r[4]): r[5:] for r in table[1:] if len(r) > 5}
    assert rows[("all", "all", "combined:caseness_first")] == ["6", "8", "75.0"]
    assert rows[("all", "all", "combined:recovery")] == ["*", "6", "*"]  # 3 is under 5
    assert rows[("all", "all", "phq9:recovery")] == ["5", "7", "71.4"]
    assert rows[("cohort", "in_work", "combined:recovery")] == ["*", "*", "*"]
    assert rows[("all", "all", "combined:reliable_deterioration")] == ["*", "8", "*"]
    assert rows[("all", "all", "referrals")] == ["0", "", ""]
    assert rows[("all", "all", "starts")] == ["*", "", ""]  # 3 starts
    assert "Spitzer" in table[-1][0] and "Pfizer" in table[-1][0]
    assert not any("Person" in cell for row in table for cell in row)


def test_the_outcomes_command_prints_every_denominator(rt: Runtime, tmp_path: Path, db_url: str) -> None:
    _seed(rt, tmp_path)
    env = {"ASSISTANT_DATABASE_URL": db_url, "ASSISTANT_CONSOLE_LOG": str(tmp_path / "sms.jsonl")}
    out = CliRunner().invoke(main, ["report", "outcomes", "--from", "2026-11-01", "--to", "2026-11-30"], env=env)
    assert out.exit_code == 0, out.output
    assert "recovery: 3/6 (50.0%)" in out.output and "referrals: 0" in out.output
    assert "job starts (7+ hours a week): 0" in out.output
    assert "Kroenke" in out.output
    bad = CliRunner().invoke(main, ["report", "outcomes", "--from", "2026-12-01", "--to", "2026-11-01"], env=env)
    assert bad.exit_code != 0


@pytest.mark.parametrize(
    ("scale", "first", "last", "expected"),
    [
        # (caseness at first, recovery, reliable improvement, reliable deterioration, reliable recovery)
        ("phq9", 9, 2, (False, None, True, False, None)),  # below caseness: not applicable, not "not recovered"
        ("phq9", 10, 9, (True, True, False, False, False)),  # 10 is caseness, 9 is not
        ("phq9", 16, 10, (True, False, True, False, False)),  # a fall of exactly 6 is reliable
        ("phq9", 16, 11, (True, False, False, False, False)),  # 5 is not
        ("gad7", 8, 4, (True, True, True, False, True)),  # GAD-7: caseness 8, reliable change 4
        ("gad7", 7, 11, (False, None, False, True, None)),
    ],
)
def test_per_scale_edges(scale: str, first: int, last: int, expected: tuple[object, ...]) -> None:
    o = scale_outcome(scale, first, last)
    assert (o.caseness_first, o.recovery, o.reliable_improvement, o.reliable_deterioration, o.reliable_recovery) == (
        expected
    )


def test_combined_outcomes_need_both_scales_and_two_complete_sittings() -> None:
    assert combined_outcome({"phq9": 16}, {"phq9": 5}) is None  # never judged on PHQ-9 alone
    below = combined_outcome({"phq9": 8, "gad7": 6}, {"phq9": 2, "gad7": 1})
    assert below is not None and below.recovery is None and below.reliable_recovery is None
    # Recovered only below both thresholds at the last.
    still = combined_outcome({"phq9": 15, "gad7": 12}, {"phq9": 4, "gad7": 8})
    assert still is not None and still.recovery is False and still.reliable_improvement
    one = [Score("phq9", 16, "s1", FIRST), Score("gad7", 12, "s1", FIRST)]
    assert paired_outcomes(one) == {}  # one sitting: no trajectory
    # A later sitting with only PHQ-9 complete pairs PHQ-9, not the combined outcome.
    found = paired_outcomes([*one, Score("phq9", 5, "s2", LAST), Score("gad7", 4, "s3", LATER)])
    assert set(found) == {"phq9", "gad7"}
    # Scores of one sitting resumed later are one sitting, not two.
    resumed = paired_outcomes([Score("phq9", 16, "s1", FIRST), Score("gad7", 12, "s1", LAST)])
    assert resumed == {}


def test_a_wsas_total_with_work_not_applicable_is_partial_and_says_so(rt: Runtime, tmp_path: Path) -> None:
    _seed(rt, tmp_path)
    with transaction(rt.engine) as db:
        person = db.exec(select(Participant).where(Participant.external_id == "A")).one()
        assert person.id is not None
        items = {"1": "not_applicable", "2": "6", "3": "8", "4": "2", "5": "5"}
        db.add(Measure(participant_id=person.id, instrument="wsas", status="partial", total=21, items=items,
                       started_at=FIRST, completed_at=FIRST))  # fmt: skip
        db.flush()
        wsas = [m for m in measures_for_export(db, person.id) if m["instrument"] == "wsas"]
    assert wsas[0]["band"] is None and wsas[0]["note"] == "4-item total, work not applicable: not banded"


def test_a_job_is_sustained_only_where_the_person_said_they_are_still_in_work(rt: Runtime, tmp_path: Path) -> None:
    """Jobs whose 13-week mark falls in the period: one still in work, one in another job, one
    who said no, one who never answered; a job of under 7 hours is not an outcome at all."""
    from assistant.db.models import JobStart

    _seed(rt, tmp_path)
    august = date(2026, 8, 10)  # 13 weeks on: 9 November
    answers = {"A": {"13": "yes"}, "B": {"13": "changed_job"}, "C": {"13": "no"}, "D": {}, "E": {"13": "yes"}}
    with transaction(rt.engine) as db:
        ids = {p.external_id: p.id for p in db.exec(select(Participant)).all()}
        for pid, said in answers.items():
            hours = 6.0 if pid == "E" else 16.0
            db.add(JobStart(participant_id=ids[pid], started_on=august, hours_per_week=hours, sector="retail",
                            recorded_by="sam@example.org", recorded_at=FIRST, sustainment=said))  # fmt: skip
    with transaction(rt.engine) as db:
        report = outcomes_report(db, date(2026, 11, 1), date(2026, 11, 30), "Europe/London", select(Participant))
    everyone = next(g for g in report.groups if (g.dimension, g.value) == ("all", "all"))
    rate = everyone.sustained[13]
    assert (rate.numerator, rate.denominator) == (2, 4)
    from assistant.reporting.formats import outcomes_text

    said = outcomes_text(report)
    assert "sustained 13 weeks: 2/4" in said and "time to first two-way contact (a reply" in said
