"""Markdown by its grammar: CommonMark (markdown-it-py) with GitHub pipe tables.

- Headings are what the parser says they are: ATX (``## Title``) and setext (underlined),
  never a ``#`` line inside code. Their titles are the plain text of the inline content:
  emphasis, code and link marks go, raw HTML tags go, and ``my_var_name`` keeps its
  underscores (intraword ``_`` is not emphasis in CommonMark).
- Raw HTML blocks are read by the HTML reader, so an HTML table is a table and no tag
  reaches the text. A block that opens a ``<table>`` runs until the table closes, even
  across the blank lines that end a CommonMark HTML block.
- Paragraphs, lists and block quotes keep their Markdown source (a model reads it well)
  without inline HTML tags; code keeps its text.
- A YAML front matter block is skipped, its ``title:`` kept.
"""

from __future__ import annotations

import re
from functools import cache

from markdown_it import MarkdownIt
from markdown_it.token import Token

from docmill.documents.analysis.blocks import Block, ParsedDocument
from docmill.documents.analysis.model import DocumentKind
from docmill.documents.analysis.readers.html import html_blocks

_FRONT_TITLE = re.compile(r"^title:\s*[\"']?(.*?)[\"']?\s*$", re.I)
_FRONT_MATTER_MAX_LINES = 200
_TABLE_OPEN = re.compile(r"<table\b", re.I)
_TABLE_CLOSE = re.compile(r"</table\s*>", re.I)
_CONTAINERS = {"bullet_list_open", "ordered_list_open", "blockquote_open", "paragraph_open"}


@cache
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def plain_text(inline: Token) -> str:
    """The text a reader sees in an inline token: no marks, no tags, images by their alt text."""
    parts: list[str] = []
    for child in inline.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(plain_text(child))
    return " ".join("".join(parts).split())


def strip_inline(text: str) -> str:
    """Plain text of one line of inline Markdown (a title, a cell)."""
    tokens = _parser().parseInline(text)
    return plain_text(tokens[0]) if tokens else ""


def _front_matter(lines: list[str]) -> tuple[int, str | None]:
    """Where the body starts after a YAML front matter block, and the block's title."""
    if not lines or lines[0].strip() != "---":
        return 0, None
    limit = min(len(lines), _FRONT_MATTER_MAX_LINES)
    end = next((i for i in range(1, limit) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        return 0, None
    title = None
    for line in lines[1:end]:
        match = _FRONT_TITLE.match(line)
        if match:
            title = match.group(1) or None
    return end + 1, title


def read_markdown(text: str, encoding: str | None = None) -> ParsedDocument:
    lines = text.lstrip("\ufeff").splitlines()
    start, title = _front_matter(lines)
    lines = lines[start:]
    tokens = _parser().parse("\n".join(lines))
    blocks: list[Block] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type == "heading_open":
            heading = plain_text(tokens[index + 1])
            if heading:
                blocks.append(Block.heading(heading, int(token.tag[1:])))
            index += 3
        elif token.type in ("fence", "code_block"):
            if token.content.strip():
                blocks.append(Block.paragraph(token.content.strip("\n")))
            index += 1
        elif token.type == "html_block":
            index = _html(tokens, index, lines, blocks)
        elif token.type == "table_open":
            index = _table(tokens, index, blocks)
        elif token.type in _CONTAINERS:
            end = _closing(tokens, index)
            source = _without_html(_source(lines, token), tokens[index:end])
            if source.strip():
                blocks.append(Block.paragraph(source.strip()))
            index = end + 1
        else:  # hr and anything without text
            index = _closing(tokens, index) + 1
    if title is None:
        title = next((block.text for block in blocks if block.kind == "heading" and block.level == 1), None)
    return ParsedDocument(DocumentKind.MARKDOWN, blocks, title=title, encoding=encoding)


def _closing(tokens: list[Token], index: int) -> int:
    """Index of the token closing the top-level block opened at ``index`` (itself if none)."""
    if tokens[index].nesting != 1:
        return index
    depth = 0
    for position in range(index, len(tokens)):
        depth += tokens[position].nesting
        if depth == 0:
            return position
    return len(tokens) - 1


def _source(lines: list[str], token: Token) -> str:
    start, end = token.map or (0, 0)
    return "\n".join(lines[start:end])


def _without_html(source: str, tokens: list[Token]) -> str:
    """The source with every raw HTML tag the parser found inside the block removed."""
    for token in tokens:
        for child in token.children or ():
            if child.type == "html_inline":
                source = source.replace(child.content, "", 1)
        if token.type == "html_block":
            source = source.replace(token.content.rstrip("\n"), "", 1)
    return "\n".join(line.rstrip() for line in source.splitlines())


def _html(tokens: list[Token], index: int, lines: list[str], blocks: list[Block]) -> int:
    """Read a run of raw HTML with the HTML reader; return the index after it."""
    parts = [tokens[index].content]
    open_tables = _open_tables(parts[0])
    index += 1
    while index < len(tokens) and (tokens[index].type == "html_block" or open_tables > 0):
        token = tokens[index]
        end = _closing(tokens, index)
        part = token.content if token.type == "html_block" else _source(lines, token)
        parts.append(part)
        open_tables += _open_tables(part)
        index = end + 1
    found, _ = html_blocks("\n".join(parts))
    blocks.extend(found)
    return index


def _open_tables(html: str) -> int:
    return len(_TABLE_OPEN.findall(html)) - len(_TABLE_CLOSE.findall(html))


def _table(tokens: list[Token], index: int, blocks: list[Block]) -> int:
    rows: list[list[str]] = []
    end = _closing(tokens, index)
    for token in tokens[index:end]:
        if token.type == "tr_open":
            rows.append([])
        elif token.type == "inline" and rows:
            rows[-1].append(plain_text(token))
    if rows:
        blocks.append(Block.table(rows))
    return end + 1
