"""Finding a pattern in a clause, and the context in a text that holds a match back."""

from __future__ import annotations

from collections.abc import Sequence

from assistant.engine.understanding.phrases import AnchorIndex, HoldBack, Pattern, Slot, Token

Match = tuple[int, int, frozenset[int]]  # start, end, and the positions the pattern's words took


def _match_at(slots: Sequence[Slot], tokens: Sequence[Token], i: int, j: int, used: tuple[int, ...]) -> Match | None:
    """A match of slots[j:] starting at tokens[i], or None."""
    if j == len(slots):
        return (used[0] if used else i), i, frozenset(used)
    slot = slots[j]
    if slot.end:
        if i == len(tokens):
            return _match_at(slots, tokens, i, j + 1, used)
        return _step_over(slots, tokens, i, j, used)
    if slot.gap:
        for skip in range(slot.gap + 1):
            if i + skip > len(tokens):
                break
            found = _match_at(slots, tokens, i + skip, j + 1, used)
            if found:
                return found
        return None
    if i < len(tokens) and slot.accepts(tokens[i]):
        found = _match_at(slots, tokens, i + 1, j + 1, (*used, i))
        if found:
            return found
    if slot.or_end:
        if i == len(tokens):
            return _match_at(slots, tokens, i, j + 1, used)
    elif slot.optional:
        found = _match_at(slots, tokens, i, j + 1, used)
        if found:
            return found
    return _step_over(slots, tokens, i, j, used)


def _step_over(slots: Sequence[Slot], tokens: Sequence[Token], i: int, j: int, used: tuple[int, ...]) -> Match | None:
    """Inside a match, a filler word ("really", "honestly") where the pattern wants another: skip it."""
    if used and i < len(tokens) and tokens[i].filler:
        return _match_at(slots, tokens, i + 1, j, used)
    return None


def find(pattern: Pattern, tokens: Sequence[Token]) -> Match | None:
    """The first place in a clause where the pattern matches at least one word, or None."""
    first = pattern.slots[0]
    for start, token in enumerate(tokens):
        if not first.optional and not first.accepts(token):
            continue
        found = _match_at(pattern.slots, tokens, start, 0, ())
        if found and found[1] > found[0]:
            return found
    return None


def find_any(patterns: Sequence[Pattern], tokens: Sequence[Token]) -> bool:
    return any(find(p, tokens) for p in could_match(patterns, tokens))


# Each list's index, built once: the lists are the phrase files' own tuples, kept alive here with
# their index so that an id is never another list's.
_INDEXES: dict[int, tuple[Sequence[Pattern], AnchorIndex]] = {}
_INDEXES_KEPT = 1024


def could_match(patterns: Sequence[Pattern], tokens: Sequence[Token]) -> list[Pattern]:
    """Those of the patterns that could match this clause (`Pattern.could_match`), found through
    the list's anchor index rather than by asking each in turn, as every text's context does."""
    built = _INDEXES.get(id(patterns))
    if built is None or built[0] is not patterns:
        if len(_INDEXES) >= _INDEXES_KEPT:  # phrase libraries made again and again (tests) stay bounded
            _INDEXES.clear()
        built = _INDEXES[id(patterns)] = (patterns, AnchorIndex.of(patterns))
    return [patterns[i] for i in built[1].candidates(tokens)]


def found_anywhere(patterns: Sequence[Pattern], clauses: Sequence[Sequence[Token]]) -> bool:
    return any(find_any(patterns, c) for c in clauses)


class WholeText:
    """A text's clauses, and whether each list of context patterns is found anywhere in it: looked
    for once per text, however many matches ask (a danger now, an everyday reason, a writer named)."""

    def __init__(self, clauses: Sequence[Sequence[Token]]) -> None:
        self.clauses = clauses
        self._found: dict[int, bool] = {}

    def has(self, patterns: Sequence[Pattern]) -> bool:
        key = id(patterns)  # the phrase files' own tuples, alive as long as this text is read
        if key not in self._found:
            self._found[key] = found_anywhere(patterns, self.clauses)
        return self._found[key]


def why_held(
    hold: HoldBack,
    pattern: Pattern,
    tokens: Sequence[Token],
    span: Match,
    text: WholeText,
    about_them: bool,
    family: str,
    from_others: bool = False,
) -> str | None:
    """Why a match is set aside (a denial, an idiom, an everyday goodbye, someone else, the past),
    or None to keep it. `about_them`: the text names the person it came from, so someone else as
    the subject is them. `family`: the name of the family whose pattern matched. `from_others`: the
    family reads danger from another person, who is the subject by nature, and an idiom sets it
    aside only when it covers all of its words ("he'll kill me" is the idiom, "if I leave" is not)."""
    start, end, used = span
    if hold.negators and _denied(hold, tokens, start, end, used) and not text.has(hold.denial_undone):
        return "negated"
    for idiom in could_match(hold.benign, tokens):
        if _covers(idiom, tokens, start, end) if from_others else _explains(idiom, hold, tokens, start, end):
            return "idiom"
    # Someone in danger now: nothing is set aside as everyday, someone else's or past.
    if text.has(hold.danger_now):
        return None
    if _everyday(hold, family, text):
        return "everyday"
    # Someone else as the subject, unless the writer says they are texting about the person.
    if (
        not from_others
        and someone_else_is_subject(hold, pattern, tokens, start, end)
        and not about_them
        and not text.has(hold.on_behalf)
    ):
        return "someone else"
    back_anywhere = _comes_back(hold.recurrence, text.clauses, hold.renewal)
    if back_anywhere or _comes_back(hold.recurrence_here, [tokens], hold.renewal):
        return None
    if hold.past and find_any(hold.past, tokens):
        return "in the past"
    if hold.past_anywhere and text.has(hold.past_anywhere):
        return "in the past"
    if _resolved_history(hold, tokens, span, text):
        return "in the past"
    return None


