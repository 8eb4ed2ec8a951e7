"""OCR for PDF pages that are images without text: PDFium renders, Tesseract reads.

Runs in the analysis sandbox child, so the limits hold: ``tesseract`` is started by the
child, inherits its address-space and CPU-time limits (``RLIMIT_AS``, ``RLIMIT_CPU``),
and sits in the child's process group, which the parent kills when the wall-time limit
passes. Tesseract is told to use one thread (``OMP_THREAD_LIMIT=1``): each OpenMP thread
reserves address space the memory limit would count, and the machine's cores belong to
the worker pool.

A page is rendered in 8-bit grey at ``RENDER_DPI`` and handed to ``tesseract`` as a PGM
image on stdin; its hOCR output gives the words, their lines and paragraphs, each
word's confidence, and each line's text height, from which a font size in points is
derived (so the layout heuristics find headings on scanned pages too).

Without the ``tesseract`` program, ``find_tesseract`` returns ``None`` and the PDF
reader says what to install (``TESSERACT_INSTALL``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser

from docmill.documents.analysis.errors import AnalysisFailed, FailureCode, memory_reason

RENDER_DPI = 300
PDF_POINTS_PER_INCH = 72
PREFERRED_LANGUAGES = ("eng", "rus")
TESSERACT_INSTALL = (
    "install Tesseract (Debian and Ubuntu: apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-rus)"
)
OCR_FAILED_REASON = "The OCR engine failed on a scanned page; upload a PDF with a text layer."


@dataclass(frozen=True)
class Tesseract:
    """An installed Tesseract: its program, version and the languages it will read."""

    path: str
    version: str
    languages: str  # "eng+rus"

    @property
    def engine(self) -> str:
        return f"tesseract {self.version} ({self.languages})"


@dataclass
class OcrLine:
    text: str
    size: float  # points: the line's height at the page's scale


@dataclass
class OcrPage:
    """The text read from one page: lines in reading order ('' between paragraphs)."""

    lines: list[OcrLine] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)  # one per word, 0..100


def find_tesseract() -> Tesseract | None:
    """The installed ``tesseract`` with its languages, or ``None`` when there is none."""
    path = shutil.which("tesseract")
    if path is None:
        return None
    try:
        version = _run([path, "--version"]).splitlines()[0].split()[-1]
        installed = _run([path, "--list-langs"]).splitlines()[1:]
    except (OSError, subprocess.SubprocessError, IndexError):
        return None
    wanted = [language for language in PREFERRED_LANGUAGES if language in installed]
    others = [language for language in installed if language not in ("osd", "equ")]
    languages = wanted or others[:1]
    if not languages:
        return None
    return Tesseract(path, version, "+".join(languages))


def _run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, timeout=30, check=True, env=_environment())
    return (done.stdout or done.stderr).decode("utf-8", "replace")


def _environment() -> dict[str, str]:
    return {**os.environ, "OMP_THREAD_LIMIT": "1"}


def pgm(width: int, height: int, stride: int, buffer: bytes) -> bytes:
    """An 8-bit grey bitmap (rows ``stride`` bytes apart) as a binary PGM image."""
    header = b"P5\n%d %d\n255\n" % (width, height)
    if stride == width:
        return header + buffer[: width * height]
    rows = (buffer[row * stride : row * stride + width] for row in range(height))
    return header + b"".join(rows)


def read_image(tesseract: Tesseract, image: bytes, dpi: int = RENDER_DPI) -> OcrPage:
    """OCR one PGM image; raise ``AnalysisFailed`` when Tesseract cannot finish."""
    argv = [tesseract.path, "stdin", "stdout", "-l", tesseract.languages, "--dpi", str(dpi), "hocr"]
    try:
        done = subprocess.run(argv, input=image, capture_output=True, env=_environment())
    except OSError as exc:  # the limits left no room to start it, or it vanished
        raise AnalysisFailed(FailureCode.CRASHED, OCR_FAILED_REASON) from exc
    if done.returncode != 0:
        error = done.stderr.lower()
        if any(sign in error for sign in (b"bad_alloc", b"memory", b"failed to map")):
            raise AnalysisFailed(FailureCode.MEMORY_LIMIT, memory_reason(_memory_limit_mb()))
        raise AnalysisFailed(FailureCode.CRASHED, OCR_FAILED_REASON)
    return parse_hocr(done.stdout.decode("utf-8", "replace"), dpi)


def _memory_limit_mb() -> int:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return soft // (1024 * 1024) if soft > 0 else 0


def parse_hocr(hocr: str, dpi: int = RENDER_DPI) -> OcrPage:
    """Tesseract's hOCR as lines of words; a new paragraph is marked by an empty line."""
    reader = _HocrReader(dpi)
    reader.feed(hocr)
    reader.close()
    reader.end_line()
    return reader.page


_LINE_CLASSES = frozenset({"ocr_line", "ocr_header", "ocr_caption", "ocr_textfloat"})
_PROPERTY = re.compile(r"(\w+) ([-\d. ]+)")
# The height of capitals and ascenders, as a share of the font size (Latin and Cyrillic
# faces alike). Tesseract's x_size includes descenders, which only some lines have, so
# sizes are taken from the part above the baseline.
_ASCENT = 0.72


class _HocrReader(HTMLParser):
    def __init__(self, dpi: int) -> None:
        super().__init__(convert_charrefs=True)
        self.page = OcrPage()
        self._dpi = dpi
        self._words: list[str] = []
        self._size = 0.0
        self._word: list[str] | None = None
        self._word_depth = 0
        self._confidence = -1.0
        self._paragraphs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._word is not None:
            self._word_depth += 1
            return
        values = dict(attrs)
        kind = values.get("class") or ""
        properties = dict(_PROPERTY.findall(values.get("title") or ""))
        if kind == "ocr_par":
            self.end_line()
            if self._paragraphs:
                self.page.lines.append(OcrLine("", 0.0))
            self._paragraphs += 1
        elif kind in _LINE_CLASSES:
            self.end_line()
            above = float(properties.get("x_size", 0)) - float(properties.get("x_descenders", 0))
            self._size = round(above / _ASCENT * PDF_POINTS_PER_INCH / self._dpi, 1)
        elif kind == "ocrx_word":
            self._word, self._word_depth = [], 0
            self._confidence = float(properties.get("x_wconf", -1))

    def handle_endtag(self, tag: str) -> None:
        if self._word is None:
            return
        if self._word_depth:
            self._word_depth -= 1
            return
        text = "".join(self._word).strip()
        if text and self._confidence >= 0:
            self._words.append(text)
            self.page.confidences.append(self._confidence)
        self._word = None

    def handle_data(self, data: str) -> None:
        if self._word is not None:
            self._word.append(data)

    def end_line(self) -> None:
        if self._words:
            self.page.lines.append(OcrLine(" ".join(self._words), self._size))
        self._words = []


def mean_confidence(pages: list[OcrPage]) -> float:
    confidences = [value for page in pages for value in page.confidences]
    return round(sum(confidences) / len(confidences), 1) if confidences else 0.0
