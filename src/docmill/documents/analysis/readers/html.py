"""HTML: headings h1-h6, paragraphs from block elements, tables as rows (html.parser).

Script, style and other non-text elements are skipped. A table nested in a table cell is
flattened into that cell's text. The ``<title>`` element gives the document title.
"""

from __future__ import annotations

from html.parser import HTMLParser

from docmill.documents.analysis.blocks import Block, ParsedDocument
from docmill.documents.analysis.model import DocumentKind

_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas"})
_BLOCK = frozenset(
    {
        "p", "div", "li", "ul", "ol", "dl", "dt", "dd", "section", "article", "header", "footer",
        "main", "aside", "nav", "blockquote", "pre", "figure", "figcaption", "address", "br", "hr",
        "form", "fieldset", "details", "summary", "body", "caption",
    }
)  # fmt: skip
_HEADINGS = {f"h{level}": level for level in range(1, 7)}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.title: str | None = None
        self._text: list[str] = []
        self._skip_depth = 0
        self._in_title = False
        self._title_text: list[str] = []
        self._heading: int | None = None
        # One entry per open table: its rows, each a list of cell texts, plus the open cell.
        self._tables: list[tuple[list[list[str]], list[str] | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip_depth += 1
        elif tag == "title":
            self._in_title = True
        elif tag in _HEADINGS and not self._tables:
            self._flush()
            self._heading = _HEADINGS[tag]
        elif tag == "table":
            self._flush_outside_tables()
            self._tables.append(([], None))
        elif tag == "tr" and self._tables:
            self._close_cell()
            self._tables[-1][0].append([])
        elif tag in ("td", "th") and self._tables:
            self._close_cell()
            rows, _ = self._tables[-1]
            if not rows:
                rows.append([])
            self._tables[-1] = (rows, [])
        elif tag in _BLOCK:
            self._flush_outside_tables()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag == "title":
            self._in_title = False
            self.title = " ".join("".join(self._title_text).split()) or None
        elif tag in _HEADINGS and self._heading is not None:
            text = self._take()
            if text:
                self.blocks.append(Block.heading(text, self._heading))
            self._heading = None
        elif tag in ("td", "th") and self._tables:
            self._close_cell()
        elif tag == "table" and self._tables:
            self._close_cell()
            rows, _ = self._tables.pop()
            rows = [row for row in rows if any(row)]
            if self._tables and self._tables[-1][1] is not None:
                self._tables[-1][1].append(" ".join(" ".join(row) for row in rows))
            elif rows:
                self.blocks.append(Block.table(rows))
        elif tag in _BLOCK:
            self._flush_outside_tables()

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._in_title:
            self._title_text.append(data)
        elif self._tables:
            cell = self._tables[-1][1]
            if cell is not None:
                cell.append(data)
        else:
            self._text.append(data)

    def close(self) -> None:
        super().close()
        while self._tables:
            self.handle_endtag("table")
        self._flush()

    def _close_cell(self) -> None:
        rows, cell = self._tables[-1]
        if cell is not None:
            rows[-1].append(" ".join("".join(cell).split()))
            self._tables[-1] = (rows, None)

    def _take(self) -> str:
        text = " ".join("".join(self._text).split())
        self._text = []
        return text

    def _flush_outside_tables(self) -> None:
        if not self._tables and self._heading is None:
            self._flush()

    def _flush(self) -> None:
        text = self._take()
        if text:
            self.blocks.append(Block.paragraph(text))


def html_blocks(text: str) -> tuple[list[Block], str | None]:
    """Blocks and ``<title>`` of an HTML (or XHTML) document."""
    collector = _Collector()
    collector.feed(text)
    collector.close()
    return collector.blocks, collector.title


def read_html(text: str, encoding: str | None = None) -> ParsedDocument:
    blocks, title = html_blocks(text)
    if title is None:
        title = next((block.text for block in blocks if block.kind == "heading" and block.level == 1), None)
    return ParsedDocument(DocumentKind.HTML, blocks, title=title, encoding=encoding)
