"""The reader on its own: every signal in a text, the words behind each, and how people text."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from assistant.content.library import Catalog, FlowLibrary, PhraseLibrary, check_numbered_reading
from assistant.engine.flow import FlowError, Question
from assistant.engine.understanding import Phrases, compile_phrases, read
from assistant.engine.understanding.tokens import clauses_of

from .conftest import ROOT


def _question(flow_id: str, node: str) -> Question:
    flow = FlowLibrary(ROOT / "flows", Catalog(ROOT / "messages")).get(flow_id)
    assert flow is not None
    question = flow.nodes[node].ask
    assert question is not None
    return question


def test_one_text_can_carry_several_signals_and_none_is_dropped(phrases: Phrases) -> None:
    reading = read("sorry can't go on Friday, can you ring me", phrases)
    assert set(reading.kinds()) == {"cancel", "call"}
    assert not reading.has("risk")  # "can't go on Friday" is a cancellation, never a crisis
    assert reading.words("cancel") == ["cant go on friday"]
    assert reading.words("call") == ["can you ring me"]


def test_a_crisis_that_also_asks_for_a_call_keeps_both(phrases: Phrases) -> None:
    reading = read("call me asap ive taken loads of pills", phrases)
    assert reading.has("risk") and reading.has("call")


@pytest.mark.parametrize(
    "text",
    [
        "if im not about next week dont take it personal",
        "call me pls im not safe",
        "im not coping",
        "i'm not here much longer",
        "my sister moved out, she doesnt live here anymore",
        "I'm not on any course at the moment",
        "its her phone im texting from, mine broke",
    ],
)
def test_how_someone_is_after_im_not_is_not_a_wrong_number(phrases: Phrases, text: str) -> None:
    # A wrong number pauses the texts to it: never read it in how someone says they are.
    assert not read(text, phrases).has("wrong_person")


def test_im_not_and_a_name_is_a_wrong_number(phrases: Phrases) -> None:
    assert read("who is this? im not sam", phrases).has("wrong_person")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("I want to kill myself", "kill myself"),
        ("ive been SELF-HARMING again", "self harming"),
        ("wanna dieeeee", "wanna dieeeee"),  # held letters
        ("kms", "kms"),  # text-speak
        ("im feeling suicdal", "suicdal"),  # a misspelling of a longer word
        ("feeling sooisidal", "sooisidal"),  # spelt as it sounds
        ("su1c1dal thoughts", "suicidal"),  # letters written as numbers
        ("everyone would be better off without me", "better off without me"),
        ("Took 16 paracetamol yesterday", "took 16 paracetamol"),
        ("this is goodbye", "goodbye"),
    ],
)
def test_risk_is_read_however_it_is_written_and_says_why(phrases: Phrases, text: str, words: str) -> None:
    signal = read(text, phrases).first("risk")
    assert signal is not None, text
    assert words in signal.words, signal


@pytest.mark.parametrize(
    ("text", "because"),
    [
        ("im not suicidal just tired", "negated"),
        ("no thoughts of hurting myself at all", "negated"),
        ("my mum took an overdose years ago", "someone else"),
        ("my mate self harms and i worry about her", "someone else"),
        ("i used to self harm as a teen but im good now", "in the past"),
        ("cut myself chopping onions lol", "idiom"),
        ("nearly killed myself laughing", "idiom"),
    ],
)
def test_what_is_set_aside_is_set_aside_for_a_reason(phrases: Phrases, text: str, because: str) -> None:
    reading = read(text, phrases)
    assert not reading.has("risk"), reading.signals
    assert because in {h.because for h in reading.held_back if h.kind == "risk"}


@pytest.mark.parametrize(
    "text",
    [
        "i used to self harm and ive started again",  # the past, but it is back
        "i cant sleep and i want to die",  # a denial of sleep is not a denial of the rest
        "im not ok, i want to end it",
        "my mum died last year and i want to be with her",
        # A pattern's "ill" is "I'll": the writer's own words, though "the kids" come first.
        "the kids are at their mums this weekend which is when ill do it",
        # "for good" says a goodbye is now, not the past that "good now" would be.
        "signing off for good now. been a pleasure",
    ],
)
def test_what_only_looks_set_aside_is_still_risk(phrases: Phrases, text: str) -> None:
    reading = read(text, phrases)
    assert reading.has("risk"), text


@pytest.mark.parametrize(
    ("about_them", "from_someone_else"),
    [
        ("she says she wants to die", "its her sister on her phone, she says she wants to die"),
        ("he has been talking about ending it", "this is his dad, he has been talking about ending it"),
        ("she tried to hang herself once", "your client jess, she tried to hang herself once"),
        ("he has cut himself badly", "i am his partner, he has cut himself badly. can someone check on him"),
        ("he keeps saying he wants to die", "mum of liam here. he keeps saying he wants to die"),
        ("he has burned himself again", "writing on behalf of my brother, he has burned himself again"),
        ("he overdosed on his tablets", "partner of dean. he overdosed on his tablets, what do we do"),
        ("she has cut herself badly", "my daughter uses this phone for your service. she has cut herself badly"),
    ],
)
def test_someone_texting_about_the_person_is_not_someone_else(
    phrases: Phrases, about_them: str, from_someone_else: str
) -> None:
    """A text about another person is set aside as "someone else"; the same words from a writer who
    says they are texting about the person the service supports are risk: the person is them."""
    alone = read(about_them, phrases)
    assert not alone.has("risk") and "someone else" in {h.because for h in alone.held_back}, alone
    told = read(from_someone_else, phrases)
    assert told.has("risk") and told.by_someone_else, from_someone_else


@pytest.mark.parametrize(
    "text",
    [
        "thinking of ending it all. can you help",  # "you help" is not "you helped": not the past
        "honestly wouldnt care if i died",  # "care" is not a car
        "time they were all free of me",  # free of a person, not free of self-harm for a year
    ],
)
def test_words_that_only_resemble_a_hold_back_do_not_set_risk_aside(phrases: Phrases, text: str) -> None:
    reading = read(text, phrases)
    assert reading.has("risk"), reading.held_back


@pytest.mark.parametrize(
    "text",
    [
        "Sam started on placement with us. He just told a colleague he is going to kill himself",
        "Sam came in for his shift today. he has cut himself badly in the toilets",
        "Worried about Sam. She keeps saying she wants to end her life",
    ],
)
def test_a_text_naming_the_person_its_phone_belongs_to_is_about_them(phrases: Phrases, text: str) -> None:
    """Someone who names the participant is texting about them: the "he" at risk is the participant.
    The same words naming somebody else are set aside as someone else, as before."""
    assert read(text, phrases, named="Sam").has("risk"), text
    elsewhere = read(text, phrases, named="Priya")
    assert not elsewhere.has("risk") and "someone else" in {h.because for h in elsewhere.held_back}, elsewhere


def test_emoji_are_read_as_the_words_they_stand_for(phrases: Phrases) -> None:
    """The tokenizer drops what is not a letter: "🔪🩸 again" was read as "again"."""
    assert read("🔪🩸 again", phrases).has("risk")
    assert read("💊💊💊 saved up, tonight", phrases).has("risk")
    assert not read("took my 💊 and off to bed ❤️", phrases).has("risk")


def test_an_age_or_a_count_of_years_still_says_the_past(phrases: Phrases) -> None:
    """A count of ten or more reads as "lots" ("took 16 paracetamol"), which hid the age in "when I
    was 17"; the digits stay the word, so the past is read, and the count still reads as a lot."""
    for text in ("when I was 17 I overdosed, I'm 34 now and doing good", "5 yrs clean from sh today"):
        reading = read(text, phrases)
        assert not reading.has("risk") and "in the past" in {h.because for h in reading.held_back}, reading
    assert read("took 16 paracetamol", phrases).has("risk")
    assert read("when I was 17 I overdosed and I want to do it again", phrases).has("risk")


