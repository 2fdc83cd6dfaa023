"""A compile of the phrase files kept for the next start: used only for the very same files and code,
never trusted when damaged, and never keeping a contradiction the files now hold."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from assistant.content import phrase_cache
from assistant.content.library import PhraseLibrary
from assistant.engine import FlowError
from assistant.engine.understanding import compile_phrases, read

RISK_FILE = """signal = "risk"
[families.ending]
patterns = ["end it all", "no way out"]
examples = ["I want to end it all"]
not_examples = ["the end of the road works"]
"""


def small_phrases(root: Path) -> Path:
    folder = root / "phrases" / "en-GB"
    (folder / "training").mkdir(parents=True)
    (folder / "risk.toml").write_text(RISK_FILE, encoding="utf-8")
    risk = ["I want to end it all", "no way out for me", "can't go on, want to end it", "want it to end"]
    ordinary = ["see you at the end of the week", "the way out is by the lifts", "I can go on Tuesday", "want a lift?"]
    (folder / "training" / "risk.tsv").write_text("".join(f"d\t{t}\n" for t in risk), encoding="utf-8")
    (folder / "training" / "not_risk.tsv").write_text("".join(f"o\t{t}\n" for t in ordinary), encoding="utf-8")
    return folder.parent


def entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("phrases-en-GB-*.json"))


def test_a_second_start_on_the_same_files_takes_the_kept_model_and_skips_the_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    phrases, cache = small_phrases(tmp_path), tmp_path / "cache"
    first = PhraseLibrary(phrases, cache).get("en-GB")
    assert len(entries(cache)) == 1 and first.model is not None
    assert oct(entries(cache)[0].stat().st_mode & 0o777) == "0o600"

    import assistant.engine.understanding.compiler as compiler

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained or checked again")

    monkeypatch.setattr(compiler, "train_risk_model", never)
    monkeypatch.setattr(compiler, "_check_examples", never)
    second = PhraseLibrary(phrases, cache).get("en-GB")
    assert second.model is not None
    assert (second.model.weights, second.model.bias, second.model.threshold) == (
        first.model.weights,
        first.model.bias,
        first.model.threshold,
    )
    for text in ["I want to end it all", "no way out", "see you at the end of the week", "want to end it"]:
        assert read(text, second) == read(text, first)


def test_changed_files_are_compiled_and_checked_again(tmp_path: Path) -> None:
    phrases, cache = small_phrases(tmp_path), tmp_path / "cache"
    PhraseLibrary(phrases, cache)
    # The file now contradicts itself: a kept compile of the old file must not hide that.
    risk = phrases / "en-GB" / "risk.toml"
    risk.write_text(RISK_FILE.replace('"the end of the road works"', '"end it all, the diet"'), encoding="utf-8")
    with pytest.raises(FlowError, match="end it all, the diet"):
        PhraseLibrary(phrases, cache)
    # A new training text is a new model, kept beside the old one.
    risk.write_text(RISK_FILE, encoding="utf-8")
    with (phrases / "en-GB" / "training" / "risk.tsv").open("a", encoding="utf-8") as out:
        out.write("d\tnothing left, no way out now\n")
    again = PhraseLibrary(phrases, cache).get("en-GB")
    assert len(entries(cache)) == 2
    fresh = PhraseLibrary(phrases, None).get("en-GB")
    assert again.model is not None and fresh.model is not None
    assert again.model.weights == fresh.model.weights


def test_the_digest_covers_the_compiling_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    phrases = small_phrases(tmp_path)
    before = phrase_cache.digest(phrases / "en-GB")
    assert phrase_cache.digest(phrases / "en-GB") == before
    code = tmp_path / "understanding"
    code.mkdir()
    (code / "__init__.py").write_text("# another version of the reading code\n", encoding="utf-8")
    monkeypatch.setattr(phrase_cache.understanding, "__file__", str(code / "__init__.py"))
    assert phrase_cache.digest(phrases / "en-GB") != before


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # cut short
        lambda text: text.replace('"bias": ', '"bias": "x', 1),  # not JSON
        lambda text: json.dumps({**json.loads(text), "digest": "0" * 64}),  # another version's
        lambda text: json.dumps({**json.loads(text), "model": {"weights": {"a": "NaN"}, "bias": 0, "threshold": 0}}),
    ],
)
def test_a_damaged_entry_is_never_used(tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: object) -> None:
    phrases, cache = small_phrases(tmp_path), tmp_path / "cache"
    fresh = PhraseLibrary(phrases, cache).get("en-GB")
    [entry] = entries(cache)
    entry.write_text(damage(entry.read_text(encoding="utf-8")), encoding="utf-8")  # type: ignore[operator]
    with caplog.at_level(logging.WARNING, logger="assistant.content.phrase_cache"):
        again = PhraseLibrary(phrases, cache).get("en-GB")
    assert "compiling again" in caplog.text
    assert again.model is not None and fresh.model is not None
    assert again.model.weights == fresh.model.weights
    assert json.loads(entry.read_text(encoding="utf-8"))["model"]["weights"] == fresh.model.weights  # mended


def test_a_cache_folder_that_cannot_be_written_only_costs_time(tmp_path: Path) -> None:
    phrases = small_phrases(tmp_path)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder", encoding="utf-8")
    library = PhraseLibrary(phrases, blocked / "cache")
    assert library.get("en-GB").model is not None


def test_the_setting_names_the_folder_or_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_DIRECTORY", str(tmp_path / "systemd"))
    assert phrase_cache.directory("") == tmp_path / "systemd"
    assert phrase_cache.directory("off") is None
    assert phrase_cache.directory(str(tmp_path / "mine")) == tmp_path / "mine"
    monkeypatch.delenv("CACHE_DIRECTORY")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert phrase_cache.directory("") == tmp_path / "xdg" / "participant-contact-assistant"


def test_compile_phrases_without_a_previous_compile_still_checks_examples() -> None:
    contradiction = {
        "risk.toml": {"signal": "risk", "families": {"f": {"patterns": ["end it"], "examples": ["hello"]}}}
    }
    with pytest.raises(FlowError, match="hello"):
        compile_phrases(contradiction, locale="en-GB")
