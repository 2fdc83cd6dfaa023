"""Everything a unit of work needs, built once per process from the settings."""

from __future__ import annotations

import gc
from dataclasses import dataclass, replace
from pathlib import Path

import sqlalchemy as sa

from assistant.clock import Clock, SystemClock
from assistant.config import Settings
from assistant.content import phrase_cache
from assistant.content.library import Catalog, FlowLibrary, PhraseLibrary, check_numbered_reading, phrase_library
from assistant.db.units import make_engine
from assistant.transports import Transport, make_transport


@dataclass
class Runtime:
    settings: Settings
    engine: sa.Engine
    catalog: Catalog
    flows: FlowLibrary
    transport: Transport
    clock: Clock
    compiled_phrases: PhraseLibrary | None = None

    @property
    def phrases(self) -> PhraseLibrary:
        """The compiled phrase files: at start for the web app and the scheduler, which refuse to start
        on bad ones; a one-off command compiles them only if it reads a text (seconds of CPU)."""
        if self.compiled_phrases is None:
            self.compiled_phrases = _phrases(self.settings, self.flows)
        return self.compiled_phrases

    def status_callback_url(self) -> str:
        return self.settings.public_url.rstrip("/") + "/twilio/status"


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    transport: Transport | None = None,
    engine: sa.Engine | None = None,
    phrases_now: bool = True,
) -> Runtime:
    """`phrases_now=False`: leave compiling the phrase files until a text is read (one-off commands)."""
    settings.validate()
    if settings.console_log is None and settings.database_url.startswith("sqlite:///"):
        db_path = sa.make_url(settings.database_url).database
        if db_path:
            settings = replace(settings, console_log=Path(db_path).with_suffix(".sms.jsonl"))
    catalog = Catalog(settings.messages_dir)
    flows = FlowLibrary(settings.flows_dir, catalog)
    return Runtime(
        settings=settings,
        engine=engine
        or make_engine(
            settings.database_url,
            lock_timeout=settings.db_lock_timeout,
            statement_timeout=settings.db_statement_timeout,
        ),
        catalog=catalog,
        flows=flows,
        compiled_phrases=_phrases(settings, flows) if phrases_now else None,
        transport=transport or make_transport(settings),
        clock=clock or SystemClock(),
    )


def _phrases(settings: Settings, flows: FlowLibrary) -> PhraseLibrary:
    phrases = phrase_library(settings.phrases_dir, phrase_cache.directory(settings.phrase_cache_dir))
    check_numbered_reading(phrases, flows)
    return phrases


def settle_process() -> None:
    """Set what a ready process holds for its whole life (the compiled phrases and flows, the ORM's
    mappings: about a million objects) aside from the garbage collector, which otherwise walks all
    of it again on every full collection. Called once, where a long-running process is ready: a web
    worker (deploy/gunicorn.conf.py), the scheduler, `assistant run`."""
    gc.collect()
    gc.freeze()
