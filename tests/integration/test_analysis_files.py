# ruff: noqa: RUF001 - Russian and Ukrainian sample text
"""The real sandbox child on the shipped examples and on hostile files.

Every hostile file must end in ``AnalysisFailed`` with the exact one-sentence reason,
and the test process itself must be untouched: same limits, no child left behind, and
still able to analyse the next file.
"""

from __future__ import annotations

import functools
import io
import resource
import sys
import time
import zipfile
from pathlib import Path

import psutil
import pytest

from docmill.documents.analysis import (
    AnalysisFailed,
    DocumentKind,
    FailureCode,
    SandboxLimits,
    analyze_file,
    run_in_child,
)
from docmill.documents.analysis.samples import PdfLine, build_pdf

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "documents"
SUPPORTED = "a PDF, DOCX, PPTX, XLSX, EPUB, HTML, Markdown or plain-text document"


@pytest.fixture(autouse=True)
def parent_is_unaffected() -> object:
    """After each test: our own limits unchanged and no child process left running."""
    limits_before = resource.getrlimit(resource.RLIMIT_AS), resource.getrlimit(resource.RLIMIT_CPU)
    yield None
    assert (resource.getrlimit(resource.RLIMIT_AS), resource.getrlimit(resource.RLIMIT_CPU)) == limits_before
    assert psutil.Process().children(recursive=True) == []


def failure_of(path: Path, **options: object) -> AnalysisFailed:
    with pytest.raises(AnalysisFailed) as caught:
        analyze_file(path, **options)  # type: ignore[arg-type]
    return caught.value


@pytest.mark.parametrize(
    ("name", "kind", "title", "sections", "tables", "language"),
    [
        (
            "quarterly-report.pdf",
            DocumentKind.PDF,
            "Northwind Logistics - Q3 2025 Operations Report",
            8,
            0,
            "en",
        ),
        (
            "racking-agreement.docx",
            DocumentKind.DOCX,
            "Warehouse Racking Supply Agreement - Summary",
            4,
            1,
            "en",
        ),
        ("shipping-terms.html", DocumentKind.HTML, "Northwind Logistics - Shipping Terms", 5, 1, "en"),
        ("meeting-notes.md", DocumentKind.MARKDOWN, "Weekly Operations Meeting", 5, 1, "en"),
        (
            "procurement-report-ru.txt",
            DocumentKind.TEXT,
            "ОТЧЁТ ОТДЕЛА ЗАКУПОК ЗА III КВАРТАЛ 2025 ГОДА",
            4,
            0,
            "ru",
        ),
    ],
)
def test_every_example_is_analysed_in_the_sandbox(
    name: str, kind: DocumentKind, title: str, sections: int, tables: int, language: str
) -> None:
    structure = analyze_file(EXAMPLES / name, chunk_tokens=300)
    assert (structure.kind, structure.title) == (kind, title)
    assert (structure.counts.sections, structure.counts.tables) == (sections, tables)
    assert structure.language.code == language
    assert structure.chunks and all(chunk.tokens <= 300 for chunk in structure.chunks)


def test_the_example_pdf_has_outline_sections_with_pages() -> None:
    structure = analyze_file(EXAMPLES / "quarterly-report.pdf")
    top = [(s.title, s.page_start, s.page_end) for s in structure.sections if s.level == 1]
    assert top == [("Executive Summary", 1, 1), ("Operations", 2, 2), ("Finance", 3, 3), ("Outlook", 4, 4)]
    assert structure.counts.pages == 4


def test_the_broken_example_fails_as_truncated() -> None:
    error = failure_of(EXAMPLES / "broken-truncated.pdf")
    assert (error.code, error.reason) == (
        FailureCode.TRUNCATED,
        "The PDF is incomplete (the file ends too early); upload the complete file.",
    )


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w") as member:
            for _ in range(32):
                member.write(b"\x00" * (1024 * 1024))
    return buffer.getvalue()


