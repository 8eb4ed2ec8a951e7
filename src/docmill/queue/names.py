"""What a queue name may be: the one rule, checked wherever a name comes in.

A queue name is 1 to ``MAX_QUEUE_NAME_LENGTH`` characters of any script: letters, digits,
marks, punctuation, symbols and spaces between words (so ``"Rechnungen März"``, ``"a:b"`` or
``"{x}"`` are fine). Refused, each for a reason an operator would hit:

* a comma: ``--queue a,b`` and ``queues = "a,b"`` are lists, so a name with a comma could
  never be named on its own;
* control, format and separator characters other than the plain space (NUL, newline, tab,
  zero-width joiners, U+2028): they cannot be typed on a command line, break the monitor
  table, or make two names that look the same;
* a space at either end: every list of names is trimmed, so the name could not be reached.

Backends store any such name as it is; the Redis key schema escapes it (``_keys.lua``).
"""

from __future__ import annotations

import functools
import unicodedata

from docmill.queue.errors import InvalidQueueName

MAX_QUEUE_NAME_LENGTH = 100
RULE = (
    f"a queue name is 1 to {MAX_QUEUE_NAME_LENGTH} characters: letters, digits, punctuation, "
    "symbols and inner spaces, without commas or control characters"
)


def queue_name_problem(name: object) -> str | None:
    """Why ``name`` is not a valid queue name, or None when it is."""
    if not isinstance(name, str):
        return f"it is a {type(name).__name__}, not text"
    return _text_problem(name)


# Dispatch checks every job's queue: a few names, checked once each per process.
@functools.lru_cache(maxsize=1024)
def _text_problem(name: str) -> str | None:
    if not name:
        return "it is empty"
    if len(name) > MAX_QUEUE_NAME_LENGTH:
        return f"it is {len(name)} characters long"
    if name != name.strip(" "):
        return "it starts or ends with a space"
    for char in name:
        if char == ",":
            return "it holds a comma (commas separate queue names in lists)"
        if char != " " and unicodedata.category(char)[0] in "CZ":
            what = unicodedata.name(char, "a control character")
            return f"it holds the character U+{ord(char):04X} ({what})"
    return None


def check_queue_name(name: object, *, where: str = "") -> str:
    """Return ``name`` when it is a valid queue name; raise ``InvalidQueueName`` otherwise.

    ``where`` names the source in the message (``"--queue"``, ``"[pools.x] of docmill.toml"``).
    """
    problem = queue_name_problem(name)
    if problem is None:
        assert isinstance(name, str)
        return name
    source = f" ({where})" if where else ""
    raise InvalidQueueName(f"queue name {name!r}{source} is not valid: {problem}; {RULE}.")