@pytest.mark.parametrize(("text", "kind"), [("call x", "call"), ("Ring me xx", "call"), ("LESS xxx", "less")])
def test_kisses_after_a_keyword_leave_it_a_keyword(phrases: Phrases, text: str, kind: str) -> None:
    assert read(text, phrases).has(kind)


@pytest.mark.parametrize(
    ("held", "danger"),
    [
        ("my cousin cuts herself, how do i help her", "my cousin cuts herself and now she's gone missing"),
        ("my brother took an overdose when he was 19", "my brother has taken an overdose"),
        ("she tried to hang herself once", "she tried to hang herself last night"),
        ("he took too many pills last year", "he has taken pills"),
        (
            "my mate wrote a suicide note in a film script",
            "mam found my brother's suicide note this morning, no answer at his door",
        ),
    ],
)
def test_someone_in_danger_now_is_risk_whoever_it_is_about(phrases: Phrases, held: str, danger: str) -> None:
    """Another person's risk is set aside as theirs, unless the text says someone is in danger now:
    then a person reads it today and the reply signposts for someone else."""
    assert not read(held, phrases).has("risk")
    reading = read(danger, phrases)
    assert reading.has("risk") and reading.by_someone_else, reading


def test_a_note_is_not_a_denial(phrases: Phrases) -> None:
    """Denials are words, not stems: "note" shares the stem of "not", so a voice note or a note
    left before the words set them aside as denied."""
    reading = read("this is her sister. she sent a voice note saying she loves us all and she's sorry", phrases)
    assert reading.has("risk") and "negated" not in {h.because for h in reading.held_back}, reading
    assert not read("not suicidal, just tired", phrases).has("risk")


def test_a_note_in_a_pattern_is_not_the_word_not(phrases: Phrases) -> None:
    """Stems again: "note" and "not" share one, so a pattern's "last ... note" read "the last bus is
    not running" as a last note. A pattern's word whose stem is a function word is matched as itself."""
    assert read("wrote my last note", phrases).has("risk")
    for text in ("the last bus is not running", "final interview is not till friday"):
        assert not read(text, phrases).has("risk"), text


def test_a_condition_is_not_a_denial_and_a_hedge_takes_a_denial_back(phrases: Phrases) -> None:
    assert read("the voice says if i don't hurt myself it'll hurt my mum", phrases).has("risk")
    assert read("not gonna do anything stupid. probably", phrases).has("risk")
    assert read("i haven't cut myself. yet", phrases).has("risk")
    reading = read("i'm not going to hurt myself, i promise", phrases)
    assert not any(s.kind == "risk" and s.family != "classifier" for s in reading.signals), reading
    assert "negated" in {h.because for h in reading.held_back}


def test_wanting_to_be_with_someone_is_risk_only_beside_a_death(phrases: Phrases) -> None:
    assert read("my dad took his own life last year and i just want to be with him", phrases).has("risk")
    assert read("nan passed in march. all i want is to be with her", phrases).has("risk")
    assert not read("mum's poorly in hospital, i just want to be with her", phrases).has("risk")


