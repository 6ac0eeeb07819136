"""How many SMS segments a text takes, and in which encoding (3GPP TS 23.038).

A text made only of GSM-7 characters goes as GSM-7: 160 characters in one SMS, 153 per segment
of a longer one, with the extension characters (`€ [ ] { } | ^ ~ \\` and form feed) counting
twice.  Any other character (Japanese, most emoji, `—`, curly quotes) sends the whole text as
UCS-2: 70 UTF-16 code units in one SMS, 67 per segment (an emoji outside the BMP counts twice).
"""

from __future__ import annotations

import attrs

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE = {"GSM-7": 160, "UCS-2": 70}
PER_SEGMENT = {"GSM-7": 153, "UCS-2": 67}


@attrs.frozen
class SmsSize:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int

    def describe(self) -> str:
        return f"{self.units} {self.encoding} {'characters' if self.encoding == 'GSM-7' else 'code units'}, " \
               f"{self.segments} segment{'s' if self.segments != 1 else ''}"


def sms_size(text: str) -> SmsSize:
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        encoding, units = "GSM-7", sum(2 if c in GSM7_EXTENSION else 1 for c in text)
    else:
        encoding, units = "UCS-2", len(text.encode("utf-16-le")) // 2
    if units <= SINGLE[encoding]:
        return SmsSize(encoding, units, 1 if units else 0)
    return SmsSize(encoding, units, -(-units // PER_SEGMENT[encoding]))


def first_non_gsm(text: str) -> str | None:
    """The first character that forces UCS-2, to point at in an error message."""
    return next((c for c in text if c not in GSM7_BASIC and c not in GSM7_EXTENSION), None)
