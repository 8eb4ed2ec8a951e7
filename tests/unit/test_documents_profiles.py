"""Profiles: prompts that every processor can read, results from answers, Markdown renderings."""

from __future__ import annotations

import json

from docmill.documents.calls import Calls
from docmill.documents.options import DocumentOptions
from docmill.documents.profiles import ExtractProfile, Source, SummaryProfile
from docmill.documents.render import render_extract, render_summary

SOURCE = Source(name="report.pdf", title="Q3 report", language="en")
SCHEMA = {"type": "object", "properties": {"supplier": {"type": "string"}, "total": {"type": "number"}}}


def test_a_summary_answer_becomes_the_six_fields() -> None:
    answer = json.dumps(
        {
            "title": "Q3 Operations",
            "summary": "Revenue grew.",
            "key_points": ["Revenue up 11 %", "- Margin 7.5 %"],
            "entities": [{"name": "Northwind", "type": "organisation"}, "Gdansk", "Gdansk"],
            "document_type": "report",
            "language": "en",
        }
    )
    result, markdown = SummaryProfile().finish(answer, source=SOURCE, options=DocumentOptions())
    assert result == {
        "title": "Q3 Operations",
        "summary": "Revenue grew.",
        "key_points": ["Revenue up 11 %", "- Margin 7.5 %"],
        "entities": [{"name": "Northwind", "type": "organisation"}, {"name": "Gdansk", "type": None}],
        "document_type": "report",
        "language": "en",
    }
    assert markdown == (
        "# Q3 Operations\n\n*report · en*\n\nRevenue grew.\n\n## Key points\n\n"
        "- Revenue up 11 %\n- Margin 7.5 %\n\n## Entities\n\n- Northwind (organisation)\n- Gdansk\n"
    )


def test_an_answer_that_is_not_json_is_kept_as_the_summary_with_a_warning() -> None:
    result, markdown = SummaryProfile().finish("Just prose.", source=SOURCE, options=DocumentOptions())
    assert result["summary"] == "Just prose." and result["title"] == "Q3 report"
    assert result["language"] == "en" and result["warnings"]
    assert "Just prose." in markdown


def test_a_language_that_is_not_a_code_falls_back_to_the_analysis() -> None:
    answer = json.dumps({"summary": "x", "language": "ISO"})
    result, _ = SummaryProfile().finish(answer, source=SOURCE, options=DocumentOptions())
    assert result["language"] == "en"


def test_entities_given_as_a_map_of_types_are_flattened() -> None:
    answer = json.dumps({"summary": "x", "entities": {"person": ["Ann Lee"], "place": "Poznan"}})
    result, _ = SummaryProfile().finish(answer, source=SOURCE, options=DocumentOptions())
    assert result["entities"] == [{"name": "Ann Lee", "type": "person"}, {"name": "Poznan", "type": "place"}]


def test_extract_keeps_exactly_the_schema_fields() -> None:
    options = DocumentOptions.parse({"profile": "extract", "schema": SCHEMA})
    answer = '```json\n{"supplier": "Acme | Sons", "total": 1200.5, "extra": 1}\n```'
    result, markdown = ExtractProfile().finish(answer, source=SOURCE, options=options)
    assert result == {"data": {"supplier": "Acme | Sons", "total": 1200.5}}
    assert markdown == (
        "# report.pdf\n\n| Field | Value |\n|---|---|\n| supplier | Acme \\| Sons |\n| total | 1200.5 |\n"
    )


def test_a_missing_extract_field_is_null() -> None:
    options = DocumentOptions.parse({"profile": "extract", "schema": SCHEMA})
    result, _ = ExtractProfile().finish('{"supplier": "Acme"}', source=SOURCE, options=options)
    assert result["data"] == {"supplier": "Acme", "total": None}


def test_a_custom_answer_is_returned_as_is() -> None:
    calls = Calls.for_document(
        name="a.md",
        options={"profile": "custom", "prompt": "List the dates."},
        analysis=None,
        default_model="m",
    )
    result, markdown = calls.profile.finish("  17 Oct, 21 Oct  ", source=calls.source, options=calls.options)
    assert result == {"answer": "17 Oct, 21 Oct"} and markdown == "17 Oct, 21 Oct\n"


def test_map_requests_wrap_the_chunk_in_document_tags_and_name_the_language_first() -> None:
    calls = Calls.for_document(
        name="r.txt",
        options={},
        analysis={"title": "R", "language": {"code": "ru"}},
        default_model="claude-haiku-4-5",
    )
    text, heading = "Итоги квартала.", "Итоги"
    request = calls.map({"index": 1, "text": text, "heading_path": [heading]}, total=3)
    assert request.system.startswith('The document\'s language is "ru". ')
    assert f'<document part="2" of="3" section="{heading}">\n{text}\n</document>' in request.prompt
    assert request.json_output and request.model == "claude-haiku-4-5"
    assert request.max_tokens == SummaryProfile.map_max_tokens
    assert calls.map({"index": 0, "text": "x"}, total=1).max_tokens == SummaryProfile.final_max_tokens


def test_a_reduce_shows_partial_summaries_as_readable_text() -> None:
    calls = Calls.for_document(name="r.txt", options={}, analysis=None, default_model="m")
    partial = json.dumps({"title": "Part", "summary": "First half.", "key_points": ["a"]})
    request = calls.reduce([partial, "not json"], final=True)
    assert '<document part="1">\n# Part\n\nFirst half.\n\n## Key points\n\n- a\n</document>' in request.prompt
    assert '<document part="2">\nnot json\n</document>' in request.prompt
    assert "the whole document" in request.prompt


def test_markdown_puts_model_text_on_one_line_where_structure_depends_on_it() -> None:
    rendered = render_summary({"title": "A\n# injected", "key_points": ["x\n\n## y"], "entities": []})
    assert rendered.splitlines()[0] == "# A # injected"
    assert "- x ## y" in rendered
    assert render_extract({"k": None, "l": [1, 2]}, "t").endswith("| k |  |\n| l | [1, 2] |\n")
