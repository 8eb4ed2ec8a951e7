"""Markdown renderings of results: what ``result(id)`` returns beside the JSON.

Text from the model is put on one line where Markdown structure depends on it (titles,
list items, table cells), so an answer cannot break the document's layout.
"""

from __future__ import annotations

import json
import re
from typing import Any

_LIST_MARKER = re.compile(r"^(?:[-*+\u2022]|\d+[.)])\s+")


def render_summary(result: dict[str, Any]) -> str:
    """Markdown of a summary result: title, a line of facts, the summary, points, entities."""
    lines = [f"# {_md(result.get('title') or 'Summary')}", ""]
    facts = [str(v) for v in (result.get("document_type"), result.get("language")) if v]
    if facts:
        lines += [f"*{' · '.join(_md(f) for f in facts)}*", ""]
    if result.get("summary"):
        lines += [str(result["summary"]).strip(), ""]
    if result.get("key_points"):
        lines += ["## Key points", "", *(f"- {_item(p)}" for p in result["key_points"]), ""]
    if result.get("entities"):
        lines += ["## Entities", ""]
        for entity in result["entities"]:
            kind = f" ({_md(entity['type'])})" if entity.get("type") else ""
            lines.append(f"- {_md(entity['name'])}{kind}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_extract(data: dict[str, Any], title: str) -> str:
    lines = [f"# {_md(title)}", "", "| Field | Value |", "|---|---|"]
    for name, value in data.items():
        lines.append(f"| {_cell(name)} | {_cell(_value(value))} |")
    return "\n".join(lines) + "\n"


def _value(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _item(text: Any) -> str:
    """A list item's text without a list marker of its own (``- a`` would nest a list)."""
    return _LIST_MARKER.sub("", _md(text))


def _md(text: Any) -> str:
    return " ".join(str(text).split())


def _cell(text: str) -> str:
    return _md(text).replace("|", "\\|")
