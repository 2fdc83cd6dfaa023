"""The shipped phrase knowledge, compiled once for every test here (it trains the classifier), and as
the app starts: through the kept compile (`phrase_cache`). `test_reader.py` compiles it afresh."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.content import phrase_cache
from assistant.content.library import phrase_library
from assistant.engine.understanding import Phrases

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"


@pytest.fixture(scope="session")
def phrases() -> Phrases:
    return phrase_library(ROOT / "phrases", phrase_cache.directory("")).get("en-GB")


def rows(name: str, fields: int) -> list[list[str]]:
    found = []
    for number, line in enumerate((CORPUS / name).read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split("\t")
        assert len(parts) == fields, f"{name}:{number}: expected {fields} tab-separated fields"
        found.append(parts)
    return found