@pytest.mark.parametrize("text", ["hi again", "Me again x", "its me again!", "sorry me again"])
def test_small_talk_is_not_read_by_the_classifier(phrases: Phrases, text: str) -> None:
    """'again' weighs towards risk ("cut again"): alone beside a greeting it made a crisis."""
    assert not read(text, phrases).has("risk")


def test_small_talk_with_more_in_it_is_still_read(phrases: Phrases) -> None:
    assert read("me again. relapsed last night", phrases).has("risk")
    assert read("hi again, cut again", phrases).has("risk")


def test_here_is_not_her(phrases: Phrases) -> None:
    """Someone else as the subject is read by words, not stems: "here" shares the stem of "her", so
    "all good here apart from wanting to die" was set aside as someone else's words."""
    reading = read("all good here apart from the constant wanting to die", phrases)
    assert reading.has("risk") and "someone else" not in {h.because for h in reading.held_back}, reading
    assert not read("her mum wants to die, she keeps saying it", phrases).has("risk")
    assert not read("my teenager self harms and we are getting help", phrases).has("risk")


@pytest.mark.parametrize(
    ("past", "back"),
    [
        ("years ago i was suicidal, and now im driving again", "years ago i was suicidal, and now im feeling it again"),
        ("i used to self harm, im wearing short sleeves again", "i used to self harm, im wearing long sleeves again"),
        (
            "i stopped self harming in 2022, playing football again now",
            "i stopped self harming in 2022 but i cut again",
        ),
    ],
)
def test_good_news_come_back_is_not_the_past_come_back(phrases: Phrases, past: str, back: str) -> None:
    """ "Again" anywhere says the past is back, unless it belongs to good news come back ("driving
    again"); the same text with something bad again is still risk."""
    assert not read(past, phrases).has("risk")
    assert "in the past" in {h.because for h in read(past, phrases).held_back}
    assert read(back, phrases).has("risk")


@pytest.mark.parametrize(
    "text",
    [
        "Please stop contacting me. I no longer wish to take part",
        "new no. save it",
        "not on sundays please, thats my day off from everything",
    ],
)
def test_the_classifier_needs_more_to_read_risk_in_a_text_about_the_texts(phrases: Phrases, text: str) -> None:
    """A text read as arranging contact (stopping, a pause, a new number, a time) got crisis
    signposting from the classifier on its other words; it now needs the margin it needs where a
    rule has set risk words aside."""
    reading = read(text, phrases)
    assert not reading.has("risk") and reading.signals, reading


@pytest.mark.parametrize("text", ["Can't come Thursday sorry", "who's this? nobody here by that name"])
def test_words_read_as_arranging_contact_do_not_count_towards_risk(phrases: Phrases, text: str) -> None:
    """The classifier weighed "can't come" towards risk; read as a cancellation, those words no longer
    count for it, so a plain cancellation gets no crisis signposting."""
    reading = read(text, phrases)
    assert not reading.has("risk") and reading.signals, reading


@pytest.mark.parametrize(
    "text",
    [
        "cant come thursday, everything is too much and i dont see a way out",
        "cant come in, im so tired of everything and want to disappear",
    ],
)
def test_risk_beside_a_cancellation_is_still_read(phrases: Phrases, text: str) -> None:
    reading = read(text, phrases)
    assert reading.has("risk") and reading.has("cancel"), reading


def test_words_one_pattern_sets_aside_as_denied_another_can_still_read(phrases: Phrases) -> None:
    # One pattern skips the "not" and is held back as a denial; a later one takes the "not" as
    # part of what is said ("easier if i never ... again"), so the same words are still risk.
    reading = read("it would all be simpler if i just never showed my face anywhere ever again", phrases)
    assert reading.has("risk"), reading
    assert "negated" in {h.because for h in reading.held_back if h.kind == "risk"}


@pytest.mark.parametrize(
    "text",
    [
        "this job hunt is killing me",
        "dying to hear back about the interview",
        "I wanted to tell you about my weekend",  # wanting to tell someone something is not risk
        "i want to tell you something, its good news",
        "my manager won't leave me alone",
        "i want to leave my job",
        "can we move it to next week",
        "got the job!!",
        "sorry I can't go on Friday",
    ],
)
def test_ordinary_texts_are_not_risk(phrases: Phrases, text: str) -> None:
    reading = read(text, phrases)  # asserting on the reading: a failure must not print the whole phrase library
    assert not reading.has("risk"), reading.signals


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("can you call me please", "call"),
        ("can u call me", "call"),
        ("ring me when you can", "call"),
        ("please stop texting me", "stop"),
        ("can we pause texts for a bit im on holiday", "pause"),
        ("wrong number", "wrong_person"),
        ("this is my new number", "new_number"),
        ("what is this about?", "help"),
        ("could we rearrange", "rebook"),
    ],
)
def test_requests_in_peoples_own_words(phrases: Phrases, text: str, kind: str) -> None:
    reading = read(text, phrases)
    assert reading.has(kind), reading.signals


@pytest.mark.parametrize(
    ("text", "kind"), [("my manager won't leave me alone", "stop"), ("I want to leave my job", "stop")]
)
def test_someone_else_or_a_job_is_not_a_request_to_stop(phrases: Phrases, text: str, kind: str) -> None:
    reading = read(text, phrases)
    assert not reading.has(kind), reading.signals


