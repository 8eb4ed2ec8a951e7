"""Markdown read by its grammar: headings, inline markup, raw HTML tables, front matter, code."""

from __future__ import annotations

from docmill.documents.analysis.analyze import analyze_bytes
from docmill.documents.analysis.model import DocumentKind, DocumentStructure
from docmill.documents.analysis.readers.markdown import read_markdown, strip_inline

# A chapter written the way converted manuals are: setext headings, anchors in headings,
# HTML tables with styles, identifiers with underscores, a YAML front matter block.
CHAPTER = """\
---
title: "Storage Guide"
tags: [raid, lvm]
---
Storage Guide
=============

Read this before touching the disks.

Configuring the my_var_name option
----------------------------------

Set `my_var_name` to *true*; see [the manual](https://example.com/manual).

## <span id="_raid_levels"></span>RAID levels

<table style="border: 1px solid">
<tr><th style="text-align:left">Level</th><th>Disks</th></tr>
<tr><td style="color: red">RAID-0</td><td>2</td></tr>

<tr><td>RAID-1</td><td>2</td></tr>
</table>

```sh
# mdadm --detail /dev/md0
```

    # an indented code block is not a heading either

### Mirrors <a name="mirrors"></a>

- a list item with <b>bold</b> HTML
- another item

<div class="note">
<table><tr><td>Tip</td><td>Keep a spare disk</td></tr></table>
</div>

| Option | Default |
|--------|---------|
| `chunk_size` | 512 |

# Appendix
"""


def outline(structure: DocumentStructure) -> list[tuple[int, list[str]]]:
    return [(section.level, section.heading_path) for section in structure.all_sections()]


def test_headings_of_every_kind_build_the_exact_tree() -> None:
    structure = analyze_bytes(CHAPTER.encode(), filename="storage.md")
    assert structure.kind is DocumentKind.MARKDOWN
    assert structure.title == "Storage Guide"
    assert outline(structure) == [
        (1, ["Storage Guide"]),
        (2, ["Storage Guide", "Configuring the my_var_name option"]),
        (2, ["Storage Guide", "RAID levels"]),
        (3, ["Storage Guide", "RAID levels", "Mirrors"]),
        (1, ["Appendix"]),
    ]


def test_html_tables_are_tables_and_no_tag_reaches_the_text() -> None:
    structure = analyze_bytes(CHAPTER.encode(), filename="storage.md")
    assert [(table.heading_path, table.rows, table.cols) for table in structure.tables] == [
        (["Storage Guide", "RAID levels"], 3, 2),
        (["Storage Guide", "RAID levels", "Mirrors"], 1, 2),
        (["Storage Guide", "RAID levels", "Mirrors"], 2, 2),
    ]
    assert structure.tables[0].preview == [["Level", "Disks"], ["RAID-0", "2"], ["RAID-1", "2"]]
    assert structure.tables[2].preview == [["Option", "Default"], ["chunk_size", "512"]]
    assert structure.counts.tables == 3
    text = "\n".join(chunk.text for chunk in structure.chunks)
    for markup in ("<", ">", "style", "span", "text-align"):
        assert markup not in text
    assert "- a list item with bold HTML" in text


def test_code_keeps_its_text_and_never_makes_headings() -> None:
    blocks = read_markdown(CHAPTER).blocks
    code = [block.text for block in blocks if block.kind == "paragraph" and block.text.startswith("#")]
    assert code == ["# mdadm --detail /dev/md0", "# an indented code block is not a heading either"]


def test_front_matter_is_skipped_and_gives_the_title() -> None:
    parsed = read_markdown(CHAPTER)
    assert parsed.title == "Storage Guide"
    assert all("tags:" not in block.text for block in parsed.blocks)


def test_inline_markup_is_stripped_by_the_grammar() -> None:
    assert strip_inline("The my_var_name option") == "The my_var_name option"
    assert strip_inline('<span id="_x_y"></span>Second heading') == "Second heading"
    assert strip_inline("**Bold** _emphasis_ `code_x` [label](https://x.test) ![alt text](i.png)") == (
        "Bold emphasis code_x label alt text"
    )
    assert strip_inline(r"Escaped \*stars\* and snake_case_name") == "Escaped *stars* and snake_case_name"


def test_counts_match_the_html_twin() -> None:
    markdown = "# Fees\n\n<table><tr><td>Storage</td><td>5 EUR</td></tr></table>\n"
    html = "<html><body><h1>Fees</h1><table><tr><td>Storage</td><td>5 EUR</td></tr></table></body></html>"
    from_markdown = analyze_bytes(markdown.encode(), filename="fees.md")
    from_html = analyze_bytes(html.encode(), filename="fees.html")
    assert from_markdown.counts.words == from_html.counts.words == 4
    assert from_markdown.counts.tables == from_html.counts.tables == 1
