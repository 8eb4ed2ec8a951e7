"""The offline token estimate, used when no API can count (and for the rate limiter's costs).

Ratios by script, the same as ``docmill.documents.analysis.tokens`` (which chunks
documents; this package may not import it, so the two are kept equal by hand and a
unit test pins the numbers):

- Latin script and everything else: 4 characters per token;
- Cyrillic: 2.5 characters per token;
- CJK ideographs, kana and Hangul: 1 character per token.

Calibration: the Messages API emulator counts ``ceil(len / 4)`` per text piece plus
``MESSAGE_OVERHEAD_TOKENS`` per message, so for Latin text ``estimate_request_tokens``
equals the emulator's ``count_tokens`` exactly. Against real Claude tokenizers the
4-characters rule fits English prose within about 10 %; code, numbers, tables and
URLs tokenise denser (about 3 characters per token), so the estimate undercounts
them by up to a quarter. Where precision matters (budgets near a limit) ask the
provider's ``count_tokens``, which uses the API's endpoint.
"""

from __future__ import annotations

import math
import re

CHARS_PER_TOKEN = 4.0
CYRILLIC_CHARS_PER_TOKEN = 2.5
CJK_CHARS_PER_TOKEN = 1.0
MESSAGE_OVERHEAD_TOKENS = 3
"""Tokens the API adds per message (role markers), as the emulator counts them."""

_NOT_CYRILLIC = re.compile(r"[^\u0400-\u04ff\u0500-\u052f]+")
_NOT_CJK = re.compile(r"[^\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+")


def estimate_tokens(text: str) -> int:
    """Tokens of one text by the ratios above: 0 for empty text, else at least 1."""
    if not text:
        return 0
    if text.isascii():
        return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))
    cyrillic = len(_NOT_CYRILLIC.sub("", text))
    cjk = len(_NOT_CJK.sub("", text))
    other = len(text) - cyrillic - cjk
    estimate = other / CHARS_PER_TOKEN + cyrillic / CYRILLIC_CHARS_PER_TOKEN + cjk / CJK_CHARS_PER_TOKEN
    return max(1, math.ceil(estimate))


def estimate_request_tokens(system: str, prompt: str) -> int:
    """Input tokens of a request with a system prompt and one user turn."""
    return estimate_tokens(system) + MESSAGE_OVERHEAD_TOKENS + estimate_tokens(prompt)