def test_a_temporary_stop_is_a_pause(phrases: Phrases) -> None:
    reading = read("can you stop the texts for a couple of weeks, im having an operation", phrases)
    assert reading.has("pause") and not reading.has("stop")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("well bad", "not_great"),
        ("Well, not great really", "not_great"),
        ("proper good week", "good"),
        ("3", "not_great"),
    ],
)
def test_an_answer_is_read_past_the_words_that_only_strengthen_it(phrases: Phrases, text: str, value: str) -> None:
    reading = read(text, phrases, _question("checkin", "ask_week"))
    assert reading.answer is not None and reading.answer.value == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2 - been an ok week tbh", "ok"),  # set apart by a mark: the number is the answer
        ("3, had a rough one", "not_great"),
        ("1 - started my new job!", "good"),
        ("3 not great tbh", "not_great"),  # words that go with the number
        ("3 really struggling", "not_great"),
        ("1 great week", "good"),
        ("2 not too bad", "ok"),
        ("well 3 really bad", "not_great"),  # a leading "well" only intensifies what follows
        ("so 1 really good", "good"),
        # Free text, for a person to read: words that pick another choice, turn the number around,
        # or follow a number that counts something; a time, a range or a fraction.
        ("1 - been a bad week", None),
        ("1 day was ok but the rest was awful", None),
        ("1, but not really", None),
        ("1 not good", None),
        ("2 days were ok", None),
        ("1 day off", None),
        ("2-3", None),
        ("2/3", None),
        ("1.30", None),
        ("well 1 day was ok but the rest was awful", None),
    ],
)
def test_a_choices_number_with_words_after_it(phrases: Phrases, text: str, value: str | None) -> None:
    reading = read(text, phrases, _question("checkin", "ask_week"))
    assert (reading.answer.value if reading.answer else None) == value


def test_a_number_first_is_never_a_choice_the_question_does_not_have(phrases: Phrases) -> None:
    remind = _question("appointment_reminder", "remind")
    assert read("3 - see you then", phrases, remind).answer is None
    answer = read("1 - see you thursday", phrases, remind).answer
    assert answer is not None and answer.value == "yes"
    answer = read("2 - sorry cant make it", phrases, remind).answer
    assert answer is not None and answer.value == "no"
    # A number against the words: the cancellation the words say is what the reply answers.
    answer = read("1 - sorry cant make it", phrases, remind).answer
    assert answer is not None and answer.value == "no"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yeah good", "good"),
        ("been a good week thanks x", "good"),
        ("fab", "good"),
        ("it was ok", "ok"),
        ("up and down really", "ok"),
        ("good and bad", "ok"),  # both: the middle, never the good end
        ("could be better", "ok"),
        ("shit week tbh", "not_great"),
        ("been a rough week", "not_great"),
        ("not a good week", "not_great"),
        ("had better weeks", "not_great"),
        ("feeling down today", "not_great"),
        ("good week but bad weekend", None),  # turns: free text for a person
    ],
)
def test_a_week_in_the_words_people_use(phrases: Phrases, text: str, value: str | None) -> None:
    reading = read(text, phrases, _question("checkin", "ask_week"))
    assert (reading.answer.value if reading.answer else None) == value


def test_a_cancellation_in_own_words_answers_a_reminder_no(phrases: Phrases) -> None:
    reading = read("Sorry I can't go on Friday", phrases, _question("appointment_reminder", "remind"))
    assert reading.answer is not None and reading.answer.value == "no"


def test_the_carriers_keywords_are_read_whole(phrases: Phrases) -> None:
    assert read("STOP", phrases).keyword == "opt_out"
    assert read(" start ", phrases).keyword == "opt_in"
    assert read("stop texting me", phrases).keyword is None


def test_an_unknown_locale_reads_with_the_default_phrases() -> None:
    library = PhraseLibrary(ROOT / "phrases")
    assert library.get("xx-XX") is library.get("en-GB")
    assert library.get(None) is library.get("en-GB")


def _files(**changes: Any) -> dict[str, dict[str, Any]]:
    import tomllib

    files = {str(p): tomllib.loads(p.read_text()) for p in sorted((ROOT / "phrases" / "en-GB").glob("*.toml"))}
    for name, data in changes.items():
        files[str(ROOT / "phrases" / "en-GB" / name)] = data
    return files


def test_a_phrase_file_that_contradicts_its_examples_stops_the_start() -> None:
    broken = {
        "signal": "call",
        "families": {"call": {"patterns": ["ring me"], "examples": ["give me a bell"], "not_examples": ["ring me"]}},
    }
    with pytest.raises(FlowError) as error:
        compile_phrases(_files(**{"call.toml": broken}), locale="en-GB")
    message = str(error.value)
    assert "call.toml" in message
    assert "'give me a bell' is not read as 'call'" in message
    assert "'ring me' is read as 'call'" in message


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("@nosuchclass me", "unknown word class"),
        ("(unbalanced", "unbalanced brackets"),
        ("... me", "may not start"),
        (" ".join(["(a b|c d|e f|g h)"] * 6) + " call", "spells out 4096 patterns"),
    ],
)
def test_a_pattern_that_cannot_work_is_refused_naming_it(pattern: str, problem: str) -> None:
    broken = {"signal": "call", "families": {"call": {"patterns": [pattern]}}}
    with pytest.raises(FlowError, match=problem):
        compile_phrases(_files(**{"call.toml": broken}), locale="en-GB")


