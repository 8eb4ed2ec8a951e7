"""Processing profiles: the prompts of each call and how the final answer becomes a result.

=========  ==========================================================  ===========
profile    result                                                      JSON asked
=========  ==========================================================  ===========
summary    title, summary, key_points, entities, document_type,        yes
           language; Markdown with headings and lists
extract    ``data``: the fields of the user's JSON Schema (null when   yes
           the document does not give them); Markdown table
custom     ``answer``: the reply to the user's prompt; Markdown as is   no
=========  ==========================================================  ===========

Each profile writes three prompts: a map over one chunk of a longer document, a reduce
that combines partial answers (``final`` for the last one), and, for a document of one
chunk, the map is itself final.

Expected output (``Profile.expected_output_tokens``), which the estimate prices: what
each prompt asks for, at about 4 characters (0.75 English words) a token, so a sentence
of some 22 words is 30 tokens, a short key point 20 and an entity object 15. A reduce's
answer has the shape of the final answer. The numbers are expectations, not limits
(``map_max_tokens`` / ``final_max_tokens`` are the limits, and cap them). They are not
taken from the Messages API emulator, whose replies are a few dozen tokens whatever the
prompt asks.

=========  ======================================  ============================================
profile    map over one part of several            final answer (and every reduce)
=========  ======================================  ============================================
summary    450: 2-4 sentences (90), up to 5 key    700: 3-6 sentences (135), 3-8 key points
           points (100), ~12 entities (180), the   (120), ~25 entities merged from the parts
           other keys and JSON around them (60)    (375), the other keys and JSON (60)
extract    the JSON object of the schema: per      the same object (a merge adds no fields)
           property its name and a value (string
           15, number 3, list of 5 items, nested
           objects counted alike), plus 10
custom     300: concise notes, about ten lines     600: the answer, taken as about a page
                                                   (450 words), since no prompt says its length
=========  ======================================  ============================================
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from docmill.documents.options import DocumentOptions
from docmill.documents.render import render_extract, render_summary
from docmill.llm.jsonout import extract_json_object
from docmill.llm.tokens import estimate_tokens

_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")


@dataclass(frozen=True)
class Source:
    """What a prompt or a result may say about the document."""

    name: str
    title: str | None = None
    language: str | None = None


class Profile:
    """Base of the three profiles; see the module docstring."""

    name = ""
    json_output = True
    map_output_tokens = 450  # expected answer of a map over one chunk of several
    final_output_tokens = 700  # expected answer of the final call and of every reduce
    # Kept small: the shared rate limiter reserves max_tokens of output for a purpose's first
    # calls (then what its answers use), and a low API tier allows a few thousand a minute.
    map_max_tokens = 1024
    final_max_tokens = 2048
    # Whether documents of the profile go through the Message Batches API when the upload does
    # not say (``sends_by_batch``): no profile is in a hurry by nature, but each is read by
    # someone waiting, so none does unless DOCUMENT_BATCH_PROFILES names it.
    batch_by_default = False

    def expected_output_tokens(self, options: DocumentOptions, *, final: bool) -> int:
        """Tokens the answer of one call is expected to hold; see the module docstring."""
        return self.final_output_tokens if final else self.map_output_tokens

    def system(self, options: DocumentOptions, source: Source) -> str:
        return (
            f"{_language_line(source)}You are a careful document analyst. You report only what the "
            "document says, never invent facts, and write in the document's own language."
        )

    def partial_view(self, text: str) -> str:
        """How a partial answer is shown to the reduce that combines it."""
        return text.strip()

    def map_prompt(
        self,
        text: str,
        *,
        index: int,
        total: int,
        heading: list[str],
        source: Source,
        options: DocumentOptions,
    ) -> str:
        raise NotImplementedError

    def reduce_prompt(
        self, partials: list[str], *, final: bool, source: Source, options: DocumentOptions
    ) -> str:
        raise NotImplementedError

    def finish(self, text: str, *, source: Source, options: DocumentOptions) -> tuple[dict[str, Any], str]:
        """The final answer as the profile's result fields and its Markdown rendering."""
        raise NotImplementedError


def _part(text: str, index: int, total: int, heading: list[str]) -> str:
    where = f' section="{_attr(" > ".join(heading))}"' if heading else ""
    return f'<document part="{index + 1}" of="{total}"{where}>\n{text}\n</document>'


def _partials(partials: list[str]) -> str:
    return "\n\n".join(f'<document part="{i + 1}">\n{p}\n</document>' for i, p in enumerate(partials))


def _attr(text: str) -> str:
    return " ".join(text.split()).replace('"', "'").replace("<", "(").replace(">", ")")


