"""Danger from another person: threats, violence and control are read as risk and marked as from
others, and the everyday way people speak of a cross relative is not."""

from __future__ import annotations

import pytest

from assistant.engine.understanding import Phrases, read
from assistant.engine.understanding.tokens import clauses_of

DANGER = [
    "my husband said if I go to the job centre again he'll kill me and I believe him",
    "he punched me last night and says he'll do it again if I leave",
    "cant speak hes in the next room. he checks my phone so dont reply",
    "the guys I owe money to said they'd break my legs if I don't pay by friday",
    "my dad took my passport, they want me to marry my cousin over the summer",
    "my ex keeps parking outside my flat every night, I'm scared to go out",
    "threatened me with a hammer this morning over nothing",
    "they've got videos of me and want £300 or they'll send them to my mum",
    "my brothers said they'll kill me if they find out I'm seeing a woman",
    "the tracking app on my phone was put there by him, he always knows where I am",
    "my boss holds all our passports and says we can't leave till the debt is paid",
    "my in laws say I've brought shame and my uncle is flying over to deal with me",
    "they took my shoes and my phone so I can't go out",
    "he's out on licence and nobody told me, I saw him at the shop",
    "he gave me a black eye last night",
    "can you ring and say you're the dentist if he picks up",
]

EVERYDAY = [
    "my mum will kill me if I forget her birthday again",
    "my gaffer will murder me if I'm late on Monday",
    "he used to hit me years ago but I've been safe in my own place for a long time now",
    "the taxi is outside my house now, see you at 10",
    "got my passport back so I can do the right to work check",
    "my mum will kill me if I'm late again",
    "my boyfriend will strangle me if I book another trip",
    "my family will kill me if they find out I spent the money on a PS5 lol",
    "my wife says it's a holiday so I'm not allowed to check my work emails",
    "sent the lads round to help with the move, legends",
    "I'm not allowed to work more than 16 hours or my UC stops",
    "I overdosed on sunshine at the beach, burnt to a crisp",
    "the boss holds all our passports for the right to work check, back on Friday",
    "she took my phone to fix the cracked screen",
    "my sister is flying over to take me to the wedding, can't wait",
    "he's sending his lads round to pick up the sofa",
    "got a black eye at boxing last night, my own fault. see you tuesday",
]


@pytest.mark.parametrize("text", DANGER)
def test_danger_from_another_person_is_risk_from_others(phrases: Phrases, text: str) -> None:
    reading = read(text, phrases)
    assert reading.has("risk") and reading.from_others, reading


@pytest.mark.parametrize("text", EVERYDAY)
def test_everyday_talk_of_others_is_not_danger(phrases: Phrases, text: str) -> None:
    assert not read(text, phrases).has("risk"), read(text, phrases)


def test_danger_beside_risk_to_self_is_not_only_from_others(phrases: Phrases) -> None:
    reading = read("he said he'll break my legs. honestly I just want to die", phrases)
    assert reading.has("risk") and not reading.from_others


@pytest.mark.parametrize(
    ("text", "read_as"),
    [
        ("he said he'd end me", "he said he would end me"),
        ("she’d taken all her tablets", "she had taken all her tablets"),
        ("my hed is killing me", "my head is killing me"),
    ],
)
def test_he_d_is_would_or_had_by_the_word_after_it(phrases: Phrases, text: str, read_as: str) -> None:
    assert [" ".join(t.word for t in clause) for clause in clauses_of(phrases, text)] == [read_as]
