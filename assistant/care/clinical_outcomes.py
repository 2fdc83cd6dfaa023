"""NHS Talking Therapies outcome definitions on paired PHQ-9 and GAD-7 scores, per scale and combined.

Pure: no database, no clock. A pair is the first and the last complete sitting of a person; a
sitting counts for the combined outcome only when both scales were completed in it, so recovery
is never judged on one scale because the other is missing.

- caseness: PHQ-9 10 or more (depression), GAD-7 8 or more (anxiety); combined: either scale.
- recovery: only for those at caseness at the first sitting (for anyone else it is not
  applicable, never "not recovered"); recovered when below caseness at the last (combined:
  below both thresholds).
- reliable improvement: a fall of at least the reliable change (PHQ-9 6, GAD-7 4); combined: on
  either scale, and neither scale reliably worse.
- reliable deterioration: a rise of at least the reliable change; combined: on either scale, and
  neither scale reliably better (so improvement, deterioration and no reliable change are
  exclusive, as NHS Digital publishes them).
- reliable recovery: recovery and reliable improvement together; not applicable where recovery is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

SCALES = ("phq9", "gad7")
CASENESS = {"phq9": 10, "gad7": 8}
RELIABLE_CHANGE = {"phq9": 6, "gad7": 4}
COMBINED = "combined"


@dataclass(frozen=True)
class ClinicalOutcome:
    """One scale's change between a participant's first and last complete sittings."""

    scale: str  # phq9, gad7 or combined
    first: dict[str, int]
    last: dict[str, int]
    caseness_first: bool
    caseness_last: bool
    recovery: bool | None  # None: not applicable (not at caseness at the first sitting)
    reliable_improvement: bool
    reliable_deterioration: bool
    reliable_recovery: bool | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _outcome(scale: str, first: Mapping[str, int], last: Mapping[str, int]) -> ClinicalOutcome:
    scales = [s for s in SCALES if s in first and s in last]
    down = [s for s in scales if first[s] - last[s] >= RELIABLE_CHANGE[s]]
    up = [s for s in scales if last[s] - first[s] >= RELIABLE_CHANGE[s]]
    caseness_first = any(first[s] >= CASENESS[s] for s in scales)
    caseness_last = any(last[s] >= CASENESS[s] for s in scales)
    improvement = bool(down) and not up
    recovery = (not caseness_last) if caseness_first else None
    return ClinicalOutcome(
        scale=scale,
        first={s: first[s] for s in scales},
        last={s: last[s] for s in scales},
        caseness_first=caseness_first,
        caseness_last=caseness_last,
        recovery=recovery,
        reliable_improvement=improvement,
        reliable_deterioration=bool(up) and not down,
        reliable_recovery=(recovery and improvement) if recovery is not None else None,
    )


def scale_outcome(scale: str, first: int, last: int) -> ClinicalOutcome:
    return _outcome(scale, {scale: first}, {scale: last})


def combined_outcome(first: Mapping[str, int], last: Mapping[str, int]) -> ClinicalOutcome | None:
    """Both scales at both sittings, or nothing."""
    if not all(s in first and s in last for s in SCALES):
        return None
    return _outcome(COMBINED, first, last)


@dataclass(frozen=True)
class Score:
    """One complete PHQ-9 or GAD-7 result and the sitting it belongs to."""

    instrument: str
    total: int
    sitting: Any  # anything hashable naming the sitting (its start time, or its run)
    at: datetime | None


def sittings(scores: Iterable[Score]) -> list[dict[str, int]]:
    """Complete PHQ-9/GAD-7 scores grouped by sitting, in the order the sittings ended."""
    grouped: dict[Any, dict[str, int]] = {}
    times: dict[Any, list[datetime]] = {}
    for score in scores:
        if score.instrument not in SCALES:
            continue
        grouped.setdefault(score.sitting, {})[score.instrument] = score.total
        times.setdefault(score.sitting, []).extend([score.at] if score.at is not None else [])
    position = {key: n for n, key in enumerate(grouped)}
    order = sorted(grouped, key=lambda k: (not times[k], max(times[k], default=datetime.min), position[k]))
    return [grouped[k] for k in order]


def paired_outcomes(scores: Iterable[Score]) -> dict[str, ClinicalOutcome]:
    """Outcomes per scale (first and last sitting with that scale complete) and combined (first
    and last sitting with both complete). A scale with fewer than two sittings has none."""
    found = sittings(scores)
    result: dict[str, ClinicalOutcome] = {}
    for scale in SCALES:
        with_scale = [s[scale] for s in found if scale in s]
        if len(with_scale) >= 2:
            result[scale] = scale_outcome(scale, with_scale[0], with_scale[-1])
    both = [s for s in found if all(k in s for k in SCALES)]
    if len(both) >= 2 and (combined := combined_outcome(both[0], both[-1])) is not None:
        result[COMBINED] = combined
    return result