class SummaryProfile(Profile):
    name = "summary"
    _FIELDS = (
        'Keys: "title" (the document\'s title, or null), "summary" ({length}), "key_points" '
        '(a list of {points} short strings), "entities" (a list of {{"name": ..., "type": ...}} for '
        'people, organisations, places, dates and amounts), "document_type" (report, contract, '
        'minutes, invoice, ...), "language" (a two-letter ISO 639-1 code).'
    )

    def partial_view(self, text: str) -> str:
        data = extract_json_object(text)
        return render_summary(self._fields(data, text, Source(name=""))).strip() if data else text.strip()

    def map_prompt(
        self,
        text: str,
        *,
        index: int,
        total: int,
        heading: list[str],
        source: Source,
        options: DocumentOptions,
    ) -> str:
        if total == 1:
            fields = self._FIELDS.format(length="one paragraph of 3-6 sentences", points="3 to 8")
            return f"Summarise the document {source.name!r} as one JSON object. {fields}\n\n" + _part(
                text, index, total, heading
            )
        fields = self._FIELDS.format(length="2-4 sentences on this part", points="up to 5")
        return (
            f"This is one part of the document {source.name!r}. Summarise this part as one JSON "
            f"object; it will be combined with the other parts later. {fields}\n\n"
            + _part(text, index, total, heading)
        )

    def reduce_prompt(
        self, partials: list[str], *, final: bool, source: Source, options: DocumentOptions
    ) -> str:
        scope = "the whole document" if final else "these consecutive parts"
        fields = self._FIELDS.format(length="one paragraph of 3-6 sentences", points="3 to 8")
        return (
            f"Below are summaries of consecutive parts of the document {source.name!r}, in order. "
            f"Combine them into one JSON object for {scope}: merge entities without duplicates and keep "
            f"the most important key points. {fields}\n\n{_partials(partials)}"
        )

    def finish(self, text: str, *, source: Source, options: DocumentOptions) -> tuple[dict[str, Any], str]:
        data = extract_json_object(text)
        result = self._fields(data, text, source)
        if data is None:
            result["warnings"] = ["the model's answer was not JSON; it is kept as the summary"]
        return result, render_summary(result)

    def _fields(self, data: dict[str, Any] | None, text: str, source: Source) -> dict[str, Any]:
        found = data or {}
        language = _text(found.get("language"))
        return {
            "title": _text(found.get("title")) or source.title or source.name or None,
            "summary": _text(found.get("summary")) or ("" if data else text.strip()),
            "key_points": [p for p in (_text(item) for item in _as_list(found.get("key_points"))) if p],
            "entities": _entities(found.get("entities")),
            "document_type": _text(found.get("document_type")),
            "language": language if language and _LANGUAGE_CODE.match(language) else source.language,
        }


class ExtractProfile(Profile):
    name = "extract"

    def expected_output_tokens(self, options: DocumentOptions, *, final: bool) -> int:
        """The schema's object, as large in a map as in the final answer."""
        return _JSON_FRAME_TOKENS + _value_tokens(options.schema or {})

    def system(self, options: DocumentOptions, source: Source) -> str:
        return (
            f"{_language_line(source)}You extract data from documents exactly as written. "
            "Never invent or infer a value the document does not state; use null for it."
        )

    def _schema(self, options: DocumentOptions) -> str:
        return json.dumps(options.schema or {}, ensure_ascii=False, indent=1)

    def map_prompt(
        self,
        text: str,
        *,
        index: int,
        total: int,
        heading: list[str],
        source: Source,
        options: DocumentOptions,
    ) -> str:
        scope = "the document" if total == 1 else "this part of the document"
        return (
            f"Extract the fields of this JSON Schema from {scope} {source.name!r}. Answer with one JSON "
            "object that has exactly the schema's properties, null where the text does not give a "
            f"value.\n\n<schema>\n{self._schema(options)}\n</schema>\n\n" + _part(text, index, total, heading)
        )

    def reduce_prompt(
        self, partials: list[str], *, final: bool, source: Source, options: DocumentOptions
    ) -> str:
        return (
            f"Below are extractions from consecutive parts of the document {source.name!r}, in order. "
            "Merge them into one JSON object with exactly the schema's properties: prefer values over "
            "null, keep the first value when parts disagree unless a later part corrects it, and merge "
            "lists without duplicates.\n\n"
            f"<schema>\n{self._schema(options)}\n</schema>\n\n{_partials(partials)}"
        )

    def partial_view(self, text: str) -> str:
        data = extract_json_object(text)
        return json.dumps(data, ensure_ascii=False) if data is not None else text.strip()

    def finish(self, text: str, *, source: Source, options: DocumentOptions) -> tuple[dict[str, Any], str]:
        data = extract_json_object(text)
        properties = list((options.schema or {}).get("properties", {}))
        result: dict[str, Any] = {"data": {name: (data or {}).get(name) for name in properties}}
        if data is None:
            result["warnings"] = ["the model's answer was not JSON; no field could be read"]
            result["raw"] = text.strip()
        return result, render_extract(result["data"], source.name)


