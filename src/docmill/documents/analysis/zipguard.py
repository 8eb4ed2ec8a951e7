"""Opening ZIP-based documents (DOCX, PPTX, XLSX, EPUB) without falling for zip or XML bombs.

Checks run on the central directory *before* anything is decompressed: too many
members, too much declared data in total, or a member that claims to expand more than
``max_ratio`` times. Declared sizes can lie, so ``read_member`` also stops reading a
member as soon as it has produced more than its budget, and the sandbox's memory limit
backs both up. An XML member that declares entities (the "billion laughs" attack, a few
hundred bytes that expand to gigabytes) is refused before any XML parser sees it.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from docmill.documents.analysis.errors import AnalysisFailed, FailureCode

ZIP_BOMB_REASON = (
    "The file would expand to far more data than a real document holds (a possible zip bomb), "
    "so it was not opened."
)
ZIP_DAMAGED_REASON = "The ZIP-based document is damaged or incomplete; upload an intact copy."
ZIP_ENCRYPTED_REASON = "The document is password-protected; upload an unlocked copy."
ENTITY_EXPANSION_REASON = (
    "The document declares XML entities that expand into vast amounts of text (an entity-expansion or "
    "'billion laughs' attack), so it was not opened."
)
# XML members read for entity declarations: a DTD must come before the root element, so
# the head of each member holds it.
_XML_SUFFIXES = (".xml", ".rels", ".xhtml", ".htm", ".html", ".opf", ".ncx", ".svg")
_PROLOG_BYTES = 256 * 1024
_ENTITY_DECLARATIONS = tuple("<!ENTITY".encode(codec) for codec in ("utf-8", "utf-16-le", "utf-16-be"))


@dataclass(frozen=True)
class ZipLimits:
    """What a ZIP-based document may hold; anything beyond is treated as hostile."""

    max_members: int = 10_000
    max_total_bytes: int = 200 * 1024 * 1024
    # Office XML compresses 5-20x; a member beyond this ratio is padding, not a document.
    max_ratio: float = 200.0
    # Ratios of tiny members mean nothing (a 40-byte file of spaces compresses 100x).
    ratio_floor_bytes: int = 1024 * 1024


def open_zip(data: bytes, limits: ZipLimits | None = None) -> zipfile.ZipFile:
    """Open ``data`` as a ZIP and vet its central directory; raise ``AnalysisFailed`` if hostile."""
    limits = limits or ZipLimits()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise AnalysisFailed(FailureCode.CORRUPT, ZIP_DAMAGED_REASON) from exc
    check_zip(archive, limits)
    check_entities(archive)
    return archive


def check_zip(archive: zipfile.ZipFile, limits: ZipLimits) -> None:
    """Refuse archives whose directory promises more data than a document could hold."""
    members = archive.infolist()
    if len(members) > limits.max_members:
        raise AnalysisFailed(FailureCode.ZIP_BOMB, ZIP_BOMB_REASON)
    total = 0
    for info in members:
        if info.flag_bits & 0x1:
            raise AnalysisFailed(FailureCode.ENCRYPTED, ZIP_ENCRYPTED_REASON)
        total += info.file_size
        if info.file_size > limits.ratio_floor_bytes:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_ratio:
                raise AnalysisFailed(FailureCode.ZIP_BOMB, ZIP_BOMB_REASON)
    if total > limits.max_total_bytes:
        raise AnalysisFailed(FailureCode.ZIP_BOMB, ZIP_BOMB_REASON)


def check_entities(archive: zipfile.ZipFile) -> None:
    """Refuse XML members that declare entities. Office Open XML forbids DTDs and EPUB has
    no use for entities, so a declaration is there to expand, not to hold a document."""
    for info in archive.infolist():
        if not info.filename.lower().endswith(_XML_SUFFIXES):
            continue
        try:
            with archive.open(info) as stream:
                head = stream.read(_PROLOG_BYTES)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise AnalysisFailed(FailureCode.CORRUPT, ZIP_DAMAGED_REASON) from exc
        except RuntimeError as exc:  # zipfile raises RuntimeError for encrypted members
            raise AnalysisFailed(FailureCode.ENCRYPTED, ZIP_ENCRYPTED_REASON) from exc
        if any(declaration in head for declaration in _ENTITY_DECLARATIONS):
            raise AnalysisFailed(FailureCode.ENTITY_EXPANSION, ENTITY_EXPANSION_REASON)


def read_member(archive: zipfile.ZipFile, name: str, limits: ZipLimits | None = None) -> bytes:
    """Decompress one member, stopping if it yields more than its declared size or the budget."""
    limits = limits or ZipLimits()
    try:
        info = archive.getinfo(name)
    except KeyError as exc:
        raise AnalysisFailed(FailureCode.CORRUPT, ZIP_DAMAGED_REASON) from exc
    budget = min(info.file_size, limits.max_total_bytes)
    parts: list[bytes] = []
    produced = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(1024 * 1024):
                produced += len(chunk)
                if produced > budget:
                    raise AnalysisFailed(FailureCode.ZIP_BOMB, ZIP_BOMB_REASON)
                parts.append(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise AnalysisFailed(FailureCode.CORRUPT, ZIP_DAMAGED_REASON) from exc
    except RuntimeError as exc:  # zipfile raises RuntimeError for encrypted members
        raise AnalysisFailed(FailureCode.ENCRYPTED, ZIP_ENCRYPTED_REASON) from exc
    return b"".join(parts)


def has_member(archive: zipfile.ZipFile, name: str) -> bool:
    try:
        archive.getinfo(name)
    except KeyError:
        return False
    return True
