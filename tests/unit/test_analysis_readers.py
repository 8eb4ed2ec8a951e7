"""Binary formats read in-process from bytes: PDF (outline and layout), DOCX, PPTX, XLSX, EPUB."""

from __future__ import annotations

import io
import textwrap
import zipfile

import docx
import pytest

from docmill.documents.analysis.analyze import analyze_bytes
from docmill.documents.analysis.errors import AnalysisFailed, FailureCode
from docmill.documents.analysis.model import DocumentKind, DocumentStructure
from docmill.documents.analysis.readers import pdf
from docmill.documents.analysis.samples import OutlineItem, PdfLine, build_pdf

BODY = ("Revenue grew in every region and the new routing system cut empty running. " * 2).strip()


def pages() -> list[list[PdfLine]]:
    return [
        [PdfLine("1. Summary", 16, True), *(PdfLine(line) for line in textwrap.wrap(BODY, 80))],
        [PdfLine("1.1 Regions", 13, True), PdfLine("North and South grew."), PdfLine("2. Outlook", 16, True)],
        [PdfLine("We expect a calm quarter.")],
    ]


def outline(structure: DocumentStructure) -> list[tuple[list[str], int | None, int | None]]:
    return [(s.heading_path, s.page_start, s.page_end) for s in structure.all_sections()]


def test_pdf_sections_come_from_the_outline_with_page_ranges() -> None:
    bookmarks = [OutlineItem("Summary", 0, [OutlineItem("Regions", 1)]), OutlineItem("Outlook", 1)]
    structure = analyze_bytes(build_pdf(pages(), outline=bookmarks, title="Q3"))
    assert structure.kind is DocumentKind.PDF
    assert (structure.title, structure.counts.pages) == ("Q3", 3)
    assert outline(structure) == [
        (["Summary"], 1, 2),
        (["Summary", "Regions"], 2, 2),
        (["Outlook"], 2, 3),
    ]


def test_pdf_without_outline_finds_headings_by_font_size() -> None:
    structure = analyze_bytes(build_pdf(pages()))
    assert outline(structure) == [
        (["1. Summary"], 1, 2),
        (["1. Summary", "1.1 Regions"], 2, 2),
        (["2. Outlook"], 2, 3),
    ]
    assert structure.chunks[0].text.startswith("1. Summary\n\nRevenue grew")


def test_pdf_lines_are_joined_into_paragraphs() -> None:
    structure = analyze_bytes(build_pdf(pages()))
    assert f"1. Summary\n\n{BODY}\n\n1.1 Regions" in structure.chunks[0].text


def test_encrypted_pdf_fails_with_the_password_reason() -> None:
    with pytest.raises(AnalysisFailed) as caught:
        analyze_bytes(build_pdf(pages(), user_password="secret"))
    assert (caught.value.code, caught.value.reason) == (FailureCode.ENCRYPTED, pdf.ENCRYPTED_REASON)


def test_pdf_with_blank_pages_fails_as_without_text() -> None:
    with pytest.raises(AnalysisFailed) as caught:
        analyze_bytes(build_pdf([[], []]))
    assert caught.value.code is FailureCode.NO_TEXT
    assert "blank" in caught.value.reason


