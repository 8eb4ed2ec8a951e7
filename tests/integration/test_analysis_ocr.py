"""Scanned PDFs: image-only pages read by Tesseract inside the analysis sandbox.

The scanned file is made here: a text PDF with known lines is rendered by PDFium to
greyscale images, and those images become a PDF without any text layer.
"""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from conftest import require_program
from docmill.documents.analysis import AnalysisFailed, FailureCode, SandboxLimits, run_in_child
from docmill.documents.analysis.analyze import analyze_bytes
from docmill.documents.analysis.samples import PdfLine, build_pdf, scanned_pdf

PAGES = [
    [
        PdfLine("Warehouse Annual Report", 24, True),
        PdfLine(""),
        PdfLine("1. Summary", 16, True),
        PdfLine("Revenue grew in every region and the new routing"),
        PdfLine("system cut empty running by a third."),
        PdfLine("2. Outlook", 16, True),
        PdfLine("We expect a calm quarter."),
    ],
    [PdfLine("2.1 Risks", 13, True), PdfLine("Fuel prices may rise again.")],
]


@pytest.fixture(scope="module")
def tesseract() -> str:
    return require_program("tesseract", "Debian: tesseract-ocr tesseract-ocr-eng tesseract-ocr-rus")


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scan") / "report.pdf"
    path.write_bytes(scanned_pdf(build_pdf(PAGES)))
    return path


def test_a_scanned_pdf_is_read_by_ocr_in_the_sandbox_with_its_exact_tree(tesseract: str, scan: Path) -> None:
    structure = run_in_child(scan, SandboxLimits()).structure

    assert structure.title == "Warehouse Annual Report"
    assert [(s.level, s.heading_path, s.page_start, s.page_end) for s in structure.all_sections()] == [
        (1, ["Warehouse Annual Report"], 1, 2),
        (2, ["Warehouse Annual Report", "1. Summary"], 1, 1),
        (2, ["Warehouse Annual Report", "2. Outlook"], 1, 2),
        (3, ["Warehouse Annual Report", "2. Outlook", "2.1 Risks"], 2, 2),
    ]
    text = "\n".join(chunk.text for chunk in structure.chunks)
    assert "Revenue grew in every region and the new routing system cut empty running by a third." in text
    assert "Fuel prices may rise again." in text
    assert structure.ocr is not None
    assert structure.ocr.pages == [1, 2]
    assert structure.ocr.engine.startswith("tesseract ")
    assert 80 <= structure.ocr.mean_confidence <= 100
    confidence = f"{structure.ocr.mean_confidence:.0f}%"
    assert structure.warnings == [
        f"The text of pages 1, 2 was read by OCR (mean word confidence {confidence}), "
        "so it may contain misread words."
    ]


def test_ocr_stops_at_the_sandbox_time_limit_and_leaves_no_process(tesseract: str, tmp_path: Path) -> None:
    path = tmp_path / "long.pdf"
    path.write_bytes(scanned_pdf(build_pdf(PAGES * 20)))
    started = time.time()

    with pytest.raises(AnalysisFailed) as caught:
        run_in_child(path, SandboxLimits(time_limit_s=2))

    assert caught.value.code is FailureCode.TIME_LIMIT
    time.sleep(0.2)  # a killed process group takes a moment to die
    left = [
        process
        for process in psutil.process_iter(["name", "create_time", "status"])
        if process.info["name"] == "tesseract"
        and process.info["create_time"] >= started - 1
        and process.info["status"] != psutil.STATUS_ZOMBIE  # dead, waiting for init to reap it
    ]
    assert left == []


def test_ocr_runs_under_the_sandbox_memory_limit(tesseract: str, scan: Path) -> None:
    with pytest.raises(AnalysisFailed) as caught:
        run_in_child(scan, SandboxLimits(memory_limit_mb=100))
    assert caught.value.code in (FailureCode.MEMORY_LIMIT, FailureCode.CRASHED)


def test_without_tesseract_a_scan_fails_naming_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, scan: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no tesseract on it

    with pytest.raises(AnalysisFailed) as caught:
        analyze_bytes(scan.read_bytes())

    assert caught.value.code is FailureCode.NO_TEXT
    assert caught.value.reason == (
        "The PDF contains no extractable text (its pages are scanned images) and no OCR engine is installed; "
        "install Tesseract (Debian and Ubuntu: apt-get install tesseract-ocr tesseract-ocr-eng "
        "tesseract-ocr-rus), or upload a PDF with a text layer."
    )


def test_without_tesseract_scanned_pages_of_a_text_pdf_are_skipped_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, scan: Path
) -> None:
    import pypdfium2 as pdfium

    mixed = pdfium.PdfDocument(build_pdf([[PdfLine("Cover letter for the report.")]]))
    mixed.import_pages(pdfium.PdfDocument(scan.read_bytes()))
    path = tmp_path / "mixed.pdf"
    mixed.save(str(path))
    mixed.close()
    monkeypatch.setenv("PATH", str(tmp_path))

    structure = analyze_bytes(path.read_bytes())

    assert structure.ocr is None
    assert structure.warnings == [
        "No OCR engine is installed, so pages 2, 3 (images without text) were skipped; install Tesseract "
        "(Debian and Ubuntu: apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-rus) to read them."
    ]
