"""Wording is checked like code: strict rendering, GSM-7, segment budgets, no lock-screen giveaways."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from assistant.config import ROOT
from assistant.content.library import CRISIS_FALLBACK, Catalog
from assistant.content.wording import lock_screen_words, pressure_phrases
from assistant.db.service_settings import NATIONS
from assistant.engine import is_gsm7, segment_count

MESSAGES = ROOT / "messages"
CATALOG = Catalog(MESSAGES)
TEMPLATES = sorted(MESSAGES.rglob("*.txt"))
BUDGETS = tomllib.loads((MESSAGES / "budgets.toml").read_text())
SAMPLES = tomllib.loads((MESSAGES / "samples.toml").read_text())
# 12-character names: the longest the budgets promise to fit.
NAMES = {"first_name": "Christabella", "specialist_name": "Maximilianus"}


def _key(path: Path) -> tuple[str, str]:
    locale, *rest = path.relative_to(MESSAGES).with_suffix("").parts
    return locale, "/".join(rest)


def _cases() -> list[tuple[Path, dict[str, object]]]:
    cases = []
    for path in TEMPLATES:
        for extra in SAMPLES.get(_key(path)[1], {}).get("cases", [{}]):
            cases.append((path, NAMES | extra))
    return cases


@pytest.mark.parametrize(
    ("path", "variables"), _cases(), ids=lambda v: str(v.relative_to(MESSAGES)) if isinstance(v, Path) else ""
)
def test_template_renders_strictly_in_gsm7_within_budget(path: Path, variables: dict[str, object]) -> None:
    locale, key = _key(path)
    text = CATALOG.render(key, variables, locale)
    assert text.strip(), "renders to nothing"
    odd = sorted({c for c in text if not is_gsm7(c)})
    assert not odd, f"non-GSM-7 characters {odd!r} would make this UCS-2"
    budget = 1 if key in BUDGETS["one_segment"]["keys"] else BUDGETS["default"]
    if key in BUDGETS["three_segments"]["keys"]:
        budget = 3
    assert segment_count(text) <= budget, f"{segment_count(text)} segments, budget {budget}: {len(text)} chars"
    if key not in BUDGETS["lock_screen_exempt"]["keys"]:
        assert lock_screen_words(text) == [], "would show on a lock screen"


def test_samples_name_real_templates() -> None:
    keys = {_key(p)[1] for p in TEMPLATES}
    assert set(SAMPLES) <= keys


WITH_VARIABLES = [p for p in TEMPLATES if "{{" in p.read_text(encoding="utf-8")]


@pytest.mark.parametrize("path", WITH_VARIABLES, ids=lambda p: str(p.relative_to(MESSAGES)))
def test_template_refuses_missing_variables(path: Path) -> None:
    locale, key = _key(path)
    with pytest.raises(UndefinedError):
        CATALOG.render(key, {}, locale)


def test_budget_list_names_real_templates() -> None:
    keys = {_key(p)[1] for p in TEMPLATES}
    for group in ("one_segment", "three_segments", "lock_screen_exempt"):
        assert set(BUDGETS[group]["keys"]) <= keys, group


# Each nation's own urgent-help line, and what belongs to the other nations only.
NATION_SIGNPOSTS = {
    "england": (["NHS 111 and choose the mental health option"], ["NHS 24", "Breathing Space", "Lifeline", "Wales"]),
    "wales": (["NHS 111 Wales and press 2 for mental health"], ["NHS 24", "Breathing Space", "Lifeline"]),
    "scotland": (["NHS 24 on 111", "Breathing Space on 0800 83 85 87"], ["NHS 111", "Lifeline", "Wales"]),
    "northern_ireland": (["Lifeline on 0808 808 8000"], ["111", "NHS 24", "Breathing Space", "Wales"]),
}
UK_WIDE = ["999", "A&E", "Samaritans free on 116 123", "SHOUT to 85258", "not watched around the clock"]


@pytest.mark.parametrize("nation", NATIONS)
def test_crisis_signposting_gives_the_nations_own_numbers(nation: str) -> None:
    text = CATALOG.render("common/crisis", NAMES | {"nation": nation})
    own, others = NATION_SIGNPOSTS[nation]
    for must in UK_WIDE + own:
        assert must in text, must
    for must_not in others:
        assert must_not not in text, must_not


def test_crisis_signposting_needs_the_nation() -> None:
    with pytest.raises(UndefinedError):
        CATALOG.render("common/crisis", NAMES)


def test_every_nation_is_rendered_by_the_message_checks() -> None:
    assert {case["nation"] for case in SAMPLES["common/crisis"]["cases"]} == set(NATIONS)


def test_checkin_prompt_offers_choices_free_text_and_a_call() -> None:
    text = CATALOG.render("checkin/ask_week", NAMES)
    assert "1" in text and "2" in text and "3" in text
    assert "own words" in text and "CALL" in text
    assert "Maximilianus" in text  # in the specialist's voice


def test_help_says_replying_is_up_to_them() -> None:
    # "Do I have to reply?" and "will my benefits be affected?" are answered by HELP: taking part is voluntary.
    text = CATALOG.render("common/help", NAMES)
    assert "up to you" in text and "116 123" in text


def test_participant_text_is_never_treated_as_template_code() -> None:
    text = CATALOG.render("checkin/ask_week", {"first_name": "{{ 7*7 }}{% raw %}", "specialist_name": "Sam"})
    assert "{{ 7*7 }}{% raw %}" in text and "49" not in text


def test_segment_counting() -> None:
    assert segment_count("a" * 160) == 1
    assert segment_count("a" * 161) == 2
    assert segment_count("a" * 306) == 2 and segment_count("a" * 307) == 3
    assert segment_count("€" * 80) == 1 and segment_count("€" * 81) == 2  # extension table: two septets
    assert segment_count("’" + "a" * 69) == 1 and segment_count("’" + "a" * 70) == 2  # UCS-2
    assert segment_count("😊" * 35) == 1 and segment_count("😊" * 36) == 2


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(MESSAGES)))
def test_no_template_reads_like_pressure_or_a_condition(path: Path) -> None:
    assert pressure_phrases(path.read_text(encoding="utf-8")) == []


def test_the_fixed_crisis_text_is_complete_plain_and_short() -> None:
    for must in ("999", "A&E", "NHS 111", "Samaritans", "116 123", "SHOUT to 85258", "not watched around the clock"):
        assert must in CRISIS_FALLBACK, must
    assert is_gsm7(CRISIS_FALLBACK)
    assert segment_count(CRISIS_FALLBACK) <= 3
    assert pressure_phrases(CRISIS_FALLBACK) == []


def test_an_unknown_locale_or_a_broken_template_falls_back_to_en_gb(tmp_path: Path) -> None:
    copy = tmp_path / "messages"
    shutil.copytree(MESSAGES, copy)
    welsh = copy / "cy-GB" / "common"
    welsh.mkdir(parents=True)
    (welsh / "help.txt").write_text("{{ first_name }} {% if %}", encoding="utf-8")  # does not even parse
    (welsh / "call_ack.txt").write_text("Diolch {{ first_name }}", encoding="utf-8")
    catalog = Catalog(copy)
    english = CATALOG.render("common/help", NAMES)
    assert catalog.render("common/help", NAMES, "cy-GB") == english
    assert catalog.render("common/call_ack", NAMES, "cy-GB") == "Diolch Christabella"
    assert catalog.render("common/free_text_ack", NAMES, "cy-GB") == CATALOG.render("common/free_text_ack", NAMES)
    for unknown in ("fr", "en-GB/../en-GB", "../cy-GB", "", "common"):
        assert catalog.render("common/help", NAMES, unknown) == english, unknown


def test_the_neutral_signature_takes_a_capital_only_where_it_starts_a_sentence() -> None:
    """With no specialist to name (or one who has left), texts are signed "the team"."""
    names = {"first_name": "Alex", "specialist_name": "the team", "nation": "england"}
    assert CATALOG.render("checkin/thanks_good", names).endswith("Thanks for letting me know. The team")
    assert "saved for the team, who reads" in CATALOG.render("checkin/thanks_free_text", names)
    assert CATALOG.render("common/crisis", names).endswith("The team will be in touch.")


def test_the_welcome_says_every_week_not_every_1_week() -> None:
    names = {"first_name": "Alex", "specialist_name": "Sam", "service_name": "IPS", "nation": "england"}
    assert "I'll text every week to see" in CATALOG.render("journey/welcome", names | {"every_weeks": 1})
    assert "I'll text every 4 weeks to see" in CATALOG.render("journey/welcome", names | {"every_weeks": 4})
