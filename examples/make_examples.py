# ruff: noqa: E501, RUF001 - sample prose, partly in Russian, reads better unwrapped
"""Regenerate the sample documents shipped with docmill's demo.

    uv run python examples/make_examples.py [OUTPUT_DIR]

Writes into ``examples/documents/`` by default. The PDF comes from docmill's own small
PDF writer (``docmill.documents.analysis.samples``), the DOCX from python-docx; the rest
is text. ZIP timestamps are fixed so that regenerating gives identical bytes.
"""

from __future__ import annotations

import io
import sys
import textwrap
import zipfile
from pathlib import Path

import docx

from docmill.documents.analysis.samples import OutlineItem, PdfLine, build_pdf

HERE = Path(__file__).resolve().parent
WRAP_CHARS = 88
LINES_PER_PAGE = 44

REPORT: list[tuple[int, str, list[str]]] = [
    (
        1,
        "1. Executive Summary",
        [
            "Northwind Logistics closed the third quarter of 2025 with revenue of EUR 48.2 million, "
            "up 11 percent on the same quarter last year. Growth came mainly from contract logistics "
            "for two new retail customers and from higher volumes on the Baltic corridor.",
            "Operating margin improved to 7.9 percent from 6.4 percent, helped by lower fuel prices and "
            "by the new routing system that went live in July. Cash conversion remained strong at 92 percent.",
            "The board approved the budget for the Gdansk cross-dock and the replacement of 40 diesel "
            "tractors with LNG units. Both projects start in the fourth quarter.",
        ],
    ),
    (
        1,
        "2. Operations",
        [
            "Shipments rose to 1.31 million, an increase of 8 percent. On-time delivery reached 96.1 percent "
            "against a target of 95 percent, the best result since the network was reorganised in 2023.",
        ],
    ),
    (
        2,
        "2.1 Warehousing",
        [
            "Utilisation across the seven warehouses averaged 86 percent. The Poznan site ran above 95 percent "
            "for most of September, and overflow stock was moved to a temporary facility in Lodz.",
            "Pick accuracy improved to 99.7 percent after the voice-picking rollout was completed in Hamburg "
            "and Poznan. Staff turnover fell to 14 percent annualised, down from 19 percent.",
            "Energy use per pallet stored fell by 6 percent thanks to LED lighting and the new dock seals. "
            "Solar panels on the Hamburg roof produced 410 MWh during the quarter.",
        ],
    ),
    (
        2,
        "2.2 Transport",
        [
            "The fleet drove 21.4 million kilometres. Empty running fell from 17 to 14 percent because the "
            "routing system now plans backhauls across regions instead of per depot.",
            "Two serious incidents were reported, both without injuries. The safety programme for "
            "subcontracted drivers will be extended to all carriers from January.",
            "Fuel costs per kilometre decreased by 9 percent. Part of the saving is temporary and depends on "
            "diesel prices, which rose again at the end of September.",
        ],
    ),
    (
        1,
        "3. Finance",
        [
            "Revenue, costs and margins by business line are summarised below. All figures are unaudited "
            "and given in millions of euros unless stated otherwise.",
        ],
    ),
    (
        2,
        "3.1 Revenue",
        [
            "Contract logistics contributed EUR 21.7 million (45 percent of revenue), road freight EUR 19.3 "
            "million and value-added services EUR 7.2 million. Revenue from the top ten customers was 58 percent "
            "of the total, slightly lower than a year ago.",
            "Price increases agreed in the spring added about EUR 1.1 million. Currency effects were negligible.",
        ],
    ),
    (
        2,
        "3.2 Costs",
        [
            "Personnel costs rose 6 percent to EUR 17.9 million because of the collective agreement in Germany "
            "and additional temporary staff in Poland. Subcontracting costs were flat despite higher volumes.",
            "Depreciation increased to EUR 2.4 million following the warehouse automation investments. "
            "Interest expense was stable; net debt stood at 1.1 times EBITDA at the end of the quarter.",
        ],
    ),
    (
        1,
        "4. Outlook",
        [
            "For the full year management expects revenue of EUR 190 to 195 million and an operating margin "
            "of about 7.5 percent. The main risks are fuel prices, driver availability and the pace of "
            "consumer spending in Germany.",
            "Priorities for the fourth quarter are the peak-season readiness of the warehouses, the start of "
            "the Gdansk project and the renegotiation of two large customer contracts that expire in March.",
        ],
    ),
]

