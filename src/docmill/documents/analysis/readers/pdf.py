"""PDF: text per page and the outline through PDFium (pypdfium2).

Sections come from the outline (bookmarks) when the document has one: each bookmark is
matched to the line printing its title on its target page, or placed at the top of that
page when no line matches. Without an outline, headings are guessed from the layout:
lines set larger than the body text, else numbered or all-capitals lines
(see ``layout``). Lines between headings are joined into paragraphs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw

from docmill.documents.analysis import ocr
from docmill.documents.analysis.blocks import Block, BlockKind, ParsedDocument
from docmill.documents.analysis.errors import AnalysisFailed, FailureCode
from docmill.documents.analysis.model import DocumentKind, OcrInfo
from docmill.documents.analysis.readers import layout

ENCRYPTED_REASON = "The PDF is password-protected; upload an unlocked copy."
SECURITY_REASON = "The PDF is protected by an encryption scheme docmill cannot open; upload an unlocked copy."
TRUNCATED_REASON = "The PDF is incomplete (the file ends too early); upload the complete file."
CORRUPT_REASON = "The PDF is damaged and cannot be read; upload an intact copy."
TRUNCATED_WARNING = "The PDF has no end-of-file marker, so it may be cut short and miss content."
NO_OCR_REASON = (
    "The PDF contains no extractable text (its pages are scanned images) and no OCR engine is installed"
)
OCR_FOUND_NOTHING_REASON = (
    "The PDF's pages are images in which OCR found no text; upload a PDF with a text layer or a clearer scan."
)
MAX_TITLE_CHARS = 200

_LINE = re.compile(r"([^\r\n]*)(\r\n|\n|\r|$)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_MAX_OUTLINE_DEPTH = 6
_PARAGRAPH_END = (".", "!", "?", ":", "…")


@dataclass
class Line:
    text: str
    size: float


@dataclass
class Bookmark:
    title: str
    level: int
    page: int


def read_pdf(data: bytes) -> ParsedDocument:
    """Read a PDF from bytes; raise ``AnalysisFailed`` for encrypted, truncated or damaged files."""
    document = open_pdf(data)
    warnings: list[str] = []
    if b"%%EOF" not in data[-2048:]:
        warnings.append(TRUNCATED_WARNING)
    try:
        pages = [page_lines(document, index, warnings) for index in range(len(document))]
        ocr_info = read_scanned_pages(document, pages, warnings)
        bookmarks = read_bookmarks(document)
        title = (document.get_metadata_value("Title") or "").strip() or None
    finally:
        document.close()
    title = title or first_page_title(pages)
    blocks = blocks_from_outline(pages, bookmarks) if bookmarks else blocks_from_layout(pages)
    return ParsedDocument(
        DocumentKind.PDF, blocks, title=title, pages=len(pages), warnings=warnings, ocr=ocr_info
    )


def read_scanned_pages(
    document: pdfium.PdfDocument, pages: list[list[Line]], warnings: list[str]
) -> OcrInfo | None:
    """OCR the pages that show something but hold no text, in place; see ``ocr``."""
    scanned = [index for index, lines in enumerate(pages) if not _has_text(lines) and _draws(document, index)]
    if not scanned:
        return None
    tesseract = ocr.find_tesseract()
    if tesseract is None:
        if not any(_has_text(lines) for lines in pages):
            raise AnalysisFailed(
                FailureCode.NO_TEXT,
                f"{NO_OCR_REASON}; {ocr.TESSERACT_INSTALL}, or upload a PDF with a text layer.",
            )
        skipped = (
            f"No OCR engine is installed, so {_pages_phrase(scanned)} (images without text) were skipped"
        )
        warnings.append(f"{skipped}; {ocr.TESSERACT_INSTALL} to read them.")
        return None
    read: list[ocr.OcrPage] = []
    for index in scanned:
        page = ocr_page(document, index, tesseract)
        pages[index] = [Line(line.text, line.size) for line in page.lines]
        read.append(page)
    if not any(_has_text(lines) for lines in pages):
        raise AnalysisFailed(FailureCode.NO_TEXT, OCR_FOUND_NOTHING_REASON)
    info = OcrInfo(
        pages=[index + 1 for index in scanned],
        engine=tesseract.engine,
        mean_confidence=ocr.mean_confidence(read),
    )
    warnings.append(
        f"The text of {_pages_phrase(scanned)} was read by OCR (mean word confidence "
        f"{info.mean_confidence:.0f}%), so it may contain misread words."
    )
    return info


def ocr_page(document: pdfium.PdfDocument, index: int, tesseract: ocr.Tesseract) -> ocr.OcrPage:
    page = document[index]
    try:
        bitmap = page.render(scale=ocr.RENDER_DPI / ocr.PDF_POINTS_PER_INCH, grayscale=True)
        try:
            image = ocr.pgm(bitmap.width, bitmap.height, bitmap.stride, bytes(bitmap.buffer))
        finally:
            bitmap.close()
    finally:
        page.close()
    return ocr.read_image(tesseract, image)


def _has_text(lines: list[Line]) -> bool:
    return any(line.text for line in lines)


def _draws(document: pdfium.PdfDocument, index: int) -> bool:
    """Whether a page shows anything at all (an image, shapes): a blank page needs no OCR."""
    page = document[index]
    try:
        objects: int = pdfium_raw.FPDFPage_CountObjects(page.raw)
        return objects > 0
    finally:
        page.close()


def _pages_phrase(indexes: list[int]) -> str:
    """``page 3`` or ``pages 3, 5, 8``."""
    numbers = ", ".join(str(index + 1) for index in indexes[:20]) + (", ..." if len(indexes) > 20 else "")
    return f"page{'s' if len(indexes) > 1 else ''} {numbers}"


def first_page_title(pages: list[list[Line]]) -> str | None:
    """The largest text of the first page with text, when it is set larger than the body."""
    first = next((lines for lines in pages if _has_text(lines)), [])
    sized = [(line.text, line.size) for lines in pages for line in lines if line.text]
    body = layout.body_size(sized)
    largest = max((round(line.size * 2) / 2 for line in first if line.text), default=0.0)
    if largest < body * layout.HEADING_SIZE_RATIO:
        return None
    title: list[str] = []
    for line in first:
        if line.text and round(line.size * 2) / 2 == largest:
            title.append(line.text)
        elif title:
            break
    text = " ".join(" ".join(title).split())
    return text[:MAX_TITLE_CHARS] or None


def open_pdf(data: bytes) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if exc.err_code == pdfium_raw.FPDF_ERR_PASSWORD:
            raise AnalysisFailed(FailureCode.ENCRYPTED, ENCRYPTED_REASON) from exc
        if exc.err_code == pdfium_raw.FPDF_ERR_SECURITY:
            raise AnalysisFailed(FailureCode.ENCRYPTED, SECURITY_REASON) from exc
        if b"%%EOF" not in data[-2048:]:
            raise AnalysisFailed(FailureCode.TRUNCATED, TRUNCATED_REASON) from exc
        raise AnalysisFailed(FailureCode.CORRUPT, CORRUPT_REASON) from exc


def page_lines(document: pdfium.PdfDocument, index: int, warnings: list[str]) -> list[Line]:
    try:
        page = document[index]
        textpage = page.get_textpage()
    except pdfium.PdfiumError:
        warnings.append(f"Page {index + 1} could not be read and was skipped.")
        return []
    try:
        text = textpage.get_text_range()
        lines: list[Line] = []
        for match in _LINE.finditer(text):
            raw_line = match.group(1)
            stripped = raw_line.strip()
            if not stripped:
                if match.group(2):
                    lines.append(Line("", 0.0))
                continue
            first_char = match.start(1) + (len(raw_line) - len(raw_line.lstrip()))
            size = pdfium_raw.FPDFText_GetFontSize(textpage.raw, first_char)
            lines.append(Line(_CONTROL.sub("", stripped), float(size)))
        return lines
    finally:
        textpage.close()
        page.close()


def read_bookmarks(document: pdfium.PdfDocument) -> list[Bookmark]:
    found: list[Bookmark] = []
    last_page = 0
    for bookmark in document.get_toc(max_depth=_MAX_OUTLINE_DEPTH):
        title = " ".join(bookmark.get_title().split())
        if not title:
            continue
        dest = bookmark.get_dest()
        page = dest.get_index() if dest is not None else None
        if page is None or page < 0:
            page = last_page
        last_page = page
        found.append(Bookmark(title, bookmark.level + 1, page))
    return found


def blocks_from_outline(pages: list[list[Line]], bookmarks: list[Bookmark]) -> list[Block]:
    by_page: dict[int, list[Bookmark]] = {}
    for bookmark in bookmarks:
        by_page.setdefault(min(bookmark.page, max(len(pages) - 1, 0)), []).append(bookmark)
    blocks: list[Block] = []
    for index, lines in enumerate(pages):
        page_no = index + 1
        before: dict[int, list[Bookmark]] = {}
        printed: dict[int, Bookmark] = {}
        cursor = 0
        for bookmark in by_page.get(index, []):
            position = next(
                (i for i in range(cursor, len(lines)) if layout.matches_title(lines[i].text, bookmark.title)),
                None,
            )
            if position is None:
                before.setdefault(cursor, []).append(bookmark)
            else:
                printed[position] = bookmark
                cursor = position + 1
        paragraph: list[Line] = []
        for position, line in enumerate([*lines, Line("", 0.0)]):
            if position in before or position in printed:
                blocks.extend(_paragraphs(paragraph, page_no))
                paragraph = []
                for bookmark in before.get(position, []):
                    blocks.append(Block.heading(bookmark.title, bookmark.level, page_no))
                if position in printed:
                    bookmark = printed[position]
                    blocks.append(Block.heading(bookmark.title, bookmark.level, page_no))
                    continue
            paragraph.append(line)
        blocks.extend(_paragraphs(paragraph, page_no))
    return blocks


def blocks_from_layout(pages: list[list[Line]]) -> list[Block]:
    sized = [(line.text, line.size) for lines in pages for line in lines if line.text]
    body = layout.body_size(sized)
    size_levels = layout.levels_by_size(sized, body)
    blocks: list[Block] = []
    for index, lines in enumerate(pages):
        page_no = index + 1
        paragraph: list[Line] = []
        for line in [*lines, Line("", 0.0)]:
            level = _heading_level(line, size_levels)
            if level is None:
                paragraph.append(line)
                continue
            blocks.extend(_paragraphs(paragraph, page_no))
            paragraph = []
            previous = blocks[-1] if blocks else None
            if (
                previous
                and previous.kind is BlockKind.HEADING
                and previous.level == level
                and previous.page == page_no
            ):
                previous.text = f"{previous.text} {line.text}"
            else:
                blocks.append(Block.heading(line.text, level, page_no))
        blocks.extend(_paragraphs(paragraph, page_no))
    return blocks


def _heading_level(line: Line, size_levels: dict[float, int]) -> int | None:
    if not line.text or len(line.text) > layout.MAX_HEADING_CHARS:
        return None
    if size_levels:
        return size_levels.get(round(line.size * 2) / 2)
    numbered = layout.numbered_level(line.text)
    if numbered is not None:
        return numbered
    return 1 if layout.is_caps_heading(line.text) else None


def _paragraphs(lines: list[Line], page: int) -> list[Block]:
    """Join lines into paragraphs: a short line closing a sentence, or a blank line, ends one."""
    typical = max((len(line.text) for line in lines), default=0)
    blocks: list[Block] = []
    current = ""
    for line in lines:
        if not line.text:
            if current:
                blocks.append(Block.paragraph(current, page))
            current = ""
            continue
        if current.endswith("-") and line.text[:1].islower():
            current = current[:-1] + line.text
        else:
            current = f"{current} {line.text}" if current else line.text
        if line.text.endswith(_PARAGRAPH_END) and len(line.text) < 0.8 * typical:
            blocks.append(Block.paragraph(current, page))
            current = ""
    if current:
        blocks.append(Block.paragraph(current, page))
    return blocks