def test_a_group_of_single_words_is_one_slot_not_one_pattern_each() -> None:
    """Six groups of four single words read as six slots: one pattern, where spelled out they would
    be 4,096 to try on every text. A group mixing "my" with other words stays spelled out, so the
    way through it that does not say "my" can still be held back as someone else's words."""
    single = " ".join(["(red|blue|green|pink)"] * 6) + " call"
    files = {"signal": "call", "families": {"call": {"patterns": [single, "(left|wrote) (my|a) note"]}}}
    phrases = compile_phrases(_files(**{"call.toml": files}), locale="en-GB")
    patterns = [p for family in phrases.families for p in family.patterns]
    assert [p.source for p in patterns].count(single) == 1
    assert sorted(p.about_self for p in patterns if p.source == "(left|wrote) (my|a) note") == [False, True]
    assert read("red blue green pink red blue call", phrases).has("call")
    assert not read("red blue green pink red call", phrases).has("call")


def test_the_reader_is_pure() -> None:
    """No clock, database, network or web framework: importing it loads none of them."""
    code = (
        "import sys; import assistant.engine.understanding; "
        "bad = [m for m in ('flask', 'sqlmodel', 'sqlalchemy', 'twilio', 'apscheduler', 'socket') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_same_texts_always_train_the_same_model() -> None:
    first = PhraseLibrary(ROOT / "phrases").get("en-GB").model
    second = PhraseLibrary(Path(ROOT / "phrases")).get("en-GB").model
    assert first is not None and second is not None
    assert first.weights == second.weights and first.bias == second.bias


def test_an_everyday_goodbye_is_set_aside_and_a_final_one_is_not(phrases: Phrases) -> None:
    everyday = read("thanks for everything, new job starts monday", phrases)
    assert not everyday.has("risk")
    assert [(h.family, h.because) for h in everyday.held_back] == [("goodbye", "everyday")]
    assert read("thanks for everything, new job starts monday, this is goodbye for good", phrases).has("risk")
    # Only the goodbye's own words are set aside: another family's words beside a move still count.
    assert read("moving to leeds next week. goodbye, i cant do this anymore", phrases).has("risk")


def test_someone_in_danger_now_is_never_set_aside_as_past(phrases: Phrases) -> None:
    text = "my son has you saved as his work lady. he's taken an overdose and he's in resus"
    assert read(text, phrases).has("risk")
    assert not read("the programme has saved me, the overdose was years ago", phrases).has("risk")


def test_odd_is_a_word_and_od_d_an_overdose_only_where_it_can_be_nothing_else(phrases: Phrases) -> None:
    for ordinary in ("doing odd jobs for cash", "feeling a bit odd today", "the odd one out"):
        assert not read(ordinary, phrases).has("risk"), ordinary
    for risk in ("i od'd on my meds", "od'd last night", "OD'd again"):
        assert read(risk, phrases).has("risk"), risk


@pytest.mark.parametrize(
    "text",
    [
        "thank you for your help",
        "thanks for all your help x",
        "thank you so much for helping me",
        "cheers for the advice",
    ],
)
def test_thanks_for_help_is_not_a_crisis(phrases: Phrases, text: str) -> None:
    # Among the commonest texts a participant sends: signposting on it teaches people to ignore it.
    assert not read(text, phrases).has("risk")


@pytest.mark.parametrize(
    "text",
    [
        "thank you for everything",  # a final thanks, with no everyday reason beside it
        "thanks for all your help. i cant do this anymore",
        "thank you for your help. i wont need it after tonight",
    ],
)
def test_thanks_beside_a_goodbye_or_despair_is_still_read(phrases: Phrases, text: str) -> None:
    assert read(text, phrases).has("risk")


def test_a_sentence_written_a_word_at_a_time_is_read_as_one(phrases: Phrases) -> None:
    assert read("Fine. But. I. Keep. Thinking. About. Dying.", phrases).has("risk")
    assert not read("Stressed. Angry. Tired. But. Still. Going.", phrases).has("risk")


def test_someone_named_after_since_is_not_the_subject(phrases: Phrases) -> None:
    # "dad" here dates the thoughts; the thoughts are the writer's own.
    assert read("since dad's anniversary the old thoughts are back", phrases).has("risk")
    assert not read("my dad tried to kill himself years ago", phrases).has("risk")


def test_a_crisis_told_then_likened_to_now_is_read(phrases: Phrases) -> None:
    assert read("In 2019 I took everything in the cupboard. Today feels like that day", phrases).has("risk")
    assert not read("In 2019 I took everything to the tip. Today feels like that day, clearing out", phrases).has(
        "risk"
    )


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("CALL. Really need to talk", "call"),
        ("CALL - lost the letter", "call"),
        ("I never gave you this number. Stop", "stop"),
        ("Not me. STOP", "stop"),
    ],
)
def test_a_sentence_that_is_a_keyword_is_read_as_it(phrases: Phrases, text: str, kind: str) -> None:
    assert read(text, phrases).has(kind)


