"""In-process analysis: bytes in, ``DocumentStructure`` out.

The phases: detect the format from the bytes, read it into blocks with the matching
reader, then build the section tree, tables and counts, detect the language and cut the
chunks. ``analyze_bytes`` trusts nothing about the bytes but has no limits of its own:
untrusted files go through ``sandbox.analyze_file``, whose child process calls this.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import PurePath

from docmill.documents.analysis.blocks import ParsedDocument
from docmill.documents.analysis.chunking import ChunkingOptions, chunk_blocks
from docmill.documents.analysis.detect import (
    TEXT_KINDS,
    Detection,
    detect,
    kind_from_name,
)
from docmill.documents.analysis.errors import AnalysisFailed, FailureCode, NotADocument
from docmill.documents.analysis.language import detect_language
from docmill.documents.analysis.model import DocumentKind, DocumentStructure
from docmill.documents.analysis.structure import (
    block_text,
    build_counts,
    build_sections,
    build_tables,
    heading_paths,
)
from docmill.documents.analysis.tokens import TokenCounter

NO_TEXT_REASON = "The document contains no text to analyse; upload a document with text in it."
NO_TEXT_PDF_REASON = (
    "The PDF contains no text to analyse (its pages are blank); upload a PDF with text in it."
)

# Readers import their parsing libraries (PDFium, python-docx) on first use, so a sandbox
# child analysing a text file does not pay for loading them.
_READER_MODULES: dict[DocumentKind, tuple[str, str]] = {
    DocumentKind.PDF: ("pdf", "read_pdf"),
    DocumentKind.DOCX: ("docx", "read_docx"),
    DocumentKind.PPTX: ("office", "read_pptx"),
    DocumentKind.XLSX: ("office", "read_xlsx"),
    DocumentKind.EPUB: ("epub", "read_epub"),
    DocumentKind.HTML: ("html", "read_html"),
    DocumentKind.MARKDOWN: ("markdown", "read_markdown"),
    DocumentKind.TEXT: ("text", "read_text"),
}


def read_document(data: bytes, detection: Detection) -> ParsedDocument:
    """Run the reader for the detected kind."""
    module_name, function_name = _READER_MODULES[detection.kind]
    module = importlib.import_module(f"docmill.documents.analysis.readers.{module_name}")
    if detection.text is not None:
        text_reader: Callable[[str, str | None], ParsedDocument] = getattr(module, function_name)
        return text_reader(detection.text.text, detection.text.encoding)
    binary_reader: Callable[[bytes], ParsedDocument] = getattr(module, function_name)
    return binary_reader(data)


def analyze_bytes(
    data: bytes,
    *,
    filename: str | None = None,
    chunking: ChunkingOptions | None = None,
    counter: TokenCounter | None = None,
) -> DocumentStructure:
    """Analyse a document held in memory; raise ``AnalysisFailed`` with the reason if it cannot be.

    ``filename`` is only used to explain a mislabelled file; the format always comes
    from the bytes.
    """
    claimed = kind_from_name(filename)
    try:
        detection = detect(data)
    except NotADocument as exc:
        if claimed is not None:
            suffix = PurePath(filename or "").suffix.lower()
            raise AnalysisFailed(
                FailureCode.MISLABELLED,
                f"The file is named {suffix} but is actually {exc.what}, which docmill cannot analyse; "
                "upload the document itself.",
            ) from exc
        raise
    parsed = read_document(data, detection)
    if claimed is not None and _family(claimed) != _family(detection.kind):
        suffix = PurePath(filename or "").suffix.lower()
        parsed.warnings.insert(
            0,
            f"The file is named {suffix} but contains {_describe(detection.kind)}; it was analysed as such.",
        )
    return build_structure(parsed, chunking=chunking, counter=counter)


def build_structure(
    parsed: ParsedDocument, *, chunking: ChunkingOptions | None = None, counter: TokenCounter | None = None
) -> DocumentStructure:
    """Sections, tables, counts, language and chunks of a parsed document."""
    chunking = chunking or ChunkingOptions()
    full_text = "\n".join(block_text(block) for block in parsed.blocks)
    if not full_text.strip():
        reason = NO_TEXT_PDF_REASON if parsed.kind is DocumentKind.PDF else NO_TEXT_REASON
        raise AnalysisFailed(FailureCode.NO_TEXT, reason)
    sections = build_sections(parsed.blocks)
    tables = build_tables(parsed.blocks, heading_paths(parsed.blocks))
    title = parsed.title or next((section.title for section in sections if section.title), None)
    return DocumentStructure(
        kind=parsed.kind,
        title=title,
        sections=sections,
        tables=tables,
        counts=build_counts(parsed.blocks, parsed.pages, sections, len(tables)),
        language=detect_language(full_text),
        chunks=chunk_blocks(parsed.blocks, chunking, counter),
        chunk_tokens=chunking.chunk_tokens,
        encoding=parsed.encoding,
        warnings=parsed.warnings,
        ocr=parsed.ocr,
    )


def _family(kind: DocumentKind) -> str:
    return "text" if kind in TEXT_KINDS else kind.value


def _describe(kind: DocumentKind) -> str:
    return {
        DocumentKind.PDF: "a PDF",
        DocumentKind.DOCX: "a DOCX document",
        DocumentKind.PPTX: "a PPTX presentation",
        DocumentKind.XLSX: "an XLSX workbook",
        DocumentKind.EPUB: "an EPUB book",
        DocumentKind.HTML: "HTML",
        DocumentKind.MARKDOWN: "Markdown",
        DocumentKind.TEXT: "plain text",
    }[kind]
