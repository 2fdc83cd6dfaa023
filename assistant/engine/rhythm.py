"""Each person's own reply rhythm, and how unusual their current silence is for them.

A rhythm is a handful of numbers kept per person (see db.models.ReplyRhythm): how many texts
asked for an answer, how many were answered, and the spread of the time it took them (in
log-hours). Newcomers borrow a prior for their cohort, worth a few texts, so one quick or one
missed reply does not decide anything.

The silence under way is judged by one number: the chance that someone with this rhythm would
still not have answered any of the texts sent since they last wrote. Both halves come from
their own history: how often they let a text go unanswered, and how late their answers come.
Nothing here decides what to do; the care layer compares the chance with fixed levels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

# Below this, a gentle follow-up text goes (once per silence); below FLAG_BELOW, a person is told.
FOLLOW_UP_BELOW = 0.15
FLAG_BELOW = 0.02
# Never judged sooner than this after a text: the check-in itself waits a day for its answer.
EARLIEST = timedelta(hours=24)
Z90 = 1.2816  # the 90th percentile of a standard normal


@dataclass(frozen=True)
class Prior:
    """What is assumed of someone with no history yet, worth `weight` texts."""

    answer_rate: float
    median_hours: float
    spread: float  # standard deviation of ln(hours to reply)
    weight: float = 4.0


# People in work answer less often, and after work.
PRIORS = {
    "out_of_work": Prior(answer_rate=0.85, median_hours=3.0, spread=1.3),
    "in_work": Prior(answer_rate=0.8, median_hours=6.0, spread=1.2),
}


@dataclass(frozen=True)
class Rhythm:
    asks: int = 0
    answered: int = 0
    log_hours_sum: float = 0.0
    log_hours_sq: float = 0.0
    pending: int = 0  # asks since their last text: their outcome is not known yet
    cohort: str = "out_of_work"

    @property
    def prior(self) -> Prior:
        return PRIORS.get(self.cohort, PRIORS["out_of_work"])

    @property
    def answer_rate(self) -> float:
        """Share of texts they answer, their history weighed with the prior."""
        settled = max(0, self.asks - self.pending)
        p = self.prior
        rate = (self.answered + p.answer_rate * p.weight) / (settled + p.weight)
        return min(0.99, max(0.01, rate))

    def delay(self) -> tuple[float, float]:
        """Mean and spread of ln(hours to reply), their answers weighed with the prior."""
        p = self.prior
        mu0 = math.log(p.median_hours)
        n = self.answered + p.weight
        mu = (self.log_hours_sum + p.weight * mu0) / n
        second = (self.log_hours_sq + p.weight * (p.spread**2 + mu0**2)) / n
        return mu, max(0.35, math.sqrt(max(0.0, second - mu * mu)))

    @property
    def usual_hours(self) -> float:
        """Nine answers in ten come within this many hours."""
        mu, sigma = self.delay()
        return math.exp(mu + Z90 * sigma)


def after_reply(rhythm: Rhythm, replied_after: timedelta | None) -> Rhythm:
    """A text from them: the last ask is answered (if one was pending) and the silence is over."""
    if rhythm.pending == 0 or replied_after is None:
        return Rhythm(rhythm.asks, rhythm.answered, rhythm.log_hours_sum, rhythm.log_hours_sq, 0, rhythm.cohort)
    x = math.log(max(replied_after.total_seconds() / 3600, 1 / 60))  # a minute at least
    return Rhythm(
        rhythm.asks, rhythm.answered + 1, rhythm.log_hours_sum + x, rhythm.log_hours_sq + x * x, 0, rhythm.cohort
    )


def _still_quiet(rhythm: Rhythm, elapsed: timedelta) -> float:
    """Chance that one text sent `elapsed` ago is still unanswered, for this person."""
    hours = elapsed.total_seconds() / 3600
    if hours <= 0:
        return 1.0
    mu, sigma = rhythm.delay()
    not_yet = 0.5 * math.erfc((math.log(hours) - mu) / (sigma * math.sqrt(2)))
    rate = rhythm.answer_rate
    return (1 - rate) + rate * not_yet


def chance_of_silence(rhythm: Rhythm, first_ask: datetime, last_ask: datetime, now: datetime) -> float:
    """The chance that someone with this rhythm would have answered none of the `pending` texts
    sent since they last wrote (the first at `first_ask`, the last at `last_ask`) by `now`."""
    if rhythm.pending <= 0:
        return 1.0
    chance = _still_quiet(rhythm, now - first_ask)
    if rhythm.pending > 1:
        chance *= _still_quiet(rhythm, now - last_ask) ** (rhythm.pending - 1)
    return chance


def first_moment_below(
    rhythm: Rhythm, first_ask: datetime, last_ask: datetime, level: float, start: datetime, end: datetime
) -> datetime | None:
    """The first moment in [start, end] at which the chance of this silence is below `level`, to the
    second, or None if it is not by `end`. The chance only falls as the silence goes on."""
    if chance_of_silence(rhythm, first_ask, last_ask, end) >= level:
        return None
    if chance_of_silence(rhythm, first_ask, last_ask, start) < level:
        return start
    low, high = start, end  # above the level at `low`, below it at `high`
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if chance_of_silence(rhythm, first_ask, last_ask, middle) < level:
            high = middle
        else:
            low = middle
    return high


def _hours(hours: float) -> str:
    if hours < 1.5:
        return "an hour"
    if hours < 36:
        return f"{round(hours)} hours"
    return f"{round(hours / 24)} days"


def describe(rhythm: Rhythm) -> str:
    """Their usual rhythm in a specialist's words."""
    answered = round(rhythm.answer_rate * 10)
    if rhythm.asks - rhythm.pending < 3:
        return (
            f"new: no usual pattern yet (assumed to answer about {answered} in 10, within {_hours(rhythm.usual_hours)})"
        )
    return f"usually replies within {_hours(rhythm.usual_hours)}; answers about {answered} in 10 texts"


def reason(rhythm: Rhythm, first_ask: datetime, now: datetime) -> str:
    """Why this silence is unusual for them, for the flag."""
    texts = "the last text" if rhythm.pending == 1 else f"the last {rhythm.pending} texts"
    days = (now - first_ask).total_seconds() / 86400
    over = f"{days:.0f} days" if days >= 1.5 else "a day"
    return f"Quieter than usual for them: {describe(rhythm)}; no reply to {texts} over {over}"
