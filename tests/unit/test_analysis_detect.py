# ruff: noqa: RUF001 - Russian and Ukrainian sample text
"""Format detection works on bytes alone and explains what it cannot read."""

from __future__ import annotations

import codecs
import io
import zipfile

import pytest

from docmill.documents.analysis.detect import (
    BINARY_REASON,
    DOCX_DAMAGED_REASON,
    EMPTY_REASON,
    OLE_ENCRYPTED_REASON,
    detect,
    kind_from_name,
    markdown_score,
)
from docmill.documents.analysis.errors import AnalysisFailed, FailureCode
from docmill.documents.analysis.model import DocumentKind
from docmill.documents.analysis.zipguard import ZIP_BOMB_REASON, ZipLimits, open_zip

SUPPORTED = "a PDF, DOCX, PPTX, XLSX, EPUB, HTML, Markdown or plain-text document"


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def failure(data: bytes) -> AnalysisFailed:
    with pytest.raises(AnalysisFailed) as caught:
        detect(data)
    return caught.value


def test_pdf_is_found_by_its_header_even_after_leading_junk() -> None:
    assert detect(b"%PDF-1.7\n...").kind is DocumentKind.PDF
    assert detect(b"\x00" * 200 + b"%PDF-1.4\n1 0 obj\n<<>>\nendobj").kind is DocumentKind.PDF


def test_text_that_mentions_the_pdf_header_is_still_text() -> None:
    text = b"# PDF notes\n\nEvery file starts with %PDF-1.4 followed by objects.\n"
    assert detect(text).kind is DocumentKind.MARKDOWN


@pytest.mark.parametrize(
    ("member", "kind"),
    [
        ("word/document.xml", DocumentKind.DOCX),
        ("ppt/presentation.xml", DocumentKind.PPTX),
        ("xl/workbook.xml", DocumentKind.XLSX),
        ("META-INF/container.xml", DocumentKind.EPUB),
    ],
)
def test_zip_based_formats_are_told_apart_by_their_members(member: str, kind: DocumentKind) -> None:
    data = make_zip({"[Content_Types].xml": b"<Types/>", member: b"<x/>"})
    assert detect(data).kind is kind


def test_a_plain_zip_archive_is_named_in_the_failure() -> None:
    error = failure(make_zip({"notes.txt": b"hello"}))
    assert error.code is FailureCode.UNSUPPORTED
    assert error.reason == f"The file is a ZIP archive, which docmill cannot analyse; upload {SUPPORTED}."


def test_images_are_recognised_and_refused_with_a_clear_reason() -> None:
    error = failure(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    assert error.reason == f"The file is a PNG image, which docmill cannot analyse; upload {SUPPORTED}."


@pytest.mark.parametrize("data", [b"", b"   \n\t  \r\n"])
def test_empty_or_blank_files_fail_as_empty(data: bytes) -> None:
    error = failure(data)
    assert (error.code, error.reason) == (FailureCode.EMPTY, EMPTY_REASON)


def test_unknown_binary_fails_clearly() -> None:
    error = failure(bytes(range(256)) * 40)
    assert (error.code, error.reason) == (FailureCode.UNSUPPORTED, BINARY_REASON)


def test_password_protected_office_files_are_reported_as_encrypted() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 500 + "EncryptedPackage".encode("utf-16-le")
    error = failure(ole)
    assert (error.code, error.reason) == (FailureCode.ENCRYPTED, OLE_ENCRYPTED_REASON)


def test_a_truncated_docx_is_reported_as_incomplete() -> None:
    data = make_zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>" * 50})
    error = failure(data[: len(data) - 60])
    assert (error.code, error.reason) == (FailureCode.TRUNCATED, DOCX_DAMAGED_REASON)


def test_zip_bomb_is_refused_from_the_directory_before_decompressing() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\x00" * (20 * 1024 * 1024))
    error = failure(buffer.getvalue())
    assert (error.code, error.reason) == (FailureCode.ZIP_BOMB, ZIP_BOMB_REASON)


def test_zip_total_size_limit_applies_even_at_ordinary_ratios() -> None:
    data = make_zip({f"part{i}.xml": bytes(range(256)) * 40 for i in range(3)})
    with pytest.raises(AnalysisFailed) as caught:
        open_zip(data, ZipLimits(max_total_bytes=20_000))
    assert caught.value.code is FailureCode.ZIP_BOMB


def test_html_is_recognised_by_doctype_and_by_tag_density() -> None:
    assert detect(b"<!DOCTYPE html><html><body><p>Hi</p></body></html>").kind is DocumentKind.HTML
    fragment = b"<div><h1>Title</h1><p>One</p><p>Two</p><ul><li>x</li></ul></div>"
    assert detect(fragment).kind is DocumentKind.HTML


def test_markdown_is_recognised_by_headings_and_tables() -> None:
    assert detect(b"# Title\n\nSome text.\n\n## Part\n\nMore.").kind is DocumentKind.MARKDOWN
    assert detect(b"Intro\n\n| a | b |\n|---|---|\n| 1 | 2 |\n").kind is DocumentKind.MARKDOWN


def test_prose_with_a_numbered_list_stays_plain_text() -> None:
    text = b"Dear team,\n\nplease find the figures below.\n\n1. Revenue grew.\n2. Costs fell.\n\nRegards"
    assert detect(text).kind is DocumentKind.TEXT
    assert markdown_score(text.decode()) < 3


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (codecs.BOM_UTF8 + "Отчёт о продажах за квартал.".encode(), "utf-8"),
        (codecs.BOM_UTF16_LE + "Bericht über Umsätze.".encode("utf-16-le"), "utf-16"),
        ("Отчёт о продажах за третий квартал, все показатели выросли.".encode("cp1251"), "cp1251"),
        ("Überprüfung der Qualität für das gesamte Jahr.".encode(), "utf-8"),
    ],
)
def test_text_in_common_encodings_is_decoded(data: bytes, encoding: str) -> None:
    detection = detect(data)
    assert detection.kind is DocumentKind.TEXT
    assert detection.text is not None
    assert detection.text.encoding == encoding


def test_names_are_only_read_for_the_claimed_kind() -> None:
    assert kind_from_name("Report.PDF") is DocumentKind.PDF
    assert kind_from_name("notes.markdown") is DocumentKind.MARKDOWN
    assert kind_from_name("archive.tar") is None
    assert kind_from_name(None) is None
