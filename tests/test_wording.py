"""The one lock-screen and pressure checker: word forms, whole words only, and where it is used."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant.config import ROOT
from assistant.content.library import Catalog, FlowLibrary
from assistant.content.wording import discreet, lock_screen_words, pressure_phrases
from assistant.engine import FlowError

LIBRARY = FlowLibrary(ROOT / "flows", Catalog(ROOT / "messages"))


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Feeling down, depressed, or hopeless", ["depressed", "hopeless"]),
        ("Feeling nervous, anxious or on edge", ["anxious"]),
        ("Thoughts that you would be better off dead or of hurting yourself in some way", ["dead", "hurting yourself"]),
        ("I feel suicidal", ["suicidal"]),
        ("Any self-harm lately?", ["self-harm"]),
        ("no wish to harm anyone", ["harm"]),
        ("Your depression and ANXIETY scores", ["depression", "anxiety"]),
        ("Your PHQ-9 and GAD 7 today", ["phq-9", "gad 7"]),
        ("The phq9 and the WSAS", ["phq9", "wsas"]),
        ("See your therapist, or talking therapies", ["therapist", "therapies"]),
        ("mental health team", ["mental health"]),
        ("mental-health support", ["mental-health"]),
        ("Depressing news: he died", ["depressing", "died"]),
        ("Your benefits may be sanctioned", ["benefits", "sanctioned"]),
        ("Diagnosed with a panic attack disorder", ["diagnosed", "panic attack", "disorder"]),
        ("It\u2019s about your counselling", ["counselling"]),
    ],
)
def test_giveaways_are_caught_in_their_word_forms(text: str, found: list[str]) -> None:
    assert lock_screen_words(text) == found
    assert not discreet(text)


@pytest.mark.parametrize(
    "text",
    [
        "The deadline for the CV is Friday",
        "Bring your skills list",
        "A harmless question",
        "Charge your gadget before the call",
        "Have you got a few minutes for 16 quick questions about how you've been lately?",
        "Little interest or pleasure in doing things",
        "Trouble relaxing",
        "The dietician is in at 10",
        "Pharmacy opens at 9",
        "A beneficial chat",
    ],
)
def test_ordinary_words_that_share_letters_pass(text: str) -> None:
    assert lock_screen_words(text) == []
    assert discreet(text)


def test_each_word_is_reported_once_in_the_order_it_appears() -> None:
    assert lock_screen_words("Anxious? anxious. Dead, DEAD") == ["anxious", "dead"]


def test_the_questionnaire_items_that_cannot_go_by_text_unasked() -> None:
    """Checked when the content loads: the items the checker stops are the ones a reviewer expects."""
    instruments = LIBRARY.instruments
    assert LIBRARY.private_items(instruments["phq9"]) == [2, 9]
    assert LIBRARY.private_items(instruments["gad7"]) == [1]
    assert LIBRARY.private_items(instruments["wsas"]) == []
    for ids, offered in ((["phq9"], True), (["gad7"], True), (["wsas"], False), (["wsas", "gad7"], True)):
        flow = LIBRARY.questionnaire(ids)
        assert flow.nodes["intro"].vars["offer_link"] is offered, ids
        assert ("by_link" in flow.nodes) is offered, ids


def test_a_template_with_a_giveaway_stops_the_content_loading(tmp_path: Path) -> None:
    copy = tmp_path / "messages"
    shutil.copytree(ROOT / "messages", copy)
    (copy / "en-GB" / "common" / "help.txt").write_text(
        "{# depression is fine in a comment #}Hi {{ first_name }}, how is the anxiety?", encoding="utf-8"
    )
    with pytest.raises(FlowError, match=r"en-GB/common/help.txt: anxiety"):
        Catalog(copy)
    # Its own wording only: a comment or a variable's name is not what the phone shows.
    (copy / "en-GB" / "common" / "help.txt").write_text(
        "{# depression is fine in a comment #}Hi {{ first_name }}{% if died %}.{% endif %}", encoding="utf-8"
    )
    assert Catalog(copy).lock_screen_problems() == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("If you don't reply your Universal Credit could be sanctioned", ["if you don't reply", "be sanctioned"]),
        ("Please reply: we will tell your work coach if you do not", ["we will tell your work coach"]),
        ("You have to attend on Monday", ["you have to attend"]),
        ("Your place could be taken off the list", ["your place could be taken off"]),
        ("If you fail to turn up you may lose your place", ["if you fail to turn up", "lose your"]),
    ],
)
def test_pressure_is_caught_in_its_forms(text: str, found: list[str]) -> None:
    assert pressure_phrases(text) == found


@pytest.mark.parametrize(
    "text",
    [
        "You don't have to reply, but I'm here if you want to talk",
        "No need to reply. Sam",
        "Reply STOP to stop these texts",
        "Would you like a call? Reply YES or NO",
        "The office will be closed on Monday, so Sam will ring instead",
        "Trains may be affected by the strike: leave a bit earlier",
    ],
)
def test_reassurance_and_choices_are_not_pressure(text: str) -> None:
    assert pressure_phrases(text) == []
