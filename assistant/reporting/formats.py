"""The weekly contact and outcomes reports as plain text (for the CLI) and CSV (for commissioners).

CSV carries no personal data beyond the participant id (no names, numbers or message text), and
the outcomes CSV suppresses counts from 1 to 4 (and any rate or median built on them) as NHS
statistics do: "*" stands for a suppressed value."""

from __future__ import annotations

import csv
import io
from typing import Any

from assistant.care.clinical_outcomes import COMBINED, SCALES
from assistant.reporting.caseload_caps import CapRow
from assistant.reporting.contact_evidence import CONTACT_KINDS, WeeklyContact
from assistant.reporting.outcomes import CLINICAL, NOT_RECORDED, SMALL, SUSTAIN_WEEKS, OutcomesReport, Rate, median_of

ATTRIBUTION = (
    "PHQ-9 and GAD-7 developed by Drs Robert L. Spitzer, Janet B.W. Williams, Kurt Kroenke and colleagues, "
    "with an educational grant from Pfizer Inc. No permission required to reproduce, translate, display or distribute."
)
SCALE_NAMES = {"phq9": "PHQ-9 (depression)", "gad7": "GAD-7 (anxiety)", COMBINED: "PHQ-9 and GAD-7 combined"}
CADENCE_NOTE = "In-work participants are measured against their own agreed check-in interval, not weekly."
SUPPRESSED = "*"


def cell(value: object) -> str:
    """A spreadsheet never runs what we export: cells that could start a formula are quoted."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _who(report: WeeklyContact, specialist_id: int) -> str:
    owner = report.specialists[specialist_id]
    return owner.email


def contact_text(report: WeeklyContact, *, list_people: bool = True) -> str:
    lines = [f"Weekly contact, week of {report.monday.isoformat()}", CADENCE_NOTE, ""]
    header = (
        f"{'specialist':34} {'cohort':12} {'active':>6} {'contacted':>9} {'attempted':>9} {'not tried':>9} {'%':>6}"
    )
    lines.append(header + "  how contacted")
    rows = [(_who(report, sid), sid) for sid in report.specialist_ids()] + [("service total", None)]
    for label, sid in rows:
        for cohort in [None, *report.cohorts()]:
            t = report.tally(sid, cohort)
            if not t.active:
                continue
            how = ", ".join(f"{k} {t.by_kind[k]}" for k in CONTACT_KINDS)
            lines.append(
                f"{label:34} {cohort or 'all':12} {t.active:>6} {t.contacted:>9} {t.attempted:>9} "
                f"{t.not_attempted:>9} {t.percent:>6}  {how}"
            )
    if report.excluded:
        lines.append("Not counted: " + ", ".join(f"{k} {v}" for k, v in sorted(report.excluded.items())))
    if list_people:
        lines += ["", "Not reached this week:"]
        for person in report.not_reached():
            span = "" if person.weeks == 1 else f" (every {person.weeks} weeks)"
            lines.append(f"  {person.external_id} {_who(report, person.specialist_id)}: {person.outcome}{span}")
            for attempt in person.attempts:
                lines.append(f"    {attempt.at:%a %d %b %H:%M} UTC  {attempt.what}  {attempt.status}")
    return "\n".join(lines)


def contact_csv(report: WeeklyContact) -> str:
    """One row per specialist and cohort (and service totals), then one row per participant not
    reached, by id only, with their attempts."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "week_of",
            "specialist",
            "cohort",
            "active",
            "contacted",
            *CONTACT_KINDS,
            "attempted",
            "not_attempted",
            "percent",
        ]
    )
    for label, sid in [(_who(report, s), s) for s in report.specialist_ids()] + [("TOTAL", None)]:
        for cohort in [None, *report.cohorts()]:
            t = report.tally(sid, cohort)
            if t.active:
                kinds = [t.by_kind[k] for k in CONTACT_KINDS]
                row = [report.monday, cell(label), cohort or "all", t.active, t.contacted, *kinds]
                writer.writerow([*row, t.attempted, t.not_attempted, t.percent])
    writer.writerow([])
    writer.writerow(["week_of", "participant_id", "specialist", "cohort", "measured_over_weeks", "outcome", "attempts"])
    for person in report.not_reached():
        attempts = "; ".join(f"{a.at.isoformat()} {a.what} {a.status}" for a in person.attempts)
        writer.writerow(
            [
                report.monday,
                cell(person.external_id),
                cell(_who(report, person.specialist_id)),
                person.cohort,
                person.weeks,
                person.outcome,
                cell(attempts),
            ]
        )
    return out.getvalue()


