"""Secrets out of what the API shows of a job: URLs in its payload and error, secret-named values.

A job's payload and error are written by handlers, and a handler may put a URL with a
password or a token in either (a callback URL, a service's address). The documents
pipeline masks them before they are stored; this is the second line for every other
handler: each URL found in a string passes through ``mask_url``, and a text value in
the payload whose key names a secret (``api_key``, ``password``, ``token``...) is not
shown at all (a number such as ``max_tokens`` is).
"""

from __future__ import annotations

import re
from typing import Any

from docmill.queue import mask_url

MASK = "***"
# A scheme, "://", then everything up to a space or a quote: wide on purpose, mask_url
# leaves a URL without secrets as it is.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
_SECRET_WORDS = ("pass", "secret", "token", "key", "auth", "sig", "credential")


def mask_text(text: str) -> str:
    """``text`` with the secrets of every URL in it replaced by ``***``."""
    if "://" not in text:
        return text
    return _URL.sub(lambda found: mask_url(found.group(0)), text)


def names_a_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def mask_value(value: Any) -> Any:
    """A JSON value with ``mask_text`` applied to every string, and secret-named texts masked."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, list | tuple):
        return [mask_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _masked_item(key, item) for key, item in value.items()}
    return value


def _masked_item(key: Any, item: Any) -> Any:
    if isinstance(item, str) and item and isinstance(key, str) and names_a_secret(key):
        return MASK
    return mask_value(item)
