"""Turning text bytes into ``str``: byte-order marks first, then UTF-8, then a guess.

The guess is charset-normalizer's, which tells cp1251 from latin-1 from KOI8-R by how
plausible the decoded text is. Text whose decoding is full of control characters is not
text, and ``decode_text`` returns ``None`` for it so detection can call it binary.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

import charset_normalizer

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Share of control characters (other than whitespace) above which decoded bytes are binary.
_MAX_CONTROL_RATIO = 0.01
_WHITESPACE_CONTROLS = frozenset("\t\n\r\f\v")


@dataclass(frozen=True)
class DecodedText:
    text: str
    encoding: str


def _control_ratio(text: str) -> float:
    sample = text[:20_000]
    if not sample:
        return 0.0
    controls = sum(1 for ch in sample if ch < " " and ch not in _WHITESPACE_CONTROLS)
    return controls / len(sample)


def decode_text(data: bytes) -> DecodedText | None:
    """Decode ``data`` as text, or return ``None`` when it does not look like text."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                return None
            return DecodedText(text, encoding.removesuffix("-sig")) if _plausible(text) else None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return DecodedText(text, "utf-8") if _plausible(text) else None
    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        return None
    text = str(best)
    return DecodedText(text, best.encoding) if _plausible(text) else None


def _plausible(text: str) -> bool:
    return "\x00" not in text[:20_000] and _control_ratio(text) <= _MAX_CONTROL_RATIO
