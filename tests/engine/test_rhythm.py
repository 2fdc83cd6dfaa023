"""The reply-rhythm estimate on hand-made histories: prompt, slow, new and erratic repliers.

Expected values are worked from the model itself (a share of texts answered, weighed with the
cohort's prior as `weight` pseudo-texts; reply times log-normal, weighed the same way), written
out here independently with statistics.NormalDist rather than read back from the code under test.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from statistics import NormalDist

import pytest

from assistant.engine.rhythm import (
    EARLIEST,
    FLAG_BELOW,
    FOLLOW_UP_BELOW,
    PRIORS,
    Rhythm,
    after_reply,
    chance_of_silence,
    describe,
    first_moment_below,
    reason,
)

T0 = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
DAY = timedelta(days=1)


def history(delays_hours: list[float], *, asks: int, pending: int = 0, cohort: str = "out_of_work") -> Rhythm:
    """A rhythm as if built one reply at a time from these reply delays."""
    logs = [math.log(h) for h in delays_hours]
    return Rhythm(
        asks=asks,
        answered=len(logs),
        log_hours_sum=sum(logs),
        log_hours_sq=sum(x * x for x in logs),
        pending=pending,
        cohort=cohort,
    )


def still_quiet(answered: int, settled: int, logs: list[float], hours: float, cohort: str = "out_of_work") -> float:
    """The model written out again: P(no answer yet | one text, `hours` ago)."""
    p = PRIORS[cohort]
    rate = (answered + p.answer_rate * p.weight) / (settled + p.weight)
    mu0 = math.log(p.median_hours)
    n = len(logs) + p.weight
    mu = (sum(logs) + p.weight * mu0) / n
    var = (sum(x * x for x in logs) + p.weight * (p.spread**2 + mu0**2)) / n - mu * mu
    late = 1 - NormalDist(mu, math.sqrt(var)).cdf(math.log(hours))
    return (1 - rate) + rate * late


# Ten answers, each twelve minutes after the check-in; eleven texts settled (one went unanswered).
PROMPT = [0.2] * 10
# Six answers, each thirty hours late; ten texts settled (four never answered).
SLOW = [30.0] * 6


def prompt(pending: int) -> Rhythm:
    return history(PROMPT, asks=11 + pending, pending=pending)


def slow(pending: int) -> Rhythm:
    return history(SLOW, asks=10 + pending, pending=pending)


def test_the_chance_is_the_model_worked_by_hand() -> None:
    logs = [math.log(h) for h in PROMPT]
    one = still_quiet(10, 11, logs, 48)
    assert chance_of_silence(prompt(1), T0, T0, T0 + 2 * DAY) == pytest.approx(one, rel=1e-9)
    two = still_quiet(10, 11, logs, 48) * still_quiet(10, 11, logs, 24)
    assert chance_of_silence(prompt(2), T0, T0 + DAY, T0 + 2 * DAY) == pytest.approx(two, rel=1e-9)


def test_a_prompt_replier_two_days_quiet_is_followed_up_and_with_two_texts_flagged() -> None:
    # Answers 10 of 11 (0.89 with the prior) and within minutes: after two days nearly all of the
    # chance left is "a text they never answer", about 0.11 - unusual, but one text can go.
    one = chance_of_silence(prompt(1), T0, T0, T0 + 2 * DAY)
    assert FLAG_BELOW < one < FOLLOW_UP_BELOW
    # A second text a day later, also unanswered: about 0.11 x 0.11, below the flag level.
    two = chance_of_silence(prompt(2), T0, T0 + DAY, T0 + 2 * DAY)
    assert two < FLAG_BELOW


def test_a_habitually_slow_replier_is_not_unusual_after_the_same_silence() -> None:
    # Answers 6 of 10 (about 0.67 with the prior), a day and more late: a third of texts go
    # unanswered anyway, and a sixth of answers come later than two days.
    one = chance_of_silence(slow(1), T0, T0, T0 + 2 * DAY)
    two = chance_of_silence(slow(2), T0, T0 + DAY, T0 + 2 * DAY)
    assert one > 2 * FOLLOW_UP_BELOW
    assert two > FOLLOW_UP_BELOW
    assert two > 10 * chance_of_silence(prompt(2), T0, T0 + DAY, T0 + 2 * DAY)


def test_a_newcomer_missing_one_text_is_never_unusual() -> None:
    new = Rhythm(asks=1, pending=1)
    prior = PRIORS["out_of_work"]
    assert new.answer_rate == pytest.approx(prior.answer_rate)
    # One missed text can only fall to "a text they never answer", the prior's 1 - 0.85.
    for elapsed in (EARLIEST, 2 * DAY, 30 * DAY):
        chance = chance_of_silence(new, T0, T0, T0 + elapsed)
        assert chance >= FOLLOW_UP_BELOW
        assert chance > 1 - prior.answer_rate - 1e-9
    # A quick first answer or two does not make them "prompt" yet: the prior still weighs four
    # texts, so one missed text may bring a follow-up (about 0.12) but is far from a flag, and
    # from what the same silence means after thirty quick answers (about 0.02).
    two_quick = chance_of_silence(history([0.1, 0.1], asks=3, pending=1), T0, T0, T0 + 2 * DAY)
    long_record = chance_of_silence(history([0.2] * 30, asks=31, pending=1), T0, T0, T0 + 2 * DAY)
    assert two_quick > FLAG_BELOW
    assert two_quick > 2 * long_record


def test_an_erratic_replier_is_judged_later_than_a_prompt_one() -> None:
    # The same typical reply time (e^0 = 1 hour) and the same answer rate; the erratic one's
    # answers are spread from eight minutes to seven hours.
    steady = history([1.0] * 10, asks=10 + 1, pending=1)
    erratic = history([math.exp(-2)] * 5 + [math.exp(2)] * 5, asks=10 + 1, pending=1)
    assert steady.delay()[0] == pytest.approx(erratic.delay()[0])
    assert erratic.delay()[1] > steady.delay()[1]
    assert erratic.usual_hours > steady.usual_hours

    def unusual_after(rhythm: Rhythm, level: float) -> int:
        return next(h for h in range(1, 24 * 60) if chance_of_silence(rhythm, T0, T0, T0 + timedelta(hours=h)) < level)

    level = 0.2  # within reach of both (their answer rates leave about 0.1 of "never")
    assert unusual_after(erratic, level) > unusual_after(steady, level)
    at_six_hours = T0 + timedelta(hours=6)
    assert chance_of_silence(erratic, T0, T0, at_six_hours) > chance_of_silence(steady, T0, T0, at_six_hours)


def test_the_chance_falls_as_time_passes_and_as_more_texts_go_unanswered() -> None:
    rhythm = prompt(1)
    over_time = [chance_of_silence(rhythm, T0, T0, T0 + timedelta(hours=h)) for h in (1, 3, 12, 24, 48, 96)]
    assert all(a > b for a, b in pairwise(over_time))
    assert chance_of_silence(rhythm, T0, T0, T0) == 1.0  # no time at all: nothing is known yet
    now = T0 + 3 * DAY
    by_texts = [chance_of_silence(prompt(n), T0, T0 + DAY, now) for n in (1, 2, 3)]
    assert by_texts[0] > by_texts[1] > by_texts[2]
    assert chance_of_silence(prompt(0), T0, T0, now) == 1.0  # nothing pending: no silence


def test_after_reply_settles_the_pending_text_and_adds_the_delay() -> None:
    before = history([2.0, 4.0], asks=5, pending=2)
    after = after_reply(before, timedelta(hours=8))
    assert after.pending == 0
    assert (after.asks, after.answered, after.cohort) == (5, 3, "out_of_work")
    assert after.log_hours_sum == pytest.approx(math.log(2) + math.log(4) + math.log(8))
    assert after.log_hours_sq == pytest.approx(math.log(2) ** 2 + math.log(4) ** 2 + math.log(8) ** 2)
    # Of the two pending texts one is answered and one was not: 3 of 5 settled.
    assert after.answer_rate == pytest.approx((3 + 0.85 * 4) / (5 + 4))
    # An instant reply counts as a minute, never as log(0).
    instant = after_reply(history([], asks=1, pending=1), timedelta(0))
    assert instant.log_hours_sum == pytest.approx(math.log(1 / 60))


def test_a_text_with_nothing_pending_or_no_ask_time_adds_no_delay() -> None:
    quiet = history([2.0], asks=3, pending=0)
    assert after_reply(quiet, timedelta(hours=5)) == quiet
    unknown = after_reply(history([2.0], asks=3, pending=1), None)
    assert (unknown.pending, unknown.answered) == (0, 1)
    assert unknown.log_hours_sum == pytest.approx(math.log(2))


def test_a_known_person_is_described_by_their_own_rhythm() -> None:
    # Ten answers at 12 minutes with the prior (3 hours, spread 1.3, weight 4): mean ln-hours
    # (10 ln 0.2 + 4 ln 3) / 14 = -0.84, spread 1.41, so nine in ten within e^(-0.84 + 1.28 x 1.41)
    # = 2.6 hours; answered (10 + 3.4) / (11 + 4) = 0.89 of texts.
    assert describe(prompt(0)) == "usually replies within 3 hours; answers about 9 in 10 texts"
    # Six answers at 30 hours: mean 2.48, spread 1.40, so within e^4.27 = 71 hours (3 days);
    # answered (6 + 3.4) / (10 + 4) = 0.67.
    assert describe(slow(1)) == "usually replies within 3 days; answers about 7 in 10 texts"
    # Anything under an hour and a half reads as "within an hour", never in minutes.
    assert describe(history([1 / 60] * 40, asks=40)).startswith("usually replies within an hour;")


def test_a_newcomer_is_described_as_new_with_what_is_assumed() -> None:
    # In work: the prior assumes 8 in 10 answered, within e^(ln 6 + 1.28 x 1.2) = 28 hours.
    assert describe(Rhythm(cohort="in_work")) == (
        "new: no usual pattern yet (assumed to answer about 8 in 10, within 28 hours)"
    )
    # Two settled texts are still "new"; the third makes a pattern.
    assert describe(history([1.0, 1.0], asks=3, pending=1)).startswith("new: ")
    assert describe(history([1.0, 1.0, 1.0], asks=3)).startswith("usually replies within ")


def test_the_reason_says_their_rhythm_and_the_silence_in_plain_words() -> None:
    assert reason(prompt(2), T0, T0 + 2 * DAY) == (
        "Quieter than usual for them: usually replies within 3 hours; answers about 9 in 10 texts; "
        "no reply to the last 2 texts over 2 days"
    )
    assert reason(prompt(1), T0, T0 + DAY + timedelta(hours=2)) == (
        "Quieter than usual for them: usually replies within 3 hours; answers about 9 in 10 texts; "
        "no reply to the last text over a day"
    )
    newcomer = reason(Rhythm(asks=2, pending=2, cohort="in_work"), T0, T0 + 6 * DAY)
    assert newcomer.startswith("Quieter than usual for them: new: no usual pattern yet")
    assert newcomer.endswith("no reply to the last 2 texts over 6 days")
    for words in (reason(prompt(2), T0, T0 + 2 * DAY), newcomer):
        assert "chance" not in words and "log" not in words and "%" not in words


def test_the_first_moment_a_silence_falls_below_a_level_is_found_to_the_second() -> None:
    """What the clock uses to know when to judge a silence next, instead of judging it every tick."""
    logs = [math.log(0.2)] * 10
    prompt = Rhythm(asks=11, answered=10, log_hours_sum=sum(logs), log_hours_sq=sum(x * x for x in logs), pending=1)
    moment = first_moment_below(prompt, T0, T0, FOLLOW_UP_BELOW, T0, T0 + 3 * DAY)
    assert moment is not None and T0 < moment < T0 + 3 * DAY
    before = chance_of_silence(prompt, T0, T0, moment - timedelta(seconds=1))
    assert chance_of_silence(prompt, T0, T0, moment) < FOLLOW_UP_BELOW <= before
    # Already below at the start: the start; never below by the end: None.
    assert first_moment_below(prompt, T0, T0, FOLLOW_UP_BELOW, moment + DAY, T0 + 3 * DAY) == moment + DAY
    assert first_moment_below(prompt, T0, T0, FLAG_BELOW, T0, T0 + timedelta(hours=1)) is None
