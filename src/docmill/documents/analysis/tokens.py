"""Counting tokens offline, behind a protocol so a real tokenizer can replace the estimate.

``EstimatingTokenCounter`` uses rule-of-thumb ratios for the BPE tokenizers of current
LLMs (Claude, GPT-4-class) on business prose:

- Latin-script text and everything else: about 4 characters per token;
- Cyrillic: about 2.5 characters per token (Cyrillic words split into more pieces);
- CJK ideographs and kana: about 1 character per token.

The estimate is a weighted character count, so counting the parts of a text and adding
them never undercounts the whole by more than one token per join; chunking relies on
that to stay within its budget.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Protocol

_NOT_CYRILLIC = re.compile(r"[^\u0400-\u04ff\u0500-\u052f]+")
_NOT_CJK = re.compile(r"[^\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+")


class TokenCounter(Protocol):
    """Anything that can say how many tokens a text costs for the chosen model."""

    def count(self, text: str) -> int: ...


@dataclass(frozen=True)
class EstimatingTokenCounter:
    """Offline estimate by script; see the module docstring for the ratios."""

    chars_per_token: float = 4.0
    cyrillic_chars_per_token: float = 2.5
    cjk_chars_per_token: float = 1.0

    def count(self, text: str) -> int:
        if not text:
            return 0
        if text.isascii():
            return max(1, math.ceil(len(text) / self.chars_per_token))
        cyrillic = len(_NOT_CYRILLIC.sub("", text))
        cjk = len(_NOT_CJK.sub("", text))
        other = len(text) - cyrillic - cjk
        estimate = (
            other / self.chars_per_token
            + cyrillic / self.cyrillic_chars_per_token
            + cjk / self.cjk_chars_per_token
        )
        return max(1, math.ceil(estimate))
