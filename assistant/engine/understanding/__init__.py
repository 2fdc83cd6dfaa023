"""Reading one inbound text: every signal in it, and the words that triggered each.

Pure: the phrase knowledge arrives as data (phrases/<locale>/*.toml, compiled by
`compile_phrases`), the text and the waiting question arrive as arguments. It imports the
standard library and the engine's own flow and text modules only.

How a text is read:
1. Normalised the way people text: case, accents, apostrophes, punctuation, letters
   held down ("dieeee"), text-speak and abbreviations ("kms", "wanna", "u"),
   misspellings of the words the patterns use (edit distance on longer words), and
   word forms ("harming", "harmed" and "harm" share one stem).
2. Cut into clauses at punctuation and at words that turn a sentence ("but").
3. Every pattern of every signal is tried on every clause. A pattern is a sequence of
   words, alternatives (a|b), word classes (@self), optional words (word?), gaps
   (... up to three words) and clause ends ($).
4. A match may be held back by its clause's context: negation just before it ("not
   suicidal"), another person as the subject ("my mum took an overdose"), the past
   ("used to ... years ago", unless something says it is back), or a benign idiom
   overlapping it ("cut myself shaving"). For risk the phrase files hold back only
   what the labelled corpus shows to be safe: when in doubt, it is a signal.
5. Where no pattern reads risk, a classifier trained on labelled texts may still read it.

The modules, in the order a text meets them: `words` (plain letters, stems, spelling
distance), `tokens` (clauses and spelling correction), `patterns` (the pattern language),
`matching` (finding a pattern, and hold-backs), `classifier` (the risk model), `reader`
(`read` and `answer_to`) and `compiler` (`compile_phrases`). `phrases` holds the compiled types.
"""

from assistant.engine.understanding.classifier import RiskModel, hash_text, train_risk_model
from assistant.engine.understanding.compiler import CompiledBefore, compile_phrases
from assistant.engine.understanding.phrases import SIGNALS, Family, HoldBack, Pattern, Phrases
from assistant.engine.understanding.reader import HeldBack, Reading, Signal, answer_to, read
from assistant.engine.understanding.words import simplify, stem

__all__ = [
    "SIGNALS",
    "CompiledBefore",
    "Family",
    "HeldBack",
    "HoldBack",
    "Pattern",
    "Phrases",
    "Reading",
    "RiskModel",
    "Signal",
    "answer_to",
    "compile_phrases",
    "hash_text",
    "read",
    "simplify",
    "stem",
    "train_risk_model",
]