class CustomProfile(Profile):
    name = "custom"
    json_output = False
    map_output_tokens = 300
    final_output_tokens = 600

    def system(self, options: DocumentOptions, source: Source) -> str:
        return (
            f"{_language_line(source)}You follow the user's instruction about a document, "
            "using only what the document says. Answer in the language of the instruction."
        )

    def map_prompt(
        self,
        text: str,
        *,
        index: int,
        total: int,
        heading: list[str],
        source: Source,
        options: DocumentOptions,
    ) -> str:
        instruction = f"<instruction>\n{options.prompt}\n</instruction>"
        if total == 1:
            return f"{instruction}\n\nThe document {source.name!r}:\n\n" + _part(text, index, total, heading)
        return (
            f"{instruction}\n\nThe instruction is about the whole document {source.name!r}; below is one "
            "part of it. Write concise notes of everything in this part that the instruction needs; "
            "they will be combined with the notes on the other parts.\n\n"
            + _part(text, index, total, heading)
        )

    def reduce_prompt(
        self, partials: list[str], *, final: bool, source: Source, options: DocumentOptions
    ) -> str:
        task = (
            "Using these notes, carry out the instruction for the whole document."
            if final
            else "Combine these notes into one set of notes, keeping everything the instruction needs."
        )
        return (
            f"<instruction>\n{options.prompt}\n</instruction>\n\nBelow are notes on consecutive parts "
            f"of the document {source.name!r}, in order. {task}\n\n{_partials(partials)}"
        )

    def finish(self, text: str, *, source: Source, options: DocumentOptions) -> tuple[dict[str, Any], str]:
        answer = text.strip()
        return {"answer": answer}, answer + "\n"


PROFILES: dict[str, Profile] = {p.name: p for p in (SummaryProfile(), ExtractProfile(), CustomProfile())}


def profile_for(options: DocumentOptions) -> Profile:
    return PROFILES[options.profile]


def sends_by_batch(options: DocumentOptions, *, batch_profiles: frozenset[str] = frozenset()) -> bool:
    """Whether the document's calls go through the Message Batches API: the upload's ``batch``
    option when it gives one, else the profile's default, which ``batch_profiles`` (the
    ``DOCUMENT_BATCH_PROFILES`` setting) turns on."""
    if options.batch is not None:
        return options.batch
    return profile_for(options).batch_by_default or options.profile in batch_profiles


_JSON_FRAME_TOKENS = 10  # a fence or line breaks around the object
_SCALAR_TOKENS = {"string": 15, "number": 3, "integer": 3, "boolean": 2, "null": 2}
_LIST_ITEMS = 5  # items expected in a list the schema asks for
_MAX_DEPTH = 6


def _value_tokens(schema: Any, depth: int = 0) -> int:
    """Tokens of a value that fills ``schema`` (see the module docstring)."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return _SCALAR_TOKENS["string"]
    if "enum" in schema or "const" in schema:
        return 5
    branches = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(branches, list) and branches:
        return max(_value_tokens(branch, depth + 1) for branch in branches)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, dict) or not properties:
            return 30  # an object of fields the schema does not name
        return 2 + sum(
            estimate_tokens(json.dumps(name)) + 2 + _value_tokens(sub, depth + 1)
            for name, sub in properties.items()
        )
    if kind == "array":
        return 2 + _LIST_ITEMS * (_value_tokens(schema.get("items"), depth + 1) + 1)
    return _SCALAR_TOKENS.get(str(kind), _SCALAR_TOKENS["string"])


def _language_line(source: Source) -> str:
    """Names the document's language first, so every processor (the offline one too) sees it."""
    if source.language and _LANGUAGE_CODE.match(source.language) and source.language != "und":
        return f'The document\'s language is "{source.language}". '
    return ""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.strip() or None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _entities(value: Any) -> list[dict[str, str | None]]:
    """Entities as ``{"name", "type"}``, from a list of dicts or strings, or a type -> names map."""
    found: list[dict[str, str | None]] = []
    if isinstance(value, dict):
        value = [{"name": n, "type": kind} for kind, names in value.items() for n in _as_list(names)]
    for item in _as_list(value):
        if isinstance(item, dict):
            name, kind = _text(item.get("name") or item.get("text")), _text(item.get("type"))
        else:
            name, kind = _text(item), None
        if name and all(e["name"] != name for e in found):
            found.append({"name": name, "type": kind})
    return found