def caps_text(rows: list[CapRow], cap: int) -> str:
    lines = [f"Caseloads against the cap ({cap} per full-time specialist, scaled by FTE)"]
    for row in rows:
        mark = "  OVER" if row.over else ""
        lines.append(f"{row.specialist.email:34} active {row.active:>4}  FTE {row.fte:<4}  cap {row.cap:>5}{mark}")
    return "\n".join(lines)


def _rate_text(rate: Rate) -> str:
    percent = f"{rate.percent}%" if rate.percent is not None else "-"
    return f"{rate.numerator}/{rate.denominator} ({percent})"


def outcomes_text(report: OutcomesReport) -> str:
    lines = [f"Outcomes, {report.start.isoformat()} to {report.end.isoformat()}"]
    for group in report.groups:
        title = "Service" if group.dimension == "all" else f"{group.dimension.replace('_', ' ')}: {group.value}"
        lines += ["", title]
        lines.append(f"  referrals: {NOT_RECORDED if group.referrals is None else group.referrals}")
        lines.append(f"  starts: {group.starts}")
        # Two-way contact (a reply, an attended appointment, a logged contact): the journey report's
        # "first contact" counts the first text that reached the provider, so the names differ too.
        two_way = "to first two-way contact (a reply, an appointment attended, a contact logged)"
        for name, values in ((two_way, group.days_to_first_contact), ("to start", group.days_to_start)):
            median = median_of(values)
            shown = (
                NOT_RECORDED
                if group.referrals is None
                else (f"median {median} days (n={len(values)})" if values else "none")
            )
            lines.append(f"  time {name}: {shown}")
        lines.append(
            f"  job starts (7+ hours a week): {NOT_RECORDED if group.job_starts is None else group.job_starts}"
        )
        for weeks in SUSTAIN_WEEKS:
            rate = group.sustained.get(weeks)
            lines.append(f"  sustained {weeks} weeks: {NOT_RECORDED if rate is None else _rate_text(rate)}")
        exits = ", ".join(f"{k} {v}" for k, v in sorted(group.exits.items())) or "none"
        lines.append(f"  exits by reason: {exits}")
        for scale in (*SCALES, COMBINED):
            rates = group.clinical[scale]
            lines.append(f"  {SCALE_NAMES[scale]}, paired: {rates['caseness_first'].denominator}")
            for measure in CLINICAL:
                lines.append(f"    {measure.replace('_', ' ')}: {_rate_text(rates[measure])}")
    lines += ["", ATTRIBUTION]
    return "\n".join(lines)


def _count(value: int | None) -> Any:
    if value is None:
        return NOT_RECORDED
    return SUPPRESSED if 0 < value < SMALL else value


def _rate_cells(rate: Rate) -> list[Any]:
    small = 0 < rate.numerator < SMALL or 0 < rate.denominator < SMALL
    return [
        _count(rate.numerator),
        _count(rate.denominator),
        SUPPRESSED if small else (rate.percent if rate.percent is not None else ""),
    ]


def outcomes_csv(report: OutcomesReport) -> str:
    """Long format: one row per group and measure, numerator, denominator and percent, small numbers suppressed."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["from", "to", "group", "value", "measure", "numerator", "denominator", "percent"])
    period = [report.start, report.end]
    for group in report.groups:
        key = [*period, group.dimension, cell(group.value)]
        writer.writerow([*key, "referrals", _count(group.referrals), "", ""])
        writer.writerow([*key, "starts", _count(group.starts), "", ""])
        for name, values in (
            ("median_days_to_first_contact", group.days_to_first_contact),
            ("median_days_to_start", group.days_to_start),
        ):
            median = median_of(values)
            shown = NOT_RECORDED if group.referrals is None else (SUPPRESSED if 0 < len(values) < SMALL else median)
            writer.writerow([*key, name, "" if shown is None else shown, _count(len(values)), ""])
        writer.writerow([*key, "job_starts_7_hours", _count(group.job_starts), "", ""])
        for weeks in SUSTAIN_WEEKS:
            rate = group.sustained.get(weeks)
            cells = [NOT_RECORDED, "", ""] if rate is None else _rate_cells(rate)
            writer.writerow([*key, f"sustained_{weeks}_weeks", *cells])
        for reason, n in sorted(group.exits.items()):
            writer.writerow([*key, f"exit:{cell(reason)}", _count(n), "", ""])
        for scale in (*SCALES, COMBINED):
            for measure in CLINICAL:
                writer.writerow([*key, f"{scale}:{measure}", *_rate_cells(group.clinical[scale][measure])])
    writer.writerow([])
    writer.writerow([ATTRIBUTION])
    return out.getvalue()
