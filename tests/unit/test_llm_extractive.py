"""The offline extractive processor: which text it reads, and the shape of its answers."""

from __future__ import annotations

import json

from docmill.llm import LLMRequest
from docmill.llm.providers.extractive import ExtractiveProvider, document_text, entities_of, title_of

REPORT = """# Harbour Logistics Quarterly Report

The Port of Rotterdam handled record container volumes in the third quarter. Container throughput
rose by twelve percent compared with the same quarter last year.
Rail connections to the European Union hinterland carried most of the additional containers.

## Costs
Fuel costs fell slightly this quarter. Labour costs rose because the Dock Workers Union negotiated a
new agreement. The new agreement raises wages by four percent from January.

## Outlook
Management expects container volumes to keep growing next year. The Port of Rotterdam plans a new
terminal for container ships. Investment in rail connections continues as planned.
"""
SCHEMA = json.dumps(
    {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "summary": {"type": "string"},
            "key_points": {"type": "array", "items": {"type": "string"}},
            "entities": {"type": "array", "items": {"type": "string"}},
            "document_type": {"type": "string"},
            "language": {"type": "string"},
            "page_count": {"type": "integer"},
        },
    }
)


def request(prompt: str, *, json_output: bool = False, system: str = "Summarise the document.") -> LLMRequest:
    return LLMRequest(
        model="extractive", system=system, prompt=prompt, max_tokens=400, json_output=json_output
    )


def test_document_text_comes_from_document_tags_else_the_whole_prompt() -> None:
    assert (
        document_text("Summarise this.\n<document id='1'>\nBody text.\n</document>\nThanks") == "Body text."
    )
    assert document_text("Just the text.") == "Just the text."


def test_title_is_the_first_heading_else_the_first_line() -> None:
    assert title_of(REPORT) == "Harbour Logistics Quarterly Report"
    assert title_of("\n\nA plain first line\nmore") == "A plain first line"


def test_entities_are_capitalised_multiword_terms_most_frequent_first() -> None:
    entities = entities_of(REPORT)

    assert entities[0] == "Port of Rotterdam"
    assert {"European Union", "Dock Workers Union"} <= set(entities)


async def test_json_answer_has_the_keys_the_schema_asks_for() -> None:
    prompt = (
        f"Respond with JSON matching this schema: {SCHEMA}\nLanguage: en\n<document>\n{REPORT}</document>"
    )

    response = await ExtractiveProvider().complete(request(prompt, json_output=True))
    answer = json.loads(response.text)

    assert list(answer) == [
        "title", "summary", "key_points", "entities", "document_type", "language", "page_count"
    ]  # fmt: skip
    assert answer["title"] == "Harbour Logistics Quarterly Report"
    assert answer["summary"].startswith("The Port of Rotterdam handled record container volumes")
    assert 1 <= len(answer["key_points"]) <= 5
    assert all(point not in answer["summary"] for point in answer["key_points"])
    assert answer["document_type"] == "document"
    assert answer["language"] == "en"
    assert answer["page_count"] == 0


async def test_json_answer_without_a_schema_uses_the_default_keys() -> None:
    response = await ExtractiveProvider().complete(request(REPORT, json_output=True))

    assert set(json.loads(response.text)) == {
        "title", "summary", "key_points", "entities", "document_type", "language"
    }  # fmt: skip


async def test_plain_answer_is_the_top_sentences_in_document_order_within_max_tokens() -> None:
    provider = ExtractiveProvider()
    long = await provider.complete(request(REPORT))
    short = await provider.complete(LLMRequest("extractive", "", REPORT, max_tokens=20))

    assert long.text.startswith("The Port of Rotterdam handled record container volumes")
    assert long.text.count(". ") >= 2
    assert len(short.text) < len(long.text)


async def test_response_is_labelled_offline_free_and_counted_with_the_estimate() -> None:
    provider = ExtractiveProvider()
    req = request(REPORT)

    response = await provider.complete(req)

    assert provider.is_offline and provider.name == "extractive"
    assert (response.model, response.provider, response.cost_usd) == ("extractive", "extractive", 0.0)
    assert response.usage.input_tokens == await provider.count_tokens(req)
    assert response.usage.output_tokens > 0


async def test_empty_documents_give_empty_answers_not_errors() -> None:
    response = await ExtractiveProvider().complete(request("", json_output=True))

    assert json.loads(response.text)["summary"] == ""