def _resolved_history(hold: HoldBack, tokens: Sequence[Token], span: Match, text: WholeText) -> bool:
    """The words are told in the past tense, some sentence says how long ago, and another that they
    are well now: "tried tae end it a few year ago. ah'm grand noo"."""
    if not (hold.past_tense and hold.resolved_now and hold.long_ago):
        return False
    told_then = any(t.word in hold.past_tense for t in tokens[: span[1]])
    return told_then and text.has(hold.long_ago) and text.has(hold.resolved_now)


def _everyday(hold: HoldBack, family: str, text: WholeText) -> bool:
    """The text gives an everyday reason for this family's words (a goodbye beside a new job), and
    nothing that makes them final."""
    return family in hold.everyday_families and text.has(hold.everyday) and not text.has(hold.everyday_unless)


def _overlaps(pattern: Pattern, tokens: Sequence[Token], start: int, end: int) -> bool:
    """The pattern matches in the clause over some of the words tokens[start:end]."""
    return _overlap(pattern, tokens, start, end) is not None


def _overlap(pattern: Pattern, tokens: Sequence[Token], start: int, end: int) -> Match | None:
    """Where the pattern matches in the clause, if that is over some of the words tokens[start:end]."""
    found = find(pattern, tokens) if pattern.could_match(tokens) else None
    return found if found is not None and found[0] < end and start < found[1] else None


def _explains(idiom: Pattern, hold: HoldBack, tokens: Sequence[Token], start: int, end: int) -> bool:
    """The idiom overlaps the words tokens[start:end] and leaves none of the writer's own words
    (`hold.own`) outside it: "cut myself shaving" explains all of "cut myself", but "killing it at
    work" leaves out the "myself" of "killing it at work and thinking about killing myself"."""
    found = _overlap(idiom, tokens, start, end)
    if found is None:
        return False
    return not any(tokens[i].word in hold.own for i in range(start, end) if not found[0] <= i < found[1])


def _covers(idiom: Pattern, tokens: Sequence[Token], start: int, end: int) -> bool:
    """The idiom matches over all of the words tokens[start:end]."""
    found = _overlap(idiom, tokens, start, end)
    return found is not None and found[0] <= start and end <= found[1]


def _comes_back(recurrence: Sequence[Pattern], clauses: Sequence[Sequence[Token]], renewal: Sequence[Pattern]) -> bool:
    """In these clauses, something says it is back or here now: a recurrence that is not good news
    come back ("I'm working again" says nothing of the past returning; "I cut again" does)."""
    for clause in clauses:
        for pattern in could_match(recurrence, clause):
            at = 0
            while at < len(clause) and pattern.could_match(clause[at:]):
                found = find(pattern, clause[at:])
                if found is None:
                    break
                start, end = at + found[0], at + found[1]
                if not any(_overlaps(good, clause, start, end) for good in renewal):
                    return True
                at = end
    return False


def someone_else_is_subject(hold: HoldBack, pattern: Pattern, tokens: Sequence[Token], start: int, end: int) -> bool:
    """Someone else is the subject of the words: among the first words of the clause ("my mum
    took ..."), and the clause never says "I" up to them."""
    if not hold.others or pattern.about_self:
        return False
    subject = any(_names_another(hold, tokens, k) for k in range(min(start, 3)))
    return subject and not any(t.word in ("i", "me", "myself") for t in tokens[:end])


_POSSESSIVES = frozenset({"my", "his", "her", "our", "their", "the", "a"})


def _names_another(hold: HoldBack, tokens: Sequence[Token], k: int) -> bool:
    """tokens[k] is someone else who may be the clause's subject: not after "since", "about"..."""
    word = tokens[k].word
    if word not in hold.others and word.removesuffix("s") not in hold.others:
        return False
    before = k - 2 if k >= 2 and tokens[k - 1].word in _POSSESSIVES else k - 1
    return before < 0 or tokens[before].word not in hold.not_subject_after


def _denied(hold: HoldBack, tokens: Sequence[Token], start: int, end: int, used: frozenset[int]) -> bool:
    """A denial before the words, or inside them where the pattern skipped a word ("not feeling
    hopeless"), with only filler words between it and the words it denies."""
    for k in range(start, end):
        if k not in used and tokens[k].word in hold.negators and not _not_a_denial(hold, tokens, k):
            return True
    k = start - 1
    while k >= 0 and start - k <= hold.negation_reach:
        stem_k = tokens[k].stem
        if tokens[k].word in hold.negators:
            return not _not_a_denial(hold, tokens, k)
        if hold.negation_fillers and stem_k not in hold.negation_fillers:
            return False
        k -= 1
    return False


def _not_a_denial(hold: HoldBack, tokens: Sequence[Token], k: int) -> bool:
    """The negator at k is part of a condition ("if I don't ..."), so it denies nothing."""
    return any(_overlaps(pattern, tokens, k, k + 1) for pattern in hold.not_denials)
