"""PPTX and XLSX, read straight from their XML with ElementTree.

PPTX: one page per slide, in presentation order; the title placeholder of a slide is a
level-1 heading, other text frames are paragraphs, tables are tables.
XLSX: one level-1 heading per sheet (its name) followed by the sheet's cells as a table
(shared strings and inline strings resolved, formulas as their cached values).
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from xml.etree import ElementTree

from docmill.documents.analysis.blocks import Block, ParsedDocument
from docmill.documents.analysis.errors import AnalysisFailed, FailureCode
from docmill.documents.analysis.model import DocumentKind
from docmill.documents.analysis.zipguard import ZIP_DAMAGED_REASON, has_member, open_zip, read_member

_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
_S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_TITLE_PLACEHOLDERS = frozenset({"title", "ctrTitle"})
MAX_SHEET_ROWS = 5_000
_COLUMN = re.compile(r"^([A-Z]+)")


def _xml(archive: zipfile.ZipFile, name: str) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(read_member(archive, name))
    except ElementTree.ParseError as exc:
        raise AnalysisFailed(FailureCode.CORRUPT, ZIP_DAMAGED_REASON) from exc


def _targets(archive: zipfile.ZipFile, part: str) -> dict[str, str]:
    """Relationship id -> member name, for the relationships of ``part``."""
    folder, name = posixpath.split(part)
    rels = posixpath.join(folder, "_rels", name + ".rels")
    if not has_member(archive, rels):
        return {}
    found: dict[str, str] = {}
    for rel in _xml(archive, rels).iter(f"{_REL}Relationship"):
        target = rel.get("Target", "")
        found[rel.get("Id", "")] = posixpath.normpath(posixpath.join(folder, target)).lstrip("/")
    return found


def _text(element: ElementTree.Element, tag: str) -> str:
    return " ".join("".join(node.text or "" for node in element.iter(tag)).split())


def read_pptx(data: bytes) -> ParsedDocument:
    with open_zip(data) as archive:
        targets = _targets(archive, "ppt/presentation.xml")
        order = [
            targets.get(slide.get(f"{_R}id", ""), "")
            for slide in _xml(archive, "ppt/presentation.xml").iter(f"{_P}sldId")
        ]
        blocks: list[Block] = []
        for page, slide_name in enumerate((name for name in order if has_member(archive, name)), start=1):
            slide = _xml(archive, slide_name)
            for shape in slide.iter(f"{_P}sp"):
                placeholder = shape.find(f"{_P}nvSpPr/{_P}nvPr/{_P}ph")
                paragraphs = [_text(p, f"{_A}t") for p in shape.iter(f"{_A}p")]
                paragraphs = [text for text in paragraphs if text]
                if not paragraphs:
                    continue
                if placeholder is not None and placeholder.get("type") in _TITLE_PLACEHOLDERS:
                    blocks.append(Block.heading(" ".join(paragraphs), 1, page))
                else:
                    blocks.extend(Block.paragraph(text, page) for text in paragraphs)
            for table in slide.iter(f"{_A}tbl"):
                rows = [
                    [_text(cell, f"{_A}t") for cell in row.iter(f"{_A}tc")] for row in table.iter(f"{_A}tr")
                ]
                if rows:
                    blocks.append(Block.table(rows, page))
    title = next((block.text for block in blocks if block.kind == "heading"), None)
    return ParsedDocument(DocumentKind.PPTX, blocks, title=title, pages=len(order))


def _column_index(reference: str) -> int:
    match = _COLUMN.match(reference)
    if not match:
        return -1
    index = 0
    for letter in match.group(1):
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def read_xlsx(data: bytes) -> ParsedDocument:
    with open_zip(data) as archive:
        shared: list[str] = []
        if has_member(archive, "xl/sharedStrings.xml"):
            shared = [_text(item, f"{_S}t") for item in _xml(archive, "xl/sharedStrings.xml").iter(f"{_S}si")]
        targets = _targets(archive, "xl/workbook.xml")
        blocks: list[Block] = []
        warnings: list[str] = []
        for sheet in _xml(archive, "xl/workbook.xml").iter(f"{_S}sheet"):
            name = sheet.get("name", "Sheet")
            member = targets.get(sheet.get(f"{_R}id", ""), "")
            if not has_member(archive, member):
                continue
            rows: list[list[str]] = []
            for row in _xml(archive, member).iter(f"{_S}row"):
                if len(rows) >= MAX_SHEET_ROWS:
                    warnings.append(
                        f"Sheet {name!r} has more than {MAX_SHEET_ROWS} rows; the rest was skipped."
                    )
                    break
                cells: list[str] = []
                for cell in row.iter(f"{_S}c"):
                    column = _column_index(cell.get("r", ""))
                    value = _cell_value(cell, shared)
                    if column >= len(cells):
                        cells.extend([""] * (column - len(cells)))
                    cells.append(value)
                if any(cells):
                    rows.append(cells)
            blocks.append(Block.heading(name, 1))
            if rows:
                blocks.append(Block.table(rows))
    return ParsedDocument(DocumentKind.XLSX, blocks, warnings=warnings)


def _cell_value(cell: ElementTree.Element, shared: list[str]) -> str:
    kind = cell.get("t")
    if kind == "inlineStr":
        return _text(cell, f"{_S}t")
    value = cell.findtext(f"{_S}v") or ""
    if kind == "s":
        try:
            return shared[int(value)]
        except (ValueError, IndexError):
            return ""
    return value.strip()
