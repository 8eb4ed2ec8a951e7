"""Getting one JSON object out of a model's answer, repairing the usual slips.

Models asked for "JSON only" still sometimes wrap it in a code fence, add a sentence
before or after, leave a trailing comma, or stop mid-object at ``max_tokens``.
``extract_json_object`` takes the first JSON object in the text and fixes those.
"""

from __future__ import annotations

import json
import re
from typing import Any

JSON_INSTRUCTION = "Respond with JSON only: one JSON object, no prose before or after it and no code fences."

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})


def with_json_instruction(system: str) -> str:
    """The system prompt with the JSON-only instruction appended."""
    return f"{system.rstrip()}\n\n{JSON_INSTRUCTION}" if system.strip() else JSON_INSTRUCTION


def _first_object(text: str) -> dict[str, Any] | None:
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _close_truncated(text: str) -> str:
    """Close an object cut off mid-way: end an open string, drop a dangling key, close brackets."""
    stack: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]" and stack:
            stack.pop()
    repaired = text + ('"' if in_string else "")
    repaired = re.sub(r',\s*"[^"]*"\s*:?\s*$', "", repaired)  # a key without its value
    repaired = re.sub(r"[,:]\s*$", "", repaired)
    return repaired + "".join(reversed(stack))


def extract_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text``, repaired if needed; None when there is none."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        found = _first_object(candidate)
        if found is not None:
            return found
    start = text.find("{")
    if start < 0:
        return None
    body = text[start:].translate(_SMART_QUOTES)
    for attempt in (body, _TRAILING_COMMA.sub(r"\1", body)):
        found = _first_object(attempt)
        if found is not None:
            return found
    repaired = _TRAILING_COMMA.sub(r"\1", _close_truncated(body.rstrip().rstrip("`").rstrip()))
    return _first_object(_TRAILING_COMMA.sub(r"\1", repaired))