def test_docx_headings_by_style_and_tables_as_rows() -> None:
    document = docx.Document()
    document.add_heading("Agreement", level=0)
    document.add_heading("Scope", level=1)
    document.add_paragraph("The supplier delivers racking.")
    table = document.add_table(rows=2, cols=2)
    for row, values in zip(table.rows, (("Item", "Price"), ("Racking", "450,000")), strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    document.add_heading("Penalties", level=2)
    document.add_paragraph("Half a percent per week.")
    buffer = io.BytesIO()
    document.save(buffer)
    structure = analyze_bytes(buffer.getvalue())
    assert structure.kind is DocumentKind.DOCX
    assert structure.title == "Agreement"
    assert [s.heading_path for s in structure.all_sections()] == [[], ["Scope"], ["Scope", "Penalties"]]
    (found,) = structure.tables
    assert (found.heading_path, found.rows, found.cols, found.preview[1]) == (
        ["Scope"],
        2,
        2,
        ["Racking", "450,000"],
    )


def zipped(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


P = 'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"'
A = 'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"'
R = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
RELS = "http://schemas.openxmlformats.org/package/2006/relationships"


def slide(title: str, body: str) -> str:
    return (
        f"<p:sld {P} {A}><p:cSld><p:spTree>"
        f'<p:sp><p:nvSpPr><p:nvPr><p:ph type="title"/></p:nvPr></p:nvSpPr>'
        f"<p:txBody><a:p><a:r><a:t>{title}</a:t></a:r></a:p></p:txBody></p:sp>"
        f"<p:sp><p:nvSpPr><p:nvPr/></p:nvSpPr><p:txBody><a:p><a:r><a:t>{body}</a:t></a:r></a:p>"
        f"</p:txBody></p:sp></p:spTree></p:cSld></p:sld>"
    )


def test_pptx_slides_are_pages_and_slide_titles_are_headings() -> None:
    data = zipped(
        {
            "ppt/presentation.xml": f'<p:presentation {P} {R}><p:sldIdLst><p:sldId r:id="rId2"/>'
            f'<p:sldId r:id="rId1"/></p:sldIdLst></p:presentation>',
            "ppt/_rels/presentation.xml.rels": f'<Relationships xmlns="{RELS}">'
            '<Relationship Id="rId1" Target="slides/slide1.xml"/>'
            '<Relationship Id="rId2" Target="slides/slide2.xml"/></Relationships>',
            "ppt/slides/slide1.xml": slide("Second", "Later slide text."),
            "ppt/slides/slide2.xml": slide("First", "Opening slide text."),
        }
    )
    structure = analyze_bytes(data)
    assert structure.kind is DocumentKind.PPTX
    assert outline(structure) == [(["First"], 1, 1), (["Second"], 2, 2)]
    assert structure.counts.pages == 2


def test_xlsx_sheets_become_headed_tables() -> None:
    s = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    data = zipped(
        {
            "xl/workbook.xml": f"<workbook {s} {R}><sheets>"
            '<sheet name="Budget" r:id="rId1"/></sheets></workbook>',
            "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{RELS}">'
            '<Relationship Id="rId1" Target="worksheets/sheet1.xml"/></Relationships>',
            "xl/sharedStrings.xml": f"<sst {s}><si><t>Item</t></si><si><t>Cost</t></si>"
            "<si><t>Fuel</t></si></sst>",
            "xl/worksheets/sheet1.xml": f'<worksheet {s}><sheetData><row><c r="A1" t="s"><v>0</v></c>'
            '<c r="B1" t="s"><v>1</v></c></row><row><c r="A2" t="s"><v>2</v></c><c r="C2"><v>42</v></c>'
            "</row></sheetData></worksheet>",
        }
    )
    structure = analyze_bytes(data)
    assert structure.kind is DocumentKind.XLSX
    (table,) = structure.tables
    assert (table.heading_path, table.preview) == (["Budget"], [["Item", "Cost", ""], ["Fuel", "", "42"]])


def test_epub_chapters_are_read_in_spine_order() -> None:
    opf = "http://www.idpf.org/2007/opf"
    data = zipped(
        {
            "mimetype": "application/epub+zip",
            "META-INF/container.xml": '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="OEBPS/book.opf"/></rootfiles></container>',
            "OEBPS/book.opf": f'<package xmlns="{opf}" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            "<metadata><dc:title>Handbook</dc:title></metadata><manifest>"
            '<item id="a" href="a.xhtml"/><item id="b" href="b.xhtml"/></manifest>'
            '<spine><itemref idref="b"/><itemref idref="a"/></spine></package>',
            "OEBPS/a.xhtml": "<html><body><h1>Two</h1><p>Second chapter.</p></body></html>",
            "OEBPS/b.xhtml": "<html><body><h1>One</h1><p>First chapter.</p></body></html>",
        }
    )
    structure = analyze_bytes(data)
    assert (structure.kind, structure.title) == (DocumentKind.EPUB, "Handbook")
    assert [s.title for s in structure.all_sections()] == ["One", "Two"]


def test_a_pdf_named_docx_is_analysed_as_pdf_with_a_warning() -> None:
    structure = analyze_bytes(build_pdf(pages()), filename="contract.docx")
    assert structure.kind is DocumentKind.PDF
    assert structure.warnings == ["The file is named .docx but contains a PDF; it was analysed as such."]
