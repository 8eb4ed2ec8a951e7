"""Benchmark: PDF analysis throughput on a generated 300-page report, and OCR on a scan.

    uv run python bench/analysis.py [--pages 300] [--chunk-tokens 2000] [--ocr-pages 4]

Generates the report in a temporary directory (docmill's own PDF writer: a chapter
every ten pages, two sections per chapter, an outline, about 40 lines of prose a page),
then times each phase in this process and the whole analysis through the sandbox
child, and prints pages per second for each and the child's peak RSS.

Then the first ``--ocr-pages`` pages of the report are turned into a scan (rendered to
greyscale images at 150 dpi, no text layer) and analysed through the sandbox child, so
every page goes through OCR; OCR pages per second are printed on their own line (and
skipped, saying why, without Tesseract; ``--ocr-pages 0`` skips them too).
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from docmill.documents.analysis.blocks import Block
from docmill.documents.analysis.chunking import ChunkingOptions, chunk_blocks
from docmill.documents.analysis.language import detect_language
from docmill.documents.analysis.ocr import find_tesseract
from docmill.documents.analysis.readers import pdf
from docmill.documents.analysis.samples import OutlineItem, PdfLine, build_pdf, scanned_pdf
from docmill.documents.analysis.sandbox import SandboxLimits, run_in_child
from docmill.documents.analysis.structure import build_counts, build_sections, build_tables, heading_paths

T = TypeVar("T")
WORDS = (  # noqa: SIM905 - prose reads better as one string
    "revenue cost margin warehouse shipment carrier contract customer region quarter forecast "
    "volume pallet route driver fuel invoice delivery schedule budget capacity utilisation "
    "the of and to in for with on by from that which is was will be has"
).split()


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 22))]
    return " ".join(words).capitalize() + "."


def make_report(pages: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    page_lines: list[list[PdfLine]] = []
    outline: list[OutlineItem] = []
    for index in range(pages):
        lines: list[PdfLine] = []
        if index % 10 == 0:
            chapter = index // 10 + 1
            lines.append(PdfLine(f"{chapter}. Chapter {chapter}", 16, True))
            outline.append(OutlineItem(f"Chapter {chapter}", index))
        if index % 10 in (0, 5):
            section = f"{index // 10 + 1}.{1 if index % 10 == 0 else 2} Section"
            lines.append(PdfLine(section, 13, True))
            outline[-1].children.append(OutlineItem(section.split(" ", 1)[1], index))
        while len(lines) < 40:
            paragraph = " ".join(sentence(rng) for _ in range(rng.randint(2, 5)))
            lines.extend(PdfLine(text) for text in textwrap.wrap(paragraph, 90))
        page_lines.append(lines[:42])
    return build_pdf(page_lines, outline=outline, title="Benchmark report")


def timed(action: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--chunk-tokens", type=int, default=2000)
    parser.add_argument("--ocr-pages", type=int, default=4, help="pages of the scan to OCR (0: none)")
    args = parser.parse_args()
    pages = args.pages

    data, generate_s = timed(lambda: make_report(pages))
    print(f"generated {pages} pages, {len(data) / 1024:.0f} KiB in {generate_s:.2f}s")

    def extract() -> tuple[list[list[pdf.Line]], list[pdf.Bookmark]]:
        document = pdf.open_pdf(data)
        try:
            lines = [pdf.page_lines(document, index, []) for index in range(len(document))]
            return lines, pdf.read_bookmarks(document)
        finally:
            document.close()

    (lines, bookmarks), extract_s = timed(extract)

    def sections(use_outline: bool) -> list[Block]:
        blocks = pdf.blocks_from_outline(lines, bookmarks) if use_outline else pdf.blocks_from_layout(lines)
        found = build_sections(blocks)
        tables = build_tables(blocks, heading_paths(blocks))
        build_counts(blocks, pages, found, len(tables))
        return blocks

    blocks, outline_s = timed(lambda: sections(True))
    _, layout_s = timed(lambda: sections(False))
    chunks, chunk_s = timed(lambda: chunk_blocks(blocks, ChunkingOptions(args.chunk_tokens)))
    _, language_s = timed(lambda: detect_language("\n".join(block.text for block in blocks)))

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.pdf"
        path.write_bytes(data)
        result = run_in_child(path, SandboxLimits(), chunking=ChunkingOptions(args.chunk_tokens))

    rows = [
        ("text extraction (PDFium)", extract_s),
        ("sections from outline", outline_s),
        ("sections from layout", layout_s),
        (f"chunking ({args.chunk_tokens} tokens)", chunk_s),
        ("language detection", language_s),
        ("total in sandbox child", result.elapsed_s),
    ]
    print(f"{'phase':<28}{'seconds':>10}{'pages/s':>12}")
    for name, seconds in rows:
        print(f"{name:<28}{seconds:>10.3f}{pages / seconds:>12.0f}")
    structure = result.structure
    print(
        f"chunks={len(chunks)} sections={structure.counts.sections} words={structure.counts.words} "
        f"child_peak_rss_mb={result.peak_rss_mb:.1f}"
    )
    if args.ocr_pages > 0:
        ocr(make_report(args.ocr_pages), args.ocr_pages, args.chunk_tokens)


def ocr(report: bytes, pages: int, chunk_tokens: int) -> None:
    """OCR pages per second through the sandbox child (limits as in production, time raised)."""
    tesseract = find_tesseract()
    if tesseract is None:
        print("ocr: skipped, Tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-eng)")
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scan.pdf"
        path.write_bytes(scanned_pdf(report))
        limits = SandboxLimits(time_limit_s=60.0 + 30 * pages)
        cpu_before = children_cpu_s()
        result = run_in_child(path, limits, chunking=ChunkingOptions(chunk_tokens))
        cpu_s = children_cpu_s() - cpu_before  # the child and the tesseract processes it waited for
    structure = result.structure
    confidence = structure.ocr.mean_confidence if structure.ocr else 0.0
    print(
        f"ocr ({tesseract.engine}): {pages} pages in {result.elapsed_s:.2f}s = "
        f"{pages / result.elapsed_s:.2f} pages/s ({cpu_s / pages:.2f} CPU s/page), "
        f"mean confidence {confidence:.0f}, words={structure.counts.words} "
        f"peak_rss_mb={result.peak_rss_mb:.1f}"
    )


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
