"""Service settings (service admins)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from assistant.db.models import (
    Service,
)
from assistant.db.service_settings import ServiceSettings, duty_contact_problem
from assistant.web.common import (
    me,
    now,
    roles,
    unit,
)

bp = Blueprint("admin", __name__)


def _field_label(name: str) -> str:
    from assistant.contact.settings_change import LABELS

    return LABELS.get(name, name)


def _plain(message: str) -> str:
    """A validation message in the page's words: field names become their labels."""
    from assistant.contact.settings_change import LABELS

    for name in sorted(LABELS, key=len, reverse=True):
        message = message.replace(name, f"'{LABELS[name]}'")
    return message[:1].upper() + message[1:]


def _settings_form(current: ServiceSettings) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """Changed values, parse errors per field, and the text as typed (to show again)."""
    from assistant.contact.settings_change import CHOICES, KINDS, parse_value
    from assistant.db.service_settings import RULES

    form = request.form
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    typed: dict[str, str] = {}
    for name, kind in KINDS.items():
        if name == "rules_off":
            on = set(form.getlist("rules_on"))
            value: Any = tuple(rule for rule in RULES if rule not in on)
        elif name == "questionnaire_instruments":
            chosen = set(form.getlist(name))
            value = tuple(key for key, _ in CHOICES[name] if key in chosen)
        elif kind == "bool":
            value = form.get(name) == "yes"
        else:
            typed[name] = form.get(name, "")[:300]
            try:
                value = parse_value(name, typed[name])
            except ValueError as exc:
                errors[name] = _plain(f"{name}: {exc}")
                continue
        if value != getattr(current, name):
            values[name] = value
    return values, errors, typed


def _field_errors(found: dict[str, str]) -> dict[str, str]:
    return {k: _plain(v if k in v else f"{k}: {v}") for k, v in found.items()}


@bp.route("/settings", methods=["GET", "POST"])
@roles("service_admin")
def settings_page() -> Any:
    from assistant.contact.settings_change import CHOICES, GROUPS, SettingsError, change_settings, check

    errors: dict[str, str] = {}
    typed: dict[str, str] = {}
    with unit() as db:
        service = db.get(Service, me().service_id)
        if service is None:
            abort(404)
        current = ServiceSettings.from_json(service.settings)
        shown = current
        if request.method == "POST":
            values, errors, typed = _settings_form(current)
            if errors:  # the fields that did parse are checked too, so every mistake shows at once
                try:
                    check(current, values)
                except SettingsError as exc:
                    errors |= _field_errors(exc.errors)
            else:
                try:
                    changed = change_settings(db, service, values, by=me().email, now=now())
                except SettingsError as exc:
                    errors = _field_errors(exc.errors)
                else:
                    if changed:
                        flash(
                            "Settings saved: "
                            + "; ".join(
                                # The form lists rules that are on; the setting holds those turned off.
                                f"{'Rules turned off' if k == 'rules_off' else _field_label(k)} "
                                f"{_show(old)} to {_show(new)}"
                                for k, (old, new) in changed.items()
                            )
                            + "."
                        )
                    else:
                        flash("Nothing changed.")
                    return redirect(url_for("admin.settings_page"))
            # Show the page as the admin filled it in, with each problem beside its field.
            try:
                shown = replace_settings(current, values)
            except (TypeError, ValueError):
                shown = current
        text = {name: _show(value) for name, value in shown.to_json().items()} | typed
        missing = duty_contact_problem(current)
    page = render_template(
        "settings.html",
        groups=GROUPS,
        choices=CHOICES,
        settings=shown,
        text=text,
        errors=errors,
        missing=_plain(missing) if missing else None,
    )
    return page, (400 if errors else 200)


def replace_settings(current: ServiceSettings, values: dict[str, Any]) -> ServiceSettings:
    from dataclasses import replace

    return replace(current, **values)


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value) if value != "" else "none"
