"""An offline processor with no model: extractive summaries by sentence ranking.

It lets the whole system run with no key and no network; its results are labelled
(``is_offline``, model ``extractive``, cost 0). The document is the prompt's text
inside ``<document>…</document>`` (also ``<text>``, ``<chunk>``, ``<content>``), else
inside a fenced block, else the whole prompt.

Ranking: each sentence scores the mean normalised frequency of its content words
(stop words dropped, so the words a document repeats weigh most), plus a bonus for
the first sentences of the document and of each section, minus a penalty for very
short or very long sentences. The best sentences, in document order, make the summary.

With ``json_output`` it fills the keys the prompt's JSON schema (or example object)
asks for: ``title`` (first heading or line), ``summary`` (top sentences),
``key_points`` (the next ones), ``entities`` (capitalised multiword terms),
``document_type`` ("document"), ``language`` (passed through when the prompt names
one); other keys get an empty value of their schema type. With no schema in sight it
answers those six keys.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

from docmill.llm.tokens import estimate_request_tokens, estimate_tokens
from docmill.llm.types import LLMRequest, LLMResponse, Usage

MODEL_NAME = "extractive"
DEFAULT_KEYS = ("title", "summary", "key_points", "entities", "document_type", "language")
SUMMARY_SENTENCES = 3
KEY_POINTS = 5
MAX_ENTITIES = 10

_DOCUMENT = re.compile(r"<(document|text|chunk|content)\b[^>]*>(.*?)</\1>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)
_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s+|\n\s*\n")
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*", re.UNICODE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_ENTITY = re.compile(r"\b[A-Z][\w&'-]*(?:[ \t]+(?:(?:of|for|and|de|du|von|van|der|&)[ \t]+)?[A-Z][\w&'-]*)+")
_LANGUAGE = re.compile(r"\blanguage\b\W{0,4}(?:is\W+)?\"?([A-Za-z]{2,3}(?:-[A-Za-z]{2,4})?)\b", re.IGNORECASE)
_STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just me more
    most my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves may might must shall one two per via""".split()  # noqa: SIM905
)
_LEADING_ARTICLES = re.compile(r"^(?:The|A|An|This|That|These|Those|In|On|At|For|Of)\s+")


def document_text(prompt: str) -> str:
    """The document part of a prompt (see the module docstring)."""
    tagged = [match.group(2).strip() for match in _DOCUMENT.finditer(prompt)]
    if tagged:
        return "\n\n".join(tagged)
    fenced = [match.group(1).strip() for match in _FENCE.finditer(prompt)]
    fenced = [block for block in fenced if not block.lstrip().startswith("{")]
    if fenced:
        return "\n\n".join(fenced)
    return prompt.strip()


def _sentences(text: str) -> list[tuple[str, bool]]:
    """Sentences in order, each with whether it opens the document or a section."""
    found: list[tuple[str, bool]] = []
    opens_section = True
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            opens_section = True
            continue
        if _HEADING.match(stripped):
            opens_section = True
            continue
        for piece in _SENTENCE_END.split(stripped):
            sentence = " ".join(piece.split())
            if len(_WORD.findall(sentence)) >= 3:
                found.append((sentence, opens_section))
                opens_section = False
    return found


def rank_sentences(text: str) -> list[tuple[int, str]]:
    """(position, sentence) pairs, best first."""
    sentences = _sentences(text)
    words = [[w.lower() for w in _WORD.findall(s)] for s, _ in sentences]
    frequency = Counter(w for sentence in words for w in sentence if w not in _STOP_WORDS and len(w) > 1)
    top = max(frequency.values(), default=1)
    scored: list[tuple[float, int, str]] = []
    for index, ((sentence, opens), tokens) in enumerate(zip(sentences, words, strict=True)):
        content = [w for w in tokens if w in frequency]
        score = sum(frequency[w] / top for w in content) / math.sqrt(max(1, len(content)))
        if index == 0:
            score += 0.6
        elif opens:
            score += 0.25
        if len(tokens) < 6:
            score *= 0.6
        elif len(tokens) > 45:
            score *= 0.75
        scored.append((score, index, sentence))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [(index, sentence) for _, index, sentence in scored]


