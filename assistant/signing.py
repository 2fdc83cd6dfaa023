"""Signing webhook requests the way Twilio does, with the SDK's own code (simulator, tests, benchmarks)."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator


def twilio_signature(url: str, params: Mapping[str, str], auth_token: str) -> str:
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))
