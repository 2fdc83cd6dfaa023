"""What compiling a locale's phrase files found last time, kept on disk under a digest of those files
and of the code that compiles them, so a process starting on the same files need not check every
example and train the classifier again (about 11 of a start's 15 s of CPU)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import assistant.engine.understanding as understanding
from assistant.engine.understanding import CompiledBefore, RiskModel

log = logging.getLogger(__name__)

_FORMAT = 1
_KEEP = 8  # entries a locale keeps: the newest, for the versions of the files still in use


def directory(setting: str) -> Path | None:
    """The folder the setting names: "" for the default one, "off" for none."""
    if setting.strip().lower() == "off":
        return None
    return Path(setting) if setting.strip() else default_directory()


def default_directory() -> Path:
    """systemd's CacheDirectory=, else the user's cache folder (XDG)."""
    if os.environ.get("CACHE_DIRECTORY"):
        return Path(os.environ["CACHE_DIRECTORY"].split(":")[0])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "participant-contact-assistant"


def digest(folder: Path) -> str:
    """The locale's every file (phrase files, classifier settings, training texts) and the source of
    the code that reads and compiles them: any change to either is another digest."""
    hashed = hashlib.sha256(f"{_FORMAT} {sys.version}".encode())
    code = Path(understanding.__file__).parent
    sources = [*sorted(code.rglob("*.py")), Path(__file__).with_name("library.py")]
    for base, paths in ((folder, sorted(p for p in folder.rglob("*") if p.is_file())), (code, sources)):
        for path in paths:
            hashed.update(f"\0{path.relative_to(base) if path.is_relative_to(base) else path.name}\0".encode())
            hashed.update(path.read_bytes())
    return hashed.hexdigest()


def _entry(directory: Path, locale: str, key: str) -> Path:
    return directory / f"phrases-{locale}-{key}.json"


def recall(directory: Path | None, locale: str, key: str) -> CompiledBefore | None:
    """What the compile with this digest found, or None (never kept, unreadable or not this digest)."""
    if directory is None:
        return None
    path = _entry(directory, locale, key)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != _FORMAT or data.get("digest") != key:
            raise ValueError("another version's entry")
        return CompiledBefore(model=_model(data["model"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        log.warning("phrase cache %s unreadable (%s): compiling again", path, error)
        return None


def keep(directory: Path | None, locale: str, key: str, model: RiskModel | None) -> None:
    """Keep what this compile found (written whole or not at all); older entries beyond a few go."""
    if directory is None:
        return
    model_data = None
    if model is not None:
        model_data = {"weights": dict(model.weights), "bias": model.bias, "threshold": model.threshold}
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".phrases-", suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump({"format": _FORMAT, "digest": key, "model": model_data}, out)
        os.replace(temporary, _entry(directory, locale, key))
        older = sorted(directory.glob(f"phrases-{locale}-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in older[_KEEP:]:
            stale.unlink(missing_ok=True)
    except OSError as error:  # a read-only or full disk: the next start compiles again, nothing else
        log.info("phrase cache not kept in %s: %s", directory, error)


def _model(data: Any) -> RiskModel | None:
    if data is None:
        return None
    weights = {str(feature): float(weight) for feature, weight in data["weights"].items()}
    bias, threshold = float(data["bias"]), float(data["threshold"])
    if not all(math.isfinite(w) for w in [*weights.values(), bias, threshold]):
        raise ValueError("a weight that is not a number")
    return RiskModel(weights=weights, bias=bias, threshold=threshold)
