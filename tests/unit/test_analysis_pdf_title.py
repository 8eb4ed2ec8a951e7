"""A PDF without Title metadata is titled by the largest text of its first page."""

from __future__ import annotations

from docmill.documents.analysis.analyze import analyze_bytes
from docmill.documents.analysis.samples import OutlineItem, PdfLine, build_pdf

BODY = [PdfLine("The fleet grew by twelve trucks and the depot moved north of the river.")] * 6


def report(title: str | None) -> bytes:
    cover = [PdfLine("Northwind Logistics", 22, True), PdfLine("Annual Operations Review", 22, True), *BODY]
    chapter = [PdfLine("1 Introduction", 16, True), *BODY]
    outline = [OutlineItem("1 Introduction", 1)]
    return build_pdf([cover, chapter], outline=outline, title=title)


def test_the_first_pages_largest_lines_give_the_title_when_metadata_has_none() -> None:
    structure = analyze_bytes(report(None))
    assert structure.title == "Northwind Logistics Annual Operations Review"
    assert [section.heading_path for section in structure.all_sections()] == [[], ["1 Introduction"]]


def test_title_metadata_wins() -> None:
    assert analyze_bytes(report("Review 2025")).title == "Review 2025"


def test_a_first_page_set_in_one_size_gives_no_title_of_its_own() -> None:
    structure = analyze_bytes(build_pdf([BODY, [PdfLine("1 Introduction", 16, True), *BODY]]))
    assert structure.title == "1 Introduction"
