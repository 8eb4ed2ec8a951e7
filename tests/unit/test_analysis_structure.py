"""Markdown, HTML and plain text become the right section tree, tables and counts."""

from __future__ import annotations

import json

from docmill.documents.analysis.analyze import analyze_bytes
from docmill.documents.analysis.blocks import Block
from docmill.documents.analysis.model import DocumentKind, DocumentStructure
from docmill.documents.analysis.readers.html import read_html
from docmill.documents.analysis.readers.markdown import read_markdown
from docmill.documents.analysis.readers.text import read_text
from docmill.documents.analysis.structure import build_sections

MARKDOWN = """\
---
title: Operations Handbook
---
Intro before any heading.

# Shipping

Parcels leave at **noon**.

Returns
-------

Returns are accepted for [30 days](https://example.com/returns).

```
# not a heading inside code
```

| Region | Cut-off |
|:-------|--------:|
| North  | 11:00   |
| South \\| East | 12:00 |

### Deep dive
Text.
"""


def outline(structure: DocumentStructure) -> list[tuple[int, list[str]]]:
    return [(section.level, section.heading_path) for section in structure.all_sections()]


def test_markdown_headings_atx_and_setext_build_a_tree() -> None:
    structure = analyze_bytes(MARKDOWN.encode())
    assert structure.kind is DocumentKind.MARKDOWN
    assert structure.title == "Operations Handbook"
    assert outline(structure) == [
        (0, []),
        (1, ["Shipping"]),
        (2, ["Shipping", "Returns"]),
        (3, ["Shipping", "Returns", "Deep dive"]),
    ]


def test_markdown_pipe_tables_and_code_fences() -> None:
    parsed = read_markdown(MARKDOWN)
    tables = [block for block in parsed.blocks if block.kind == "table"]
    assert [table.rows for table in tables] == [
        [["Region", "Cut-off"], ["North", "11:00"], ["South | East", "12:00"]]
    ]
    assert any(block.text == "# not a heading inside code" for block in parsed.blocks)
    structure = analyze_bytes(MARKDOWN.encode())
    (table,) = structure.tables
    assert (table.heading_path, table.rows, table.cols) == (["Shipping", "Returns"], 3, 2)


HTML = """<!doctype html><html><head><title>Terms</title>
<style>h1 { color: red }</style><script>document.write("<h1>fake</h1>")</script></head>
<body><h1>Terms of Service</h1><p>Welcome.</p>
<h3>Skipped level</h3><p>Still nested.</p>
<h2>Fees</h2>
<table><tr><th>Item</th><th>Fee</th></tr>
<tr><td>Storage</td><td><table><tr><td>5</td><td>EUR</td></tr></table></td></tr></table>
<noscript>Enable JavaScript</noscript>
<h2>Contact</h2><p>Write to <a href="mailto:x@example.com">us</a>.</p></body></html>"""


def test_html_headings_nest_and_script_and_style_are_ignored() -> None:
    structure = analyze_bytes(HTML.encode())
    assert structure.kind is DocumentKind.HTML
    assert structure.title == "Terms"
    assert outline(structure) == [
        (1, ["Terms of Service"]),
        (3, ["Terms of Service", "Skipped level"]),
        (2, ["Terms of Service", "Fees"]),
        (2, ["Terms of Service", "Contact"]),
    ]
    text = "\n".join(chunk.text for chunk in structure.chunks)
    assert "fake" not in text and "color" not in text and "JavaScript" not in text
    assert "Write to us." in text


def test_html_tables_keep_rows_and_flatten_nested_tables() -> None:
    (table,) = read_html(HTML).blocks[5:6]
    assert table.rows == [["Item", "Fee"], ["Storage", "5 EUR"]]


def test_plain_text_headings_from_numbering_capitals_and_underlines() -> None:
    text = (
        "ANNUAL REVIEW\n\n1. Summary\n\nAll good.\n\n1.1 Details\n\nMore here.\n\nAppendix\n========\n\nData."
    )
    parsed = read_text(text)
    assert parsed.title == "ANNUAL REVIEW"
    headings = [(block.level, block.text) for block in parsed.blocks if block.kind == "heading"]
    assert headings == [(1, "1. Summary"), (2, "1.1 Details"), (1, "Appendix")]


def test_plain_text_numbered_lists_are_not_headings() -> None:
    parsed = read_text("Steps:\n\n1. Open the box\n2. Check the contents\n3. Sign the note")
    assert all(block.kind == "paragraph" for block in parsed.blocks)


def test_sections_count_their_own_and_total_characters_and_pages() -> None:
    blocks = [
        Block.paragraph("Cover", page=1),
        Block.heading("A", 1, page=1),
        Block.paragraph("12345", page=1),
        Block.heading("A.1", 2, page=2),
        Block.paragraph("123", page=3),
        Block.heading("B", 1, page=4),
    ]
    preamble, a, b = build_sections(blocks)
    assert (preamble.level, preamble.title, preamble.char_count) == (0, "", 5)
    assert (a.char_count, a.total_char_count, a.page_start, a.page_end) == (5, 8, 1, 3)
    assert (a.children[0].page_start, a.children[0].page_end) == (2, 3)
    assert (b.page_start, b.page_end, b.total_char_count) == (4, 4, 0)


def test_structure_round_trips_through_json() -> None:
    structure = analyze_bytes(MARKDOWN.encode(), filename="handbook.md")
    encoded = json.dumps(structure.to_dict())
    assert DocumentStructure.from_dict(json.loads(encoded)) == structure
    assert json.loads(encoded)["kind"] == "markdown"


def test_counts_cover_words_characters_sections_and_tables() -> None:
    counts = analyze_bytes(MARKDOWN.encode()).counts
    assert (counts.pages, counts.sections, counts.tables) == (None, 3, 1)
    assert counts.words > 20
    assert counts.characters > 100
