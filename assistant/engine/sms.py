"""SMS text facts: the GSM-7 alphabet and how many segments a message takes."""

from __future__ import annotations

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters from the extension table take two septets each.
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")
GSM7 = GSM7_BASIC | GSM7_EXTENDED


def is_gsm7(text: str) -> bool:
    return GSM7.issuperset(text)


def segment_count(text: str) -> int:
    """Segments Twilio will bill: GSM-7 160/153, otherwise UCS-2 70/67."""
    if is_gsm7(text):
        length = len(text) + sum(text.count(c) for c in GSM7_EXTENDED.intersection(text))
        single, multi = 160, 153
    else:
        # UCS-2 counts UTF-16 code units: an emoji is two.
        length = len(text.encode("utf-16-le")) // 2
        single, multi = 70, 67
    if length <= single:
        return 1
    return -(-length // multi)