def billion_laughs() -> bytes:
    """A DOCX whose body is one entity that expands to a billion 'lol's."""
    declarations = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">' for level in range(1, 10)
    )
    body = (
        f'<?xml version="1.0"?><!DOCTYPE w:document [{declarations}]>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        "<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", body)
    return buffer.getvalue()


@functools.cache
def hostile_files() -> dict[str, tuple[str, bytes, FailureCode, str]]:
    report = build_pdf([[PdfLine("Confidential figures for the board.")]] * 3)
    return {
        "corrupt": (
            "corrupt.pdf",
            b"%PDF-1.4\n" + bytes(range(256)) * 20 + b"\n%%EOF\n",
            FailureCode.CORRUPT,
            "The PDF is damaged and cannot be read; upload an intact copy.",
        ),
        "truncated": (
            "truncated.pdf",
            report[: len(report) // 3],
            FailureCode.TRUNCATED,
            "The PDF is incomplete (the file ends too early); upload the complete file.",
        ),
        "encrypted": (
            "locked.pdf",
            build_pdf([[PdfLine("Salaries 2025")]], user_password="board-only"),
            FailureCode.ENCRYPTED,
            "The PDF is password-protected; upload an unlocked copy.",
        ),
        "empty": (
            "empty.docx",
            b"",
            FailureCode.EMPTY,
            "The file is empty; upload a document with some content.",
        ),
        "zip bomb": (
            "huge.docx",
            zip_bomb(),
            FailureCode.ZIP_BOMB,
            "The file would expand to far more data than a real document holds (a possible zip bomb), "
            "so it was not opened.",
        ),
        "billion laughs": (
            "laughs.docx",
            billion_laughs(),
            FailureCode.ENTITY_EXPANSION,
            "The document declares XML entities that expand into vast amounts of text (an entity-expansion "
            "or 'billion laughs' attack), so it was not opened.",
        ),
        "mislabelled": (
            "scan.pdf",
            b"\x89PNG\r\n\x1a\n" + b"\x00" * 2048,
            FailureCode.MISLABELLED,
            "The file is named .pdf but is actually a PNG image, which docmill cannot analyse; "
            "upload the document itself.",
        ),
        "unknown binary": (
            "data.bin",
            bytes(range(256)) * 64,
            FailureCode.UNSUPPORTED,
            f"The file is not a document format docmill can read; upload {SUPPORTED}.",
        ),
    }


@pytest.mark.parametrize("case", sorted(hostile_files()))
def test_hostile_files_fail_with_a_one_sentence_reason(case: str, tmp_path: Path) -> None:
    name, data, code, reason = hostile_files()[case]
    path = tmp_path / name
    path.write_bytes(data)
    error = failure_of(path)
    assert (error.code, error.reason) == (code, reason)
    assert reason.count(". ") == 0 and reason.endswith(".")


def test_the_parent_carries_on_after_hostile_files(tmp_path: Path) -> None:
    for case in ("zip bomb", "encrypted", "corrupt"):
        name, data, code, _ = hostile_files()[case]
        (tmp_path / name).write_bytes(data)
        assert failure_of(tmp_path / name).code is code
    assert analyze_file(EXAMPLES / "meeting-notes.md").kind is DocumentKind.MARKDOWN


def test_a_pdf_named_docx_is_analysed_as_what_it_is(tmp_path: Path) -> None:
    path = tmp_path / "contract.docx"
    path.write_bytes((EXAMPLES / "quarterly-report.pdf").read_bytes())
    structure = analyze_file(path)
    assert structure.kind is DocumentKind.PDF
    assert structure.warnings == ["The file is named .docx but contains a PDF; it was analysed as such."]


def child_running(code: str) -> list[str]:
    """The real child entry point, with its parser replaced by ``code`` (a lambda body)."""
    return [
        sys.executable,
        "-c",
        "import os, time\n"
        "import docmill.documents.analysis.child as child\n"
        f"child.analyze_bytes = lambda *args, **kwargs: {code}\n"
        "child.main()\n",
    ]


def test_a_parser_that_hangs_is_killed_at_the_time_limit() -> None:
    started = time.monotonic()
    with pytest.raises(AnalysisFailed) as caught:
        run_in_child(
            EXAMPLES / "meeting-notes.md",
            SandboxLimits(time_limit_s=1.5),
            command=child_running("time.sleep(60)"),
        )
    assert time.monotonic() - started < 5
    assert (caught.value.code, caught.value.reason) == (
        FailureCode.TIME_LIMIT,
        "Analysing the document took longer than 1.5 seconds, so it was stopped; "
        "upload a smaller or simpler file.",
    )


def test_a_parser_that_eats_memory_hits_the_memory_limit() -> None:
    with pytest.raises(AnalysisFailed) as caught:
        run_in_child(
            EXAMPLES / "meeting-notes.md",
            SandboxLimits(memory_limit_mb=300),
            command=child_running("bytearray(2 * 1024 ** 3)"),
        )
    assert (caught.value.code, caught.value.reason) == (
        FailureCode.MEMORY_LIMIT,
        "Analysing the document needed more than 300 MB of memory, so it was stopped; "
        "upload a smaller or simpler file.",
    )


def test_a_parser_that_crashes_the_child_is_reported_as_a_crash() -> None:
    with pytest.raises(AnalysisFailed) as caught:
        run_in_child(EXAMPLES / "meeting-notes.md", SandboxLimits(), command=child_running("os.abort()"))
    assert (caught.value.code, caught.value.reason) == (
        FailureCode.CRASHED,
        "The document made the parser fail unexpectedly; re-save the file and upload it again.",
    )


def test_a_missing_file_fails_without_starting_a_child(tmp_path: Path) -> None:
    error = failure_of(tmp_path / "gone.pdf")
    assert error.reason == "The file to analyse does not exist any more; upload it again."