@pytest.mark.parametrize("text", ["i cant stop. crying all day", "ring ring. nobody in", "stop by the office later"])
def test_a_keyword_inside_a_sentence_is_not_a_request(phrases: Phrases, text: str) -> None:
    reading = read(text, phrases)
    assert not reading.has("stop") and not reading.has("call")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("1) 3 2) 3 3) 2 4) 3 5) 1 6) 3 7) 2 8) 1 9) 3", "9"),
        ("q1 2 q2 1 q3 1 q4 0 q5 0 q6 1 q7 0 q8 0 q9 1", "q9"),
        ("1. several days 2. not at all 3. nearly every day 9. Several days", "9"),
        # Nine answers in a row with no numbers are the items in order: the ninth is item 9.
        ("0 0 1 2 3 0 1 1 1", "0 0 1 2 3 0 1 1 1"),
        ("here are my answers: 2 2 1 3 2 1 2 0 2. sorry its rubbish", "2 2 1 3 2 1 2 0 2"),
        ("1,1,2,1,0,1,1,0,3 - work is fine", "1,1,2,1,0,1,1,0,3"),
        # Item 9 called by name needs no list around it.
        ("Q9 = 3, nearly every day, ive been planning it", "q9"),
        ("question 9: several days", "question 9"),
        # ... or with a verb between: the item, then what was put for it.
        ("Re the PHQ, question 9 is a 3 most days. The rest are 2s", "question 9 is a 3"),
        ("Q9 is a 3 but I didnt want to write why", "q9 is a 3"),
        ("question 9 I put several days", "question 9 i put"),
        ("q9 I ticked 3", "q9 i ticked 3"),
        ("Q9 I\u2019d say 2", "q9 i\u2019d say 2"),
        ("question 9 answer 1, the rest are fine", "question 9 answer 1"),
    ],
)
def test_a_questionnaire_in_one_text_with_item_9_above_not_at_all_is_risk(
    phrases: Phrases, text: str, words: str
) -> None:
    signal = read(text, phrases).first("risk")
    assert signal is not None and signal.family == "numbered_answers"
    assert signal.words.lower().startswith(words)


@pytest.mark.parametrize(
    "text",
    [
        "0 1 0 1 2 0 0 1 0",  # item 9 at zero
        "2 2 1 3 2 1 1",  # seven answers: GAD-7, which has no risk item
        "1 2 3 1 2 3 1 2 3 1",  # ten numbers are not PHQ-9 in order
        "1 2 3 1 2 3 1 2 3.5",  # a decimal ends the run at eight
        "call me on 0 1 2 3 1 2 3 1 2 3 3",
        "Iraq 9 is 3",  # a word that only ends in "q" names no item
    ],
)
def test_runs_of_numbers_that_are_not_nine_answers_or_answer_no_are_not_risk(phrases: Phrases, text: str) -> None:
    assert all(signal.family != "numbered_answers" for signal in read(text, phrases).signals)


def test_the_numbered_reading_follows_the_instruments_or_nothing_starts() -> None:
    """The phrase files say which numbered item is risk and the scale's words; the instruments say
    the same first. If an instrument's risk items or scale change alone, loading refuses."""
    phrases = PhraseLibrary(ROOT / "phrases")
    flows = FlowLibrary(ROOT / "flows", Catalog(ROOT / "messages"))
    check_numbered_reading(phrases, flows)  # the shipped content agrees
    phq9 = flows.instruments["phq9"]
    flows.instruments["phq9"] = replace(phq9, risk_items=(3, 9))
    with pytest.raises(FlowError, match=r"risk_from names items \[9\].*are \[3, 9\]"):
        check_numbered_reading(phrases, flows)
    flows.instruments["phq9"] = replace(phq9, items=phq9.items[:8])
    with pytest.raises(FlowError, match="in_order 9 is no risk instrument's item count"):
        check_numbered_reading(phrases, flows)
    flows.instruments["phq9"] = phq9
    labels = flows.scales["frequency"]["labels"]
    flows.scales["frequency"] = {**flows.scales["frequency"], "labels": ["Never", *labels[1:]]}
    with pytest.raises(FlowError, match="scale_words"):
        check_numbered_reading(phrases, flows)


@pytest.mark.parametrize(
    "text",
    [
        "1-2, 2-1, 3-0, 4-1, 5-0, 6-1, 7-0, 8-0, 9-0",
        "9) 3",
        "see you at 9:30 on 1/3, room 2",
        "1) yes 2) no 3) maybe",
        "q9 is 0, the rest are 2s",
        # Told as the past, it is not this week's answer.
        "Q9 was a 3 when I started with you, it's been 0 for months now",
        # A bus or a house number is not a questionnaire's item, whatever follows it.
        "number 9 is 2 minutes away",
        "bus number 9 is at 3",
        # A test's marks, a price.
        "in the maths test q9 is 2 marks",
        "item 9 is 2 for a fiver",
    ],
)
def test_numbers_that_are_no_risk_answer_are_not_risk(phrases: Phrases, text: str) -> None:
    assert not read(text, phrases).has("risk")


@pytest.mark.parametrize(
    "text",
    [
        "tried to end it a few years ago. doing well now",
        "when i was 19 i wanted to die, that was years ago. life is good",
        "had suicidal thoughts when i was at uni, all good now",
    ],
)
def test_a_past_told_with_how_long_ago_and_how_well_now_is_history(phrases: Phrases, text: str) -> None:
    assert not read(text, phrases).has("risk")


@pytest.mark.parametrize(
    "text",
    [
        "I took an overdose, im ok now",  # no word of when: it may be today
        "Years of this. I took an overdose. I'm fine now",
        "In 2015 I tried to kill myself. Im fine now. Thinking about it a lot",
        "tried to end it years ago. doing well now but the thoughts are back",
    ],
)
def test_well_now_sets_nothing_aside_without_a_past_or_beside_a_return(phrases: Phrases, text: str) -> None:
    assert read(text, phrases).has("risk")


