"""Deterministic replies and offline token estimates for the Messages API emulator.

Token estimate (used by ``count_tokens`` *and* ``usage.input_tokens``, so the two agree):
every text piece costs ``ceil(len(text) / 4)`` tokens; the pieces are the system prompt,
each message's text (non-text blocks count as their JSON, except ``image`` / ``document``
blocks, a flat ``MEDIA_BLOCK_TOKENS`` each) and the JSON of ``tools``; each message adds
``MESSAGE_OVERHEAD_TOKENS``. Output tokens are ``max(1, ceil(len(reply) / 4))``.

Reply text is a pure function of the last user message (its SHA-256 ``digest``)::

    Echo: <first 8 words of the last user message>
    Digest: <first 16 hex digits of the digest>
    <8 to 39 filler words chosen by the digest>.

When the request asks for JSON (``output_config.format`` of type ``json_schema``, or the
system prompt / last user message says "respond with JSON", "return JSON", "JSON schema"…)
the reply is valid JSON instead: an instance of the schema when one is given (in
``output_config`` or embedded in the prompt), else ``{"echo", "digest", "summary"}``.
``stop_sequences`` and ``max_tokens`` cut the text as the API does.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 3
MEDIA_BLOCK_TOKENS = 1_500

_FILLER = (
    "ledger", "margin", "harbor", "quartz", "meadow", "signal", "copper", "lantern",
    "orbit", "fabric", "summit", "willow", "canvas", "pepper", "rocket", "velvet",
    "beacon", "cobalt", "delta", "ember", "falcon", "garnet", "hollow", "indigo",
    "juniper", "kernel", "lagoon", "mosaic", "nectar", "oasis", "prism", "quiver",
)  # fmt: skip
_JSON_REQUEST = re.compile(
    r"\b(?:respond|reply|answer|return|output|format)\w*\s+(?:only\s+)?(?:with\s+|in\s+|as\s+)?"
    r"(?:a\s+|an\s+)?(?:valid\s+)?json\b|\bjson\s+schema\b",
    re.IGNORECASE,
)


def estimate_tokens(text: str) -> int:
    """The emulator's token count for one piece of text (about four characters a token)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _block_text(block: Any) -> str:
    if isinstance(block, str):
        return block
    if isinstance(block, dict):
        if block.get("type") == "text":
            return str(block.get("text", ""))
        if block.get("type") == "tool_result":
            content = block.get("content", "")
            if isinstance(content, list):
                return "".join(_block_text(b) for b in content)
            return str(content)
    return json.dumps(block, sort_keys=True)


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return estimate_tokens(content)
    total = 0
    for block in content if isinstance(content, list) else [content]:
        if isinstance(block, dict) and block.get("type") in {"image", "document"}:
            total += MEDIA_BLOCK_TOKENS
        else:
            total += estimate_tokens(_block_text(block))
    return total


def count_input_tokens(body: dict[str, Any]) -> int:
    """Input tokens of a Messages or count_tokens request body (see the module docstring)."""
    total = 0
    system = body.get("system")
    if system:
        total += _content_tokens(system)
    for message in body.get("messages", []):
        total += MESSAGE_OVERHEAD_TOKENS + _content_tokens(message.get("content", ""))
    if body.get("tools"):
        total += estimate_tokens(json.dumps(body["tools"], sort_keys=True))
    return max(1, total)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            _block_text(b) for b in content if not isinstance(b, dict) or b.get("type") == "text"
        )
    return ""


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last ``user`` message, which the reply is derived from."""
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            return _text_of(message.get("content", ""))
    return ""


def digest(text: str) -> str:
    """SHA-256 hex digest of the text the reply is derived from."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Reply:
    """The assistant's answer to one request, already cut by stop sequences and max_tokens."""

    text: str
    output_tokens: int
    stop_reason: str
    stop_sequence: str | None = None


def _embedded_schema(text: str) -> dict[str, Any] | None:
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict) and ("properties" in value or value.get("type") == "object"):
            return value
    return None


def _instance(schema: Any, hex_digest: str, echo: str, depth: int = 0) -> Any:
    """A value that validates against a (simple) JSON schema, chosen by the digest."""
    number = int(hex_digest[depth % 48 : depth % 48 + 8], 16)
    if not isinstance(schema, dict) or depth > 8:
        return echo
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][number % len(schema["enum"])]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return _instance(schema[key][0], hex_digest, echo, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties", {})
        return {
            name: _instance(sub, hex_digest, echo, depth + 1 + i)
            for i, (name, sub) in enumerate(properties.items())
        }
    if kind == "array":
        count = max(1, int(schema.get("minItems", 1)))
        return [_instance(schema.get("items", {}), hex_digest, echo, depth + 1) for _ in range(count)]
    if kind in {"integer", "number"}:
        low = int(schema.get("minimum", 0))
        high = int(schema.get("maximum", low + 100))
        value = low + number % max(1, high - low + 1)
        return value if kind == "integer" else value + 0.5 if value + 0.5 <= high else float(value)
    if kind == "boolean":
        return number % 2 == 0
    if kind == "null":
        return None
    return echo or hex_digest[:16]


def _wanted_schema(body: dict[str, Any], prompt: str) -> tuple[bool, dict[str, Any] | None]:
    output_format = (body.get("output_config") or {}).get("format") or body.get("output_format") or {}
    if isinstance(output_format, dict) and output_format.get("type") == "json_schema":
        return True, output_format.get("schema")
    if _JSON_REQUEST.search(prompt):
        return True, _embedded_schema(prompt)
    return False, None


def compose_text(body: dict[str, Any]) -> str:
    """The full (uncut) reply text for a request body."""
    user_text = last_user_text(body)
    hex_digest = digest(user_text)
    echo = " ".join(user_text.split()[:8])
    words = [_FILLER[int(hex_digest[i : i + 2], 16) % len(_FILLER)] for i in range(0, 64, 2)]
    count = 8 + int(hex_digest[16:20], 16) % 32
    filler = " ".join((words * 2)[:count])
    system_text = _text_of(body.get("system") or "")
    wants_json, schema = _wanted_schema(body, f"{system_text}\n{user_text}")
    if wants_json:
        if schema is not None:
            return json.dumps(_instance(schema, hex_digest, echo))
        return json.dumps({"echo": echo, "digest": hex_digest[:16], "summary": filler})
    return f"Echo: {echo}\nDigest: {hex_digest[:16]}\n{filler.capitalize()}."


def compose_reply(body: dict[str, Any]) -> Reply:
    """The reply for a validated Messages request, with the API's stop semantics."""
    text = compose_text(body)
    stop_reason, stop_sequence = "end_turn", None
    cuts = [(text.find(s), s) for s in body.get("stop_sequences") or [] if s and s in text]
    if cuts:
        index, stop_sequence = min(cuts)
        text, stop_reason = text[:index], "stop_sequence"
    max_tokens = int(body["max_tokens"])
    if estimate_tokens(text) > max_tokens:
        text, stop_reason, stop_sequence = text[: max_tokens * CHARS_PER_TOKEN], "max_tokens", None
    return Reply(text, max(1, estimate_tokens(text)), stop_reason, stop_sequence)


def stream_chunks(text: str, words_per_chunk: int = 3) -> list[str]:
    """Split a reply into ``text_delta`` pieces whose concatenation is exactly ``text``."""
    pieces = re.findall(r"\S+\s*|\s+", text)
    return ["".join(pieces[i : i + words_per_chunk]) for i in range(0, len(pieces), words_per_chunk)]