def title_of(text: str) -> str:
    """The first heading, else the first non-empty line, cut to 120 characters."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        heading = _HEADING.match(line)
        if heading:
            return heading.group(1)[:120]
    return lines[0][:120] if lines else ""


def entities_of(text: str, limit: int = MAX_ENTITIES) -> list[str]:
    """Capitalised multiword terms, most frequent first (leading articles dropped)."""
    counts: Counter[str] = Counter()
    for match in _ENTITY.finditer(text):
        term = _LEADING_ARTICLES.sub("", match.group(0)).strip(" .,'")
        if " " in term:
            counts[term] += 1
    return [term for term, _ in counts.most_common(limit)]


def _wanted_keys(text: str) -> dict[str, Any]:
    """Key → its schema (or ``{}``) from the first schema or example object in ``text``."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if not isinstance(value, dict) or not value:
            continue
        properties = value.get("properties")
        if isinstance(properties, dict) and properties:
            return {str(k): v if isinstance(v, dict) else {} for k, v in properties.items()}
        return {str(k): {"example": v} for k, v in value.items()}
    return {}


def _empty_of(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if "example" in schema:
        example = schema["example"]
        kind = {list: "array", dict: "object", str: "string", bool: "boolean"}.get(type(example))
        if isinstance(example, int | float) and not isinstance(example, bool):
            kind = "number"
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    return {"array": [], "object": {}, "string": "", "integer": 0, "number": 0, "boolean": False}.get(
        str(kind)
    )


def _fit(sentences: list[str], budget_tokens: int) -> list[str]:
    kept: list[str] = []
    used = 0
    for sentence in sentences:
        cost = estimate_tokens(sentence) + 1
        if kept and used + cost > budget_tokens:
            break
        kept.append(sentence)
        used += cost
    return kept


class ExtractiveProvider:
    """``Provider`` that needs no model: see the module docstring."""

    name = "extractive"
    is_offline = True

    def summarise(self, request: LLMRequest) -> str:
        """The answer text for a request (JSON when asked for)."""
        document = document_text(request.prompt)
        ranked = rank_sentences(document)
        budget = max(16, request.max_tokens)
        summary_pairs = sorted(ranked[:SUMMARY_SENTENCES])
        if not request.json_output:
            return " ".join(_fit([s for _, s in summary_pairs], budget))
        point_pairs = sorted(ranked[SUMMARY_SENTENCES : SUMMARY_SENTENCES + KEY_POINTS])
        instructions = _DOCUMENT.sub(" ", f"{request.system}\n{request.prompt}")
        wanted = _wanted_keys(instructions) or {key: {} for key in DEFAULT_KEYS}
        language = _LANGUAGE.search(instructions) or _LANGUAGE.search(document[:2000])
        known: dict[str, Any] = {
            "title": title_of(document),
            "summary": " ".join(_fit([s for _, s in summary_pairs], budget // 2)),
            "key_points": _fit([s for _, s in point_pairs], budget // 3),
            "entities": entities_of(document),
            "document_type": "document",
            "language": language.group(1) if language else None,
        }
        answer = {key: known[key] if key in known else _empty_of(schema) for key, schema in wanted.items()}
        return json.dumps(answer, ensure_ascii=False)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        text = self.summarise(request)
        usage = Usage(
            input_tokens=estimate_request_tokens(request.system, request.prompt),
            output_tokens=estimate_tokens(text),
        )
        return LLMResponse(
            text=text, usage=usage, model=MODEL_NAME, provider=self.name, request_id=None, cost_usd=0.0
        )

    async def count_tokens(self, request: LLMRequest) -> int:
        return estimate_request_tokens(request.system, request.prompt)

    async def aclose(self) -> None:
        return None
