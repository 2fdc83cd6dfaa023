"""Content that is not code: flow definitions from flows/ and wording from messages/."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from .engine import Flow, FlowError, load_flow

FALLBACK_LOCALE = "en-GB"


class Catalog:
    """Message templates at messages/<locale>/<flow>/<key>.txt, rendered strictly."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # Plain text, not HTML: no autoescaping. Participant text is only ever a
        # variable, never part of a template, so it cannot inject template code.
        self.env = Environment(
            loader=FileSystemLoader(str(directory)),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
        )

    def locales(self) -> list[str]:
        return sorted(p.name for p in self.directory.iterdir() if p.is_dir())

    def keys(self, locale: str = FALLBACK_LOCALE) -> set[str]:
        base = self.directory / locale
        return {p.relative_to(base).with_suffix("").as_posix() for p in base.rglob("*.txt")}

    def template_name(self, key: str, locale: str) -> str:
        if (self.directory / locale / f"{key}.txt").is_file():
            return f"{locale}/{key}.txt"
        return f"{FALLBACK_LOCALE}/{key}.txt"

    def render(self, key: str, variables: Mapping[str, Any], locale: str = FALLBACK_LOCALE) -> str:
        template = self.env.get_template(self.template_name(key, locale))
        return template.render(**variables).strip()


class FlowLibrary:
    """Every flow in flows/ (and older versions in flows/archive/), checked on load."""

    def __init__(self, directory: Path, catalog: Catalog) -> None:
        self.directory = directory
        self.current: dict[str, Flow] = {}
        self.versions: dict[tuple[str, int], Flow] = {}
        keys = catalog.keys(FALLBACK_LOCALE)
        files = sorted(directory.glob("*.toml")) + sorted(directory.glob("archive/*.toml"))
        for path in files:
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise FlowError(f"{path}: {exc}") from None
            flow_id = str(data.get("id", ""))
            flow_keys = {k.split("/", 1)[1] for k in keys if k.startswith(flow_id + "/")}
            flow = load_flow(data, source=str(path), message_keys=flow_keys)
            if (flow.id, flow.version) in self.versions:
                raise FlowError(f"{path}: {flow.id} version {flow.version} is defined twice")
            self.versions[(flow.id, flow.version)] = flow
            if path.parent == directory:
                if flow.id in self.current:
                    raise FlowError(f"{path}: flow {flow.id!r} is defined twice")
                self.current[flow.id] = flow

    def get(self, flow_id: str, version: int | None = None) -> Flow | None:
        if version is None:
            return self.current.get(flow_id)
        return self.versions.get((flow_id, version))