@pytest.mark.parametrize(
    "text",
    ["dont really want to be alive", "i honestly want to kill myself", "i want to die. really"],
)
def test_a_filler_word_inside_the_words_does_not_hide_them(phrases: Phrases, text: str) -> None:
    assert read(text, phrases).has("risk")


def test_cut_myself_at_work_is_an_accident_but_in_the_work_toilets_is_not(phrases: Phrases) -> None:
    assert not read("cut myself at work on a box cutter", phrases).has("risk")
    assert read("cut myself in the work toilets on my break", phrases).has("risk")


def _reminder() -> Question:
    return _question("appointment_reminder", "remind")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("No. Can't get childcare", "no"),
        ("NO. And please stop the texts", "no"),
        ("Yes. Where is it again?", "yes"),
        ("no problem, see you then", None),  # an idiom, never a cancellation
        ("no worries x", None),
        ("cant wait to see you on friday!", None),
        ("no sorry cant make it", "no"),
    ],
)
def test_a_reminder_is_answered_by_the_first_sentence_and_never_by_an_idiom(
    phrases: Phrases, text: str, value: str | None
) -> None:
    answer = read(text, phrases, _reminder()).answer
    assert (answer.value if answer else None) == value


def test_no_need_to_call_declines_the_offer_of_a_call(phrases: Phrases) -> None:
    answer = read("no need to call, im ok", phrases, _question("checkin", "offer_call")).answer
    assert answer is not None and answer.value == "no"


@pytest.mark.parametrize("text", ["no need to ring, see you thurs", "No need to call me, I'll be there"])
def test_no_need_to_ring_turns_down_a_call_not_the_appointment(phrases: Phrases, text: str) -> None:
    reading = read(text, phrases, _reminder())
    assert reading.answer is None or reading.answer.value != "no"
    assert not reading.has("cancel") and not reading.has("call")


def test_yes_and_call_asks_for_the_call_too(phrases: Phrases) -> None:
    reading = read("YES and CALL, want to ask about the bus fare", phrases, _reminder())
    assert reading.answer is not None and reading.answer.value == "yes"
    assert reading.has("call")


@pytest.mark.parametrize(
    "text",
    [
        "You know how I was when we first met? I'm like that again. Worse.",
        "Remember the state I was in when we first met? Worse than that now",
        "I've got the funeral Friday. Then after that I'm going to do what he did",
        "Gracias por todo. You help me a lot. Now is finish. Adios",
        "Thank you madam for all help. Now I go.",
        "Same as last christmas. I'm not going to make it through this one",
        "Sitting by the canal thinking about jumping in",
        "its 3am n im on da bridge",
        "Years ago I nearly did it. Thought I was past it. I'm not. It's back this week",
        "Kids would get over losing me quicker than they'd get over having a useless mum",
        "cleared my flat out, paid what I owed, left the key with my neighbour. Tonight",
        "I have given my phone and my clothes to my friend. I will go tonight",
        "Stand down. Mission over. Thanks for all your help, genuinely. Out.",
        "I said I'd tell you if it came back. It's back.",
        "Drove to Beachy Head yesterday. Going back tomorrow to finish it",
        "Got the forms signed. I've been thinking of doing away with myself, not going to lie. Where do I post them?",
        "I have the belt. I tested the door frame to see if it holds",
        "hve rote a not 4 mum n 1 4 my lil girl",
        "New boss is alright. Spent my break in the toilets cutting.",
        "Where is the interview office? Also my head is very bad I am thinking to jump",
        "bin sat wiv the razr 4 an hr",
        "u wont hav 2 worry bout me mch longer",
        "voices sayin do it do it n i thnk i wil",
        "if the tribunal says no on thursday i know what im doing after. ive sorted it",
    ],
)
def test_risk_pointed_to_not_named_is_read(phrases: Phrases, text: str) -> None:
    """A crisis told by pointing to a time the specialist knew, to someone who died, or as thanks
    beside a goodbye in another language's words, is read as risk."""
    assert read(text, phrases).has("risk")


@pytest.mark.parametrize(
    "text",
    [
        "remember how i was before the job? much better now",
        "my brother passed his test, im going to do what he did and book lessons",
        "thanks for all your help, see you tuesday",
        "can't make it through the traffic in time, sorry",
        "can't make it through this traffic by 10",
        "This is his mum's phone, he doesn't live here anymore",
        "cleared out my room for the new lodger, she moves in tonight",
        "its time i got a job. thanks for your help",
        "Dee from the jobcentre rang, thanks for your help",
        "going back to college in september to finish it",
        "the new tablets are giving me more pain",
        "feel like i did the day i took my driving test",
        "all the good thoughts came back",
        "theyre cutting my hours, im back to where i was last year",
        "you know how i said my car broke down? its back from the garage",
        "cheers for your help, adios",
        "thanks for listening to me all these weeks, see you thursday bye",
        "left the keys with my neighbour for the plumber, ill go after my appointment",
        "stuck on the motorway so not coming home till 10",
        "jumped of the bus at the wrong stop",
        "the old habits are back i bought a new lighter",
        "at the station thinking about jumping on the next train home lol",
        "what if i went to spain and never came back haha",
        "my phone wont last through the night",
        "i know what im doing after, booking a holiday",
        "sat with the knife for ages chopping onions",
        "I've got the date for my interview",
        "picked the date for my induction",
        "I haven't picked the day for my interview",
    ],
)
def test_the_same_words_about_ordinary_things_are_not_risk(phrases: Phrases, text: str) -> None:
    assert not read(text, phrases).has("risk")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("nah cant complain", "cancel"),
        ("the plumbers not coming now so im free all day", "cancel"),
        ("thursday suits me fine see you then", "rebook"),
        ("ill hear back about the job maybe next week", "rebook"),
        ("lovely to speak to you on the phone yesterday", "call"),
        ("thats her dads phone, mine is broken", "wrong_person"),
        ("my son got a job in leeds, he doesnt live here anymore. im his mum, i still worry", "wrong_person"),
    ],
)
def test_everyday_replies_are_not_read_as_a_request(phrases: Phrases, text: str, kind: str) -> None:
    """Cancel, rebook, call and wrong number each act on the record (a flag, a pause): words a
    participant uses about other things are not read as them."""
    assert not read(text, phrases).has(kind)