MARKDOWN = """\
# Weekly Operations Meeting

Date: 14 October 2025. Attendees: A. Keller (chair), M. Nowak, J. Schmidt, L. Fischer.

## Decisions

- The Lodz overflow facility stays open until 30 November.
- Peak-season hiring starts on 20 October with **35 temporary pickers**.
- Carrier scorecards will be shared with all subcontractors monthly.

## Action items

| Owner | Action | Due |
|---|---|---|
| M. Nowak | Confirm extra shifts at Poznan | 17 Oct |
| J. Schmidt | Send revised fuel surcharge table to customers | 21 Oct |
| L. Fischer | Prepare the Gdansk cross-dock tender documents | 31 Oct |

## Risks

Driver availability remains the main risk for November. The team agreed to review
the subcontractor pool weekly and to keep two spare tractors in Hamburg.

### Open questions

Whether the new routing release should wait until after the peak season is still open;
J. Schmidt will bring a recommendation next week.
"""

HTML = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Northwind Logistics - Shipping Terms</title>
<style>body { font-family: sans-serif; } table { border-collapse: collapse; }</style>
<script>window.analytics = { track: function () {} };</script>
</head>
<body>
<nav><a href="/">Home</a> | <a href="/terms">Terms</a></nav>
<h1>Shipping Terms and Conditions</h1>
<p>These terms apply to all road freight and contract logistics services provided by Northwind
Logistics GmbH from 1 January 2026.</p>
<h2>1. Liability</h2>
<p>Our liability for loss of or damage to goods is limited to 8.33 Special Drawing Rights per
kilogram of gross weight, in line with the CMR Convention. Higher limits can be agreed in writing.</p>
<h2>2. Surcharges</h2>
<p>A fuel surcharge is applied monthly according to the published diesel index.</p>
<table>
  <tr><th>Diesel price (EUR/l)</th><th>Surcharge</th></tr>
  <tr><td>below 1.40</td><td>0%</td></tr>
  <tr><td>1.40 to 1.60</td><td>4%</td></tr>
  <tr><td>above 1.60</td><td>7%</td></tr>
</table>
<h3>2.1 Waiting time</h3>
<p>The first two hours of loading or unloading are free. Each further hour is charged at EUR 45.</p>
<h2>3. Claims</h2>
<p>Claims must be made in writing within seven days of delivery. Visible damage must be noted on
the consignment note at delivery.</p>
<footer><p>Northwind Logistics GmbH, Hamburg. Registered at Amtsgericht Hamburg HRB 123456.</p></footer>
</body>
</html>
"""

RUSSIAN_TEXT = """\
ОТЧЁТ ОТДЕЛА ЗАКУПОК ЗА III КВАРТАЛ 2025 ГОДА

1. Общие итоги

В третьем квартале отдел закупок заключил 42 договора на общую сумму 18,6 млн рублей.
Это на 12% больше, чем во втором квартале. Средний срок согласования договора сократился
с 14 до 9 рабочих дней после перехода на электронный документооборот.

2. Поставщики

Количество активных поставщиков выросло до 127. Мы провели аудит 15 ключевых поставщиков
и прекратили работу с двумя из них из-за систематических задержек поставок.

2.1. Сроки поставки

Доля поставок, выполненных в срок, составила 93%. Основные задержки связаны с таможенным
оформлением импортного оборудования.

3. Планы на IV квартал

