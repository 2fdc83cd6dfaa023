"""Phone numbers: anything a UK service might type, stored as E.164."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

# Ofcom reserves 07700 900000-900999 for drama and testing: never a real person,
# so demos and tests use them. phonenumbers does not count them as valid.
OFCOM_DRAMA_PREFIX = "+447700900"


class PhoneError(ValueError):
    pass


def to_e164(raw: str, region: str = "GB") -> str:
    """'07700 900123', '+44 7700 900123', '447700900123' -> '+447700900123'."""
    text = raw.strip()
    if not text:
        raise PhoneError("phone number is empty")
    if text.startswith("44") and not text.startswith("+"):
        text = "+" + text
    elif text.startswith("0044"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise PhoneError(f"not a phone number: {raw!r}") from None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    drama = e164.startswith(OFCOM_DRAMA_PREFIX) and len(e164) == 13
    if not (drama or phonenumbers.is_valid_number(number)):
        raise PhoneError(f"not a valid phone number: {raw!r}")
    return e164


def is_e164(text: str) -> bool:
    """A number a text can be sent to: E.164 exactly as stored ("+" and digits only), and a valid
    number (or an Ofcom drama number). Senders' addresses that are not (short codes, alphanumeric
    names, "+12", "anonymous") are never replied to."""
    if not (text.startswith("+") and text[1:].isascii() and text[1:].isdigit() and 8 <= len(text) <= 16):
        return False
    try:
        return to_e164(text) == text
    except PhoneError:
        return False


def is_mobile(e164: str) -> bool:
    number = phonenumbers.parse(e164, None)
    kind = phonenumbers.number_type(number)
    return kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


@lru_cache(maxsize=4096)  # per process: the same few thousand people text in, and parsing is slow
def normalise_sender(raw: str) -> str:
    """The From of an inbound message, made comparable with stored numbers when possible."""
    try:
        return to_e164(raw)
    except PhoneError:
        return raw.strip()[:40]
