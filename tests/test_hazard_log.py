"""The clinical safety hazard log (docs/clinical-safety/hazard-log.md) is kept honest by the suite.

Every test the log names as evidence exists (the file, and a test function of that name in it;
a golden conversation, its script); every hazard has its cause, effect, harm, controls, risk
ratings and status; each control has evidence or says it has none; a hazard with no tested
control is "open" and has no evidence section; ids are unique and in order; and every risk
rating, in the sections and in the summary table, follows the DCB0129 matrix the log prints.
The last tests break a copy of the real log in each of those ways and check the checks notice.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / "docs" / "clinical-safety" / "hazard-log.md"

SEVERITIES = ("minor", "significant", "considerable", "major", "catastrophic")
# The standard DCB0129 risk matrix: the rating for each likelihood, by severity as above.
MATRIX = {
    "very high": (3, 4, 4, 5, 5),
    "high": (2, 3, 3, 4, 5),
    "medium": (2, 2, 3, 3, 4),
    "low": (1, 2, 2, 3, 4),
    "very low": (1, 1, 2, 2, 3),
}
STATUSES = ("controlled", "partially controlled", "open")
EVIDENCE = "Evidence"
REQUIRED = (
    "Cause(s)",
    "Effect",
    "Possible harm",
    "Initial risk",
    "Controls in the design and code",
    "Residual risk",
    "Status",
    "Owner and notes",
)
UNTESTED = "*No test yet.*"
# Each hazard the log must keep (a fragment of its title): taking one out needs a change here too.
MUST_COVER = (
    "Missed risk text",
    "False alarm",
    "PHQ-9 item 9",
    "unknown number",
    "wrong person",
    "Lock-screen disclosure",
    "Pressure or conditionality",
    "Lost inbound text or lost reply",
    "Duplicate send",
    "stuck send",
    "unreachable mark, an opt-out",
    "Broken template or unknown locale",
    "Alert at night",
    "Alert to nobody",
    "Alert flood",
    "Routine contact while in crisis",
    "request to stop",
    "cancellation lost",
    "scheduler stops on one bad row",
    "Discharge by the software",
    "reveals what the participant wrote",
    "private questionnaire page",
    "missed appointment followed up by nobody",
    "per-person reply rhythm",
)

HAZARD = re.compile(r"^## (HAZ-\d{3}): (.+)$", re.MULTILINE)
FIELD = re.compile(r"^\*\*([^*\n]+?)\.\*\*", re.MULTILINE)
ITEM = re.compile(r"^- \*\*(C\d+)\.\*\*", re.MULTILINE)
RISK = re.compile(r"Severity: ([a-z ]+)\. Likelihood: ([a-z ]+)\. Risk: (\d)\.")
MATRIX_ROW = re.compile(r"^\| ([a-z ]+) \| (\d) \| (\d) \| (\d) \| (\d) \| (\d) \|$", re.MULTILINE)
SUMMARY_ROW = re.compile(r"^\| (HAZ-\d{3}) \| .+? \| (\d) \| (\d) \| ([a-z ]+) \|$", re.MULTILINE)
CITED_TEST = re.compile(r"`(tests/[\w/.-]+\.py)::(\w+)`")
CITED_GOLDEN = re.compile(r"`(tests/conversations/[\w-]+\.toml)`")
ANY_TESTS_PATH = re.compile(r"`(tests/[^`]*)`")


@dataclass
class Hazard:
    id: str
    title: str
    fields: dict[str, str] = field(default_factory=dict)
    controls: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return " ".join(self.fields.get("Status", "").split())


def _blocks(pattern: re.Pattern[str], text: str) -> list[tuple[str, str]]:
    """Each match of `pattern` (its first group) with the text up to the next match."""
    marks = list(pattern.finditer(text))
    ends = [m.start() for m in marks[1:]] + [len(text)]
    return [(mark.group(1), text[mark.end() : end]) for mark, end in zip(marks, ends[: len(marks)], strict=True)]


def _items(hazard: Hazard, name: str) -> dict[str, str]:
    """The `- **C1.** ...` items of one field, by control id."""
    found: dict[str, str] = {}
    for control, words in _blocks(ITEM, hazard.fields.get(name, "")):
        if control in found:
            hazard.problems.append(f"{hazard.id}: {control} twice under {name}")
        found[control] = words
    return found


def parse(text: str) -> tuple[str, list[Hazard]]:
    """The header (everything before the first hazard) and each hazard section, with its fields."""
    parts = HAZARD.split(text)
    hazards = []
    for hazard_id, title, body in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
        hazard = Hazard(hazard_id, title.strip())
        for name, words in _blocks(FIELD, body):
            if name not in (*REQUIRED, EVIDENCE):
                hazard.problems.append(f"{hazard_id}: unknown field {name!r}")
            elif name in hazard.fields:
                hazard.problems.append(f"{hazard_id}: field {name!r} twice")
            hazard.fields[name] = words.strip()
        hazard.controls = _items(hazard, "Controls in the design and code")
        hazard.evidence = _items(hazard, EVIDENCE)
        hazards.append(hazard)
    return parts[0], hazards


def _rating(hazard: Hazard, name: str) -> tuple[int | None, list[str]]:
    text = " ".join(hazard.fields.get(name, "").split())
    found = RISK.fullmatch(text)
    if found is None:
        return None, [f"{hazard.id}: {name} should read 'Severity: s. Likelihood: l. Risk: n.', not {text!r}"]
    severity, likelihood, rating = found.group(1), found.group(2), int(found.group(3))
    if severity not in SEVERITIES or likelihood not in MATRIX:
        return None, [f"{hazard.id}: {name}: unknown severity {severity!r} or likelihood {likelihood!r}"]
    expected = MATRIX[likelihood][SEVERITIES.index(severity)]
    if rating != expected:
        return rating, [f"{hazard.id}: {name}: {severity} and {likelihood} is risk {expected}, not {rating}"]
    return rating, []


def hazard_problems(text: str) -> list[str]:
    """Each hazard has its parts; each control its evidence or '*No test yet.*'; the status fits."""
    _header, hazards = parse(text)
    problems: list[str] = []
    if not hazards:
        return ["no hazard sections ('## HAZ-001: title')"]
    ids = [h.id for h in hazards]
    if len(set(ids)) != len(ids):
        problems.append(f"hazard ids used twice: {sorted({i for i in ids if ids.count(i) > 1})}")
    if ids != sorted(ids):
        problems.append(f"hazard ids out of order: {ids}")
    for hazard in hazards:
        problems += hazard.problems
        problems += [f"{hazard.id}: no {name!r}" for name in REQUIRED if not hazard.fields.get(name)]
        if hazard.status not in STATUSES:
            problems.append(f"{hazard.id}: status {hazard.status!r} is not one of {STATUSES}")
        if not hazard.controls:
            problems.append(f"{hazard.id}: no controls ('- **C1.** ...')")
        if hazard.status == "open" and EVIDENCE in hazard.fields:
            problems.append(f"{hazard.id}: an open hazard has an evidence section (its controls are all untested)")
        if hazard.status != "open" and not hazard.evidence:
            problems.append(f"{hazard.id}: no evidence: a hazard with no tested control is 'open'")
        untested = [c for c, words in hazard.controls.items() if UNTESTED in words]
        for control in hazard.controls:
            if control in untested and control in hazard.evidence:
                problems.append(f"{hazard.id}: {control} says {UNTESTED} but has evidence")
            if control not in untested and control not in hazard.evidence:
                problems.append(f"{hazard.id}: {control} has no evidence (or say {UNTESTED})")
        for control, words in hazard.evidence.items():
            if control not in hazard.controls:
                problems.append(f"{hazard.id}: evidence for {control}, which is not a control")
            if not (CITED_TEST.search(words) or CITED_GOLDEN.search(words)):
                problems.append(f"{hazard.id}: the evidence for {control} names no test")
        if hazard.status == "controlled" and untested:
            problems.append(f"{hazard.id}: 'controlled' with untested controls {untested}")
        initial, wrong = _rating(hazard, "Initial risk")
        residual, more = _rating(hazard, "Residual risk")
        problems += wrong + more
        if initial is not None and residual is not None and residual > initial:
            problems.append(f"{hazard.id}: residual risk {residual} is above the initial {initial}")
    return problems


def matrix_problems(text: str) -> list[str]:
    """The matrix the log prints is the DCB0129 one, and the summary table agrees with the sections."""
    header, hazards = parse(text)
    problems: list[str] = []
    printed = {m.group(1): tuple(int(m.group(n)) for n in range(2, 7)) for m in MATRIX_ROW.finditer(header)}
    if printed != MATRIX:
        problems.append(f"the printed risk matrix {printed} is not the DCB0129 matrix {MATRIX}")
    summary = {m.group(1): (int(m.group(2)), int(m.group(3)), m.group(4)) for m in SUMMARY_ROW.finditer(header)}
    for hazard in hazards:
        initial, _ = _rating(hazard, "Initial risk")
        residual, _ = _rating(hazard, "Residual risk")
        if summary.get(hazard.id) != (initial, residual, hazard.status):
            problems.append(
                f"{hazard.id}: the summary table says {summary.get(hazard.id)}, "
                f"the section says {(initial, residual, hazard.status)}"
            )
    problems += [f"{i}: in the summary table but has no section" for i in set(summary) - {h.id for h in hazards}]
    return problems


@cache
def _test_functions(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
    )


def hazard_sections(text: str) -> str:
    """The log from its first hazard on (the header's examples of citations are not citations)."""
    first = HAZARD.search(text)
    return text[first.start() :] if first else ""


def citation_problems(text: str, root: Path) -> list[str]:
    """Every test the hazard sections name exists: the file, and a test of that name in it."""
    sections = hazard_sections(text)
    problems: list[str] = []
    tests = CITED_TEST.findall(sections)
    goldens = CITED_GOLDEN.findall(sections)
    well_formed = {f"{path}::{name}" for path, name in tests} | set(goldens)
    for token in ANY_TESTS_PATH.findall(sections):
        if token not in well_formed:
            problems.append(f"`{token}`: not `tests/path.py::test_name` or `tests/conversations/name.toml`")
    for path, name in sorted(set(tests)):
        file = root / path
        if ".." in Path(path).parts or not file.is_file():
            problems.append(f"{path}::{name}: there is no {path}")
        elif name not in _test_functions(file):
            problems.append(f"{path}::{name}: {path} defines no test {name}")
    for path in sorted(set(goldens)):
        file = root / path
        if not file.is_file():
            problems.append(f"{path}: there is no such golden conversation")
        elif not tomllib.loads(file.read_text(encoding="utf-8")).get("step"):
            problems.append(f"{path}: has no steps for tests/conversations/test_golden.py to run")
    return problems


@pytest.fixture(scope="module")
def log_text() -> str:
    return LOG.read_text(encoding="utf-8")


def test_every_test_the_log_names_exists(log_text: str) -> None:
    sections = hazard_sections(log_text)
    assert len(CITED_TEST.findall(sections)) > 50 and len(CITED_GOLDEN.findall(sections)) > 20
    problems = citation_problems(log_text, ROOT)
    assert not problems, "\n".join(problems)


def test_every_hazard_has_its_parts_and_each_control_its_evidence(log_text: str) -> None:
    problems = hazard_problems(log_text)
    assert not problems, "\n".join(problems)


def test_every_risk_rating_follows_the_matrix_and_the_summary_agrees(log_text: str) -> None:
    problems = matrix_problems(log_text)
    assert not problems, "\n".join(problems)


def test_the_log_keeps_the_hazards_it_must_cover_and_names_its_safety_officer(log_text: str) -> None:
    _header, hazards = parse(log_text)
    titles = [h.title for h in hazards]
    missing = [fragment for fragment in MUST_COVER if not any(fragment in title for title in titles)]
    assert not missing, f"no hazard titled with: {missing}"
    assert "Clinical safety officer: to be named by the deploying organisation (DCB0160)" in log_text


# --- the checks themselves: each must notice a log broken in its way -------------------------------


def _break(text: str, old: str, new: str) -> str:
    assert old in text, f"{old!r} is not in the log: pick another place to break it"
    return text.replace(old, new, 1)


def _set_status(text: str, hazard_id: str, old: str, new: str) -> str:
    """The log with one hazard's status changed (the first status after its heading is its own)."""
    before, heading, after = text.partition(f"## {hazard_id}:")
    return before + heading + _break(after, f"**Status.** {old}", f"**Status.** {new}")


def _new(check: Callable[[str], list[str]], broken: str, original: str) -> set[str]:
    """What the check finds in the broken log that it does not find in the log as it is."""
    return set(check(broken)) - set(check(original))


def test_a_missing_test_function_file_or_golden_conversation_is_caught(log_text: str, tmp_path: Path) -> None:
    def cites(text: str) -> list[str]:
        return citation_problems(text, ROOT)

    path, name = CITED_TEST.findall(hazard_sections(log_text))[0]
    renamed = _break(log_text, f"`{path}::{name}`", f"`{path}::{name}_renamed`")
    assert _new(cites, renamed, log_text) == {f"{path}::{name}_renamed: {path} defines no test {name}_renamed"}
    moved = _break(log_text, f"`{path}::{name}`", f"`tests/no_such_file.py::{name}`")
    assert _new(cites, moved, log_text) == {f"tests/no_such_file.py::{name}: there is no tests/no_such_file.py"}
    golden = CITED_GOLDEN.findall(hazard_sections(log_text))[0]
    gone = _break(log_text, f"`{golden}`", "`tests/conversations/no_such_script.toml`")
    assert _new(cites, gone, log_text) == {
        "tests/conversations/no_such_script.toml: there is no such golden conversation"
    }
    bracketed = _break(log_text, f"`{path}::{name}`", f"`{path}::{name}[1]`")
    assert _new(cites, bracketed, log_text) == {
        f"`{path}::{name}[1]`: not `tests/path.py::test_name` or `tests/conversations/name.toml`"
    }
    # A function that is not a test is not evidence, even when the file defines it.
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def make_rows() -> None: ...\n\n\ndef test_y() -> None: ...\n")
    cited = "## HAZ-001: x\n- **C1.** `tests/test_x.py::make_rows`, `tests/test_x.py::test_y`\n"
    assert citation_problems(cited, tmp_path) == [
        "tests/test_x.py::make_rows: tests/test_x.py defines no test make_rows"
    ]


def test_a_hazard_missing_a_part_or_evidence_is_caught(log_text: str) -> None:
    first = parse(log_text)[1][0].id
    no_cause = _break(log_text, "**Cause(s).**", "Causes:")
    assert _new(hazard_problems, no_cause, log_text) == {f"{first}: no 'Cause(s)'"}
    no_effect = _break(log_text, "**Effect.**", "Effect:")
    assert _new(hazard_problems, no_effect, log_text) == {f"{first}: no 'Effect'"}
    # Evidence filed under a control that does not exist: the real control is left without any.
    last = max(parse(log_text)[1][0].evidence, key=lambda control: int(control[1:]))
    misfiled = _break(log_text, f"- **{last}.** `tests/", "- **C99.** `tests/")
    assert _new(hazard_problems, misfiled, log_text) == {
        f"{first}: {last} has no evidence (or say *No test yet.*)",
        f"{first}: evidence for C99, which is not a control",
    }
    # A control said to be untested that has evidence, in a hazard called controlled.
    _header, hazards = parse(log_text)
    tested = next(h for h in hazards if h.status == "controlled")
    before, heading, after = log_text.partition(f"## {tested.id}:")
    said_untested = before + heading + _break(after, "- **C1.**", f"- **C1.** {UNTESTED}")
    assert _new(hazard_problems, said_untested, log_text) == {
        f"{tested.id}: C1 says {UNTESTED} but has evidence",
        f"{tested.id}: 'controlled' with untested controls ['C1']",
    }
    # An open hazard called controlled has no evidence; a tested one called open has some.
    opened = next((h for h in hazards if h.status == "open"), None)
    if opened is not None:
        closed, target = _set_status(log_text, opened.id, "open", "controlled"), opened.id
    else:  # every hazard is controlled today: take one's evidence away instead
        before, heading, after = log_text.partition(f"## {tested.id}:")
        start, end = after.index("**Evidence.**"), after.index("**Residual risk.**")
        closed, target = before + heading + after[:start] + after[end:], tested.id
    assert f"{target}: no evidence: a hazard with no tested control is 'open'" in _new(
        hazard_problems, closed, log_text
    )
    reopened = _set_status(log_text, tested.id, "controlled", "open")
    assert _new(hazard_problems, reopened, log_text) == {
        f"{tested.id}: an open hazard has an evidence section (its controls are all untested)"
    }


def test_a_repeated_id_or_a_wrong_rating_is_caught(log_text: str) -> None:
    _header, hazards = parse(log_text)
    repeated = _break(log_text, f"## {hazards[1].id}:", f"## {hazards[0].id}:")
    assert f"hazard ids used twice: ['{hazards[0].id}']" in _new(hazard_problems, repeated, log_text)
    initial = " ".join(hazards[0].fields["Initial risk"].split())
    rating = int(initial[-2])
    wrong = _break(log_text, initial, initial[:-2] + f"{rating % 5 + 1}.")
    assert [p for p in _new(hazard_problems, wrong, log_text) if "Initial risk" in p]
    assert [p for p in _new(matrix_problems, wrong, log_text) if p.startswith(f"{hazards[0].id}: the summary")]
    row = "| high | 2 | 3 | 3 | 4 | 5 |"
    assert _new(matrix_problems, _break(log_text, row, "| high | 2 | 3 | 3 | 3 | 5 |"), log_text)
