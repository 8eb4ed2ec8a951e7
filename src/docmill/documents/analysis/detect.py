"""Detecting a document's format from its bytes, never from its name.

Order of the checks, strongest evidence first:

1. empty (or only whitespace) -> failure;
2. magic numbers: ``%PDF-`` near the start (then objects), ``PK`` (then the ZIP's member names tell
   DOCX, PPTX, XLSX and EPUB apart), the OLE container of old Office files and of
   password-protected Office files, and a table of common non-documents (images,
   archives, executables) so the failure can say what the file really is;
3. text: bytes that decode as text (see ``encoding``) are HTML when they open with or
   are dense in HTML tags, Markdown when they score enough Markdown markers, else
   plain text;
4. anything else is binary nobody can read -> failure.

The file name is used only afterwards, by ``kind_from_name``, to warn about or explain a
mislabelled file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

from docmill.documents.analysis.encoding import DecodedText, decode_text
from docmill.documents.analysis.errors import SUPPORTED_FORMATS, AnalysisFailed, FailureCode, NotADocument
from docmill.documents.analysis.model import DocumentKind
from docmill.documents.analysis.zipguard import (
    ZIP_DAMAGED_REASON,
    ZIP_ENCRYPTED_REASON,
    has_member,
    open_zip,
    read_member,
)

EMPTY_REASON = "The file is empty; upload a document with some content."
BINARY_REASON = f"The file is not a document format docmill can read; upload {SUPPORTED_FORMATS}."
OLE_ENCRYPTED_REASON = "The Office document is password-protected; upload an unlocked copy."
DOCX_DAMAGED_REASON = "The DOCX file is damaged or incomplete; upload an intact copy."

_PDF_OBJECT = re.compile(rb"\d+\s+\d+\s+obj\b")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# (magic, offset, what the file is) for files people upload by mistake.
_NOT_DOCUMENTS: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "a PNG image"),
    (b"\xff\xd8\xff", 0, "a JPEG image"),
    (b"GIF87a", 0, "a GIF image"),
    (b"GIF89a", 0, "a GIF image"),
    (b"II*\x00", 0, "a TIFF image"),
    (b"MM\x00*", 0, "a TIFF image"),
    (b"BM", 0, "a BMP image"),
    (b"WEBP", 8, "a WebP image"),
    (b"\x1f\x8b", 0, "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", 0, "a 7-Zip archive"),
    (b"Rar!\x1a\x07", 0, "a RAR archive"),
    (b"\x7fELF", 0, "a program (ELF executable)"),
    (b"MZ", 0, "a Windows program"),
    (b"{\\rtf", 0, "an RTF document"),
    (b"ID3", 0, "an MP3 audio file"),
    (b"ftyp", 4, "a video or audio file"),
)
TEXT_KINDS = frozenset({DocumentKind.HTML, DocumentKind.MARKDOWN, DocumentKind.TEXT})
_ZIP_KINDS: tuple[tuple[str, DocumentKind], ...] = (
    ("word/document.xml", DocumentKind.DOCX),
    ("ppt/presentation.xml", DocumentKind.PPTX),
    ("xl/workbook.xml", DocumentKind.XLSX),
)
_NAME_KINDS: dict[str, DocumentKind] = {
    ".pdf": DocumentKind.PDF,
    ".docx": DocumentKind.DOCX,
    ".pptx": DocumentKind.PPTX,
    ".xlsx": DocumentKind.XLSX,
    ".epub": DocumentKind.EPUB,
    ".html": DocumentKind.HTML,
    ".htm": DocumentKind.HTML,
    ".xhtml": DocumentKind.HTML,
    ".md": DocumentKind.MARKDOWN,
    ".markdown": DocumentKind.MARKDOWN,
    ".txt": DocumentKind.TEXT,
    ".text": DocumentKind.TEXT,
}

_HTML_START = re.compile(
    r"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)\b", re.I | re.S
)
_HTML_TAG = re.compile(
    r"<(html|head|body|title|meta|h[1-6]|p|div|span|table|tr|td|ul|ol|li|a|br)\b[^>]*>", re.I
)
_MD_ATX = re.compile(r"^#{1,6}[ \t]+\S", re.M)
_MD_SETEXT = re.compile(r"^[^\s#>|-].*\n(=+|-{2,})[ \t]*$", re.M)
_MD_TABLE_RULE = re.compile(r"^\|?[ \t]*:?-{3,}:?[ \t]*(\|[ \t]*:?-{3,}:?[ \t]*)+\|?[ \t]*$", re.M)
_MD_FENCE = re.compile(r"^(```|~~~)", re.M)
_MD_LINK = re.compile(r"\[[^\]\n]+\]\([^)\s]+\)")
_MD_EMPHASIS = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
_MD_LIST = re.compile(r"^[ \t]*([-*+]|\d+\.)[ \t]+\S", re.M)
# Markdown needs this many points of evidence; one ATX heading or one table is enough.
_MARKDOWN_THRESHOLD = 3.0


@dataclass(frozen=True)
class Detection:
    """What the bytes are; ``text`` is the decoded text for text formats."""

    kind: DocumentKind
    text: DecodedText | None = None


def detect(data: bytes) -> Detection:
    """Return the document kind of ``data`` or raise ``AnalysisFailed`` saying why not."""
    if not data.strip():
        raise AnalysisFailed(FailureCode.EMPTY, EMPTY_REASON)
    if _is_pdf(data):
        return Detection(DocumentKind.PDF)
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return Detection(_zip_kind(data))
    if data.startswith(_OLE_MAGIC):
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise AnalysisFailed(FailureCode.ENCRYPTED, OLE_ENCRYPTED_REASON)
        raise NotADocument("an old-format Microsoft Office file (.doc, .xls or .ppt)")
    for magic, offset, what in _NOT_DOCUMENTS:
        if data[offset : offset + len(magic)] == magic:
            raise NotADocument(what)
    decoded = decode_text(data)
    if decoded is None:
        raise AnalysisFailed(FailureCode.UNSUPPORTED, BINARY_REASON)
    if not decoded.text.strip():
        raise AnalysisFailed(FailureCode.EMPTY, EMPTY_REASON)
    return Detection(text_kind(decoded.text), decoded)


def _is_pdf(data: bytes) -> bool:
    """``%PDF-`` within the first KiB (readers accept junk before it), followed by objects.

    The object check keeps a text file that merely mentions ``%PDF-1.4`` from being taken
    for a PDF.
    """
    start = data.find(b"%PDF-", 0, 1024)
    if start < 0:
        return False
    return not data[:start].strip() or _PDF_OBJECT.search(data, start, start + 65_536) is not None


def text_kind(text: str) -> DocumentKind:
    """Tell HTML, Markdown and plain text apart from the first 64 KiB of decoded text."""
    head = text[:65_536].lstrip("\ufeff")
    if _HTML_START.match(head):
        return DocumentKind.HTML
    tags = len(_HTML_TAG.findall(head))
    score = markdown_score(head)
    if tags >= 5 and head.lstrip().startswith("<") and score < _MARKDOWN_THRESHOLD:
        return DocumentKind.HTML
    if score >= _MARKDOWN_THRESHOLD:
        return DocumentKind.MARKDOWN
    return DocumentKind.TEXT


def markdown_score(text: str) -> float:
    """Evidence that ``text`` is Markdown: strong markers weigh 2-3, weak ones 1 or less."""
    atx = len(_MD_ATX.findall(text))
    score = (3.0 + 2.0 * min(atx - 1, 2)) if atx else 0.0
    score += 2.0 * min(len(_MD_SETEXT.findall(text)), 2)
    score += 3.0 * min(len(_MD_TABLE_RULE.findall(text)), 1)
    score += 1.0 * min(len(_MD_FENCE.findall(text)) // 2, 2)
    score += 1.0 * min(len(_MD_LINK.findall(text)), 2)
    score += 1.0 * min(len(_MD_EMPHASIS.findall(text)), 2)
    score += 0.25 * min(len(_MD_LIST.findall(text)), 4)
    return score


def _zip_kind(data: bytes) -> DocumentKind:
    try:
        archive = open_zip(data)
    except AnalysisFailed as exc:
        if exc.code is FailureCode.CORRUPT and b"word/document.xml" in data:
            raise AnalysisFailed(FailureCode.TRUNCATED, DOCX_DAMAGED_REASON) from exc
        raise
    with archive:
        for member, kind in _ZIP_KINDS:
            if has_member(archive, member):
                return kind
        if has_member(archive, "EncryptedPackage"):
            raise AnalysisFailed(FailureCode.ENCRYPTED, ZIP_ENCRYPTED_REASON)
        mimetype = ""
        if has_member(archive, "mimetype"):
            mimetype = read_member(archive, "mimetype")[:100].decode("ascii", "replace").strip()
        if mimetype == "application/epub+zip" or has_member(archive, "META-INF/container.xml"):
            return DocumentKind.EPUB
        if mimetype.startswith("application/vnd.oasis.opendocument"):
            raise NotADocument("an OpenDocument file (ODT, ODS or ODP)")
        if not archive.infolist():
            raise AnalysisFailed(FailureCode.CORRUPT, ZIP_DAMAGED_REASON)
    raise NotADocument("a ZIP archive")


def kind_from_name(name: str | None) -> DocumentKind | None:
    """The kind a file's extension claims (for warnings only; detection ignores names)."""
    if not name:
        return None
    return _NAME_KINDS.get(PurePath(name).suffix.lower())