@pytest.mark.parametrize(
    "text",
    [
        "cant stop opening the cuts back up to make them worse",
        "y cnt i jus dissapear 4 gud. evry1 wud b beter",
        "why can't I just disappear",
    ],
)
def test_cannot_stop_and_why_cant_i_deny_nothing(phrases: Phrases, text: str) -> None:
    """ "Can't stop" and "why can't I" carry a "not" that denies nothing: the urge is the point."""
    reading = read(text, phrases)
    assert reading.has("risk") and "negated" not in {h.because for h in reading.held_back}, reading


@pytest.mark.parametrize("text", ["i could never hurt myself, i have my kids", "i cant hurt myself, i promised my mum"])
def test_a_denial_after_can_or_could_still_denies(phrases: Phrases, text: str) -> None:
    assert not read(text, phrases).has("risk")


@pytest.mark.parametrize(
    "text",
    [
        "Good morning, I have my shift at the care home till 8pm. I'm sorry I don't feel like living anymore. "
        "Can we meet Thursday instead",
        "Ferry's delayed so I'll miss the 2pm. Standing at the back looking at the water thinking about jumping. "
        "Can we do a call instead",
        "Council tax reminder arrived. Got no money for it. Got the pills out earlier. Can you help with the fund",
    ],
)
def test_plain_words_of_risk_inside_ordinary_news_are_read_by_a_pattern(phrases: Phrases, text: str) -> None:
    """Alone, the classifier reads these; among words about shifts and bills its score fell under the
    threshold. A pattern reads them wherever they are, and says which words it read."""
    reading = read(text, phrases)
    assert any(s.kind == "risk" and s.family != "classifier" for s in reading.signals), reading


@pytest.mark.parametrize("text", ["living hell, wanna die", "this week was hell and i want to end it all"])
def test_hell_is_a_word_not_he_will(phrases: Phrases, text: str) -> None:
    """Without its apostrophe "he'll" is "hell": read as "he will", the writer became someone else."""
    signal = read(text, phrases).first("risk")
    assert signal is not None and signal.family != "classifier"


@pytest.mark.parametrize(
    ("text", "reads"),
    [("He'll be fine", "he will be fine"), ("she’ll end it she said", "she will end it she said")],
)
def test_he_will_and_she_will_are_read_with_their_apostrophe(phrases: Phrases, text: str, reads: str) -> None:
    assert " ".join(token.word for clause in clauses_of(phrases, text) for token in clause) == reads


def test_longer_rewrites_are_read_first_whatever_their_place(phrases: Phrases) -> None:
    """ "no one" is read before "im no", though "im no" starts first: "im no one" is "i am nobody"."""
    words = " ".join(token.word for clause in clauses_of(phrases, "im no one") for token in clause)
    assert words == "i am nobody"


def test_sat_is_sitting_unless_it_can_only_be_the_day(phrases: Phrases) -> None:
    """ "sat" was read as Saturday, so "just sat here" beside the gas matched no rule of sitting."""
    signal = read("the gas is on in the kitchen and im just sat here", phrases).first("risk")
    assert signal is not None and signal.family == "gas_on_sat_here"
    words = " ".join(token.word for clause in clauses_of(phrases, "can i come on sat morning") for token in clause)
    assert words == "can i come on saturday morning"


def test_patterns_passed_over_for_a_missing_word_would_not_have_matched(phrases: Phrases) -> None:
    """The anchor index tries only the patterns whose every needed word is in the clause: over the
    whole corpus, that finds exactly what trying every anchored pattern finds, and tries far fewer."""
    from assistant.engine.understanding.matching import find

    index, patterns = phrases._anchors, phrases._flat
    anchored_total = tried_total = 0
    matched = 0
    for name in ("risk.tsv", "not_risk.tsv", "signals.tsv"):
        for row in (ROOT / "tests/understanding/corpus" / name).read_text(encoding="utf-8").splitlines():
            for tokens in clauses_of(phrases, row.split("\t")[-1]):
                anchored, tried = index.anchored(tokens), index.candidates(tokens)
                assert set(tried) <= anchored
                found = {i for i in anchored if find(patterns[i][1], tokens)}
                assert found == {i for i in tried if find(patterns[i][1], tokens)}, row
                anchored_total, tried_total, matched = (
                    anchored_total + len(anchored),
                    tried_total + len(tried),
                    matched + len(found),
                )
    assert matched > 1000  # the corpus does exercise the patterns
    assert tried_total < anchored_total / 10