Отдел планирует провести тендер на транспортные услуги, обновить типовую форму договора
поставки и внедрить рейтинг поставщиков по качеству и срокам.
"""

DOCX_TABLE = [
    ("Milestone", "Date", "Amount, EUR"),
    ("Signing of the agreement", "1 Nov 2025", "120,000"),
    ("Delivery of racking systems", "15 Jan 2026", "240,000"),
    ("Commissioning and acceptance", "31 Mar 2026", "90,000"),
]


def _pdf_pages() -> tuple[list[list[PdfLine]], list[OutlineItem]]:
    pages: list[list[PdfLine]] = [[PdfLine("Northwind Logistics - Q3 2025 Operations Report", 20, True)]]
    outline: list[OutlineItem] = []
    for level, title, paragraphs in REPORT:
        heading = PdfLine(title, 16 if level == 1 else 13, True)
        body = [
            PdfLine(line) for paragraph in paragraphs for line in [*textwrap.wrap(paragraph, WRAP_CHARS), ""]
        ]
        if len(pages[-1]) + 4 > LINES_PER_PAGE or (level == 1 and len(pages) > 0 and len(pages[-1]) > 1):
            pages.append([])
        pages[-1].append(heading)
        item = OutlineItem(title.split(" ", 1)[1], len(pages) - 1)
        (outline[-1].children if level == 2 else outline).append(item)
        for line in body:
            if len(pages[-1]) >= LINES_PER_PAGE:
                pages.append([])
            pages[-1].append(line)
    return pages, outline


def _fixed_zip(data: bytes) -> bytes:
    """Rewrite a ZIP with fixed timestamps so regenerated files are byte-identical."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, (2025, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, source.read(info))
    return out.getvalue()


def _docx() -> bytes:
    document = docx.Document()
    document.core_properties.title = "Warehouse Racking Supply Agreement - Summary"
    document.core_properties.author = "Northwind Logistics Legal"
    document.add_heading("Warehouse Racking Supply Agreement", level=0)
    document.add_heading("1. Parties and Subject", level=1)
    document.add_paragraph(
        "Northwind Logistics GmbH (the Buyer) and Baltic Steel Systems Sp. z o.o. (the Supplier) agree on the "
        "supply and installation of pallet racking for the Gdansk cross-dock, about 6,200 pallet positions."
    )
    document.add_heading("2. Price and Payment", level=1)
    document.add_paragraph(
        "The total price is EUR 450,000 excluding VAT. Payments follow the milestones below; each invoice is "
        "due 30 days after the milestone is accepted in writing by the Buyer."
    )
    table = document.add_table(rows=0, cols=3)
    for row in DOCX_TABLE:
        cells = table.add_row().cells
        for cell, value in zip(cells, row, strict=True):
            cell.text = value
    document.add_heading("2.1 Late Delivery", level=2)
    document.add_paragraph(
        "For each week of delay the Supplier pays 0.5 percent of the affected milestone amount, up to "
        "10 percent of the total price. The Buyer may terminate if the delay exceeds eight weeks."
    )
    document.add_heading("3. Warranty", level=1)
    document.add_paragraph(
        "The Supplier warrants the racking for 60 months from acceptance and will inspect it once a year "
        "free of charge during the warranty period, in line with EN 15635."
    )
    buffer = io.BytesIO()
    document.save(buffer)
    return _fixed_zip(buffer.getvalue())


def make_examples(target: Path) -> list[Path]:
    """Write every sample document into ``target``; return the paths written."""
    target.mkdir(parents=True, exist_ok=True)
    pages, outline = _pdf_pages()
    report = build_pdf(pages, outline=outline, title="Northwind Logistics - Q3 2025 Operations Report")
    files = {
        "quarterly-report.pdf": report,
        "racking-agreement.docx": _docx(),
        "shipping-terms.html": HTML.encode("utf-8"),
        "meeting-notes.md": MARKDOWN.encode("utf-8"),
        "procurement-report-ru.txt": RUSSIAN_TEXT.encode("cp1251"),
        # A download cut off two fifths of the way: no cross-reference table, no end marker.
        "broken-truncated.pdf": report[: len(report) * 2 // 5],
    }
    written = []
    for name, data in files.items():
        path = target / name
        path.write_bytes(data)
        written.append(path)
    return written


if __name__ == "__main__":
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "documents"
    for path in make_examples(output):
        print(f"{path.relative_to(output.parent) if path.is_relative_to(output.parent) else path}")
