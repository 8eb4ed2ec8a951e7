"""A small PDF writer for sample documents, benchmarks and tests.

It writes PDF 1.4 by hand: Helvetica text lines (regular or bold, any size), an outline
(bookmarks) that may nest, document info, and optionally the standard security handler
(RC4, 40-bit, revision 2) with a user password, which makes a genuinely
password-protected file. Text on pages is limited to the characters of WinAnsiEncoding;
outline titles may use any Unicode. ``scanned_pdf`` turns such a PDF into what a scanner
produces: every page a greyscale image, with no text layer.

Nothing in analysis depends on this module; it exists so that sample files can be
regenerated and hostile files built without third-party PDF tools.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass, field

PAGE_WIDTH = 595  # A4 in points
PAGE_HEIGHT = 842
_MARGIN = 56
# The 32-byte padding string of the standard security handler (PDF 1.7, 7.6.3.3).
_PASSWORD_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")
_FILE_ID = hashlib.md5(b"docmill-sample").digest()


@dataclass
class PdfLine:
    """One line of text; ``size`` in points."""

    text: str
    size: float = 11.0
    bold: bool = False


@dataclass
class OutlineItem:
    """A bookmark pointing at a 0-based page, with nested bookmarks."""

    title: str
    page: int
    children: list[OutlineItem] = field(default_factory=list)


def _rc4(key: bytes, data: bytes) -> bytes:
    box = list(range(256))
    j = 0
    for i in range(256):
        j = (j + box[i] + key[i % len(key)]) % 256
        box[i], box[j] = box[j], box[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + box[i]) % 256
        box[i], box[j] = box[j], box[i]
        out.append(byte ^ box[(box[i] + box[j]) % 256])
    return bytes(out)


def _pad(password: str) -> bytes:
    return (password.encode("latin-1") + _PASSWORD_PAD)[:32]


class _Security:
    """Standard security handler, revision 2: O, U, and per-object RC4 keys."""

    permissions = -44

    def __init__(self, user_password: str, owner_password: str) -> None:
        self.owner_entry = _rc4(hashlib.md5(_pad(owner_password)).digest()[:5], _pad(user_password))
        seed = _pad(user_password) + self.owner_entry + struct.pack("<i", self.permissions) + _FILE_ID
        self.key = hashlib.md5(seed).digest()[:5]
        self.user_entry = _rc4(self.key, _PASSWORD_PAD)

    def encrypt(self, number: int, data: bytes) -> bytes:
        object_key = hashlib.md5(self.key + struct.pack("<i", number)[:3] + b"\x00\x00").digest()[:10]
        return _rc4(object_key, data)

    def dictionary(self) -> bytes:
        return (
            b"<< /Filter /Standard /V 1 /R 2 /O <"
            + self.owner_entry.hex().encode()
            + b"> /U <"
            + self.user_entry.hex().encode()
            + b"> /P "
            + str(self.permissions).encode()
            + b" >>"
        )


def _literal(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _text_string(text: str) -> bytes:
    """A PDF text string: UTF-16BE with a byte-order mark, as hex, so any script works."""
    return b"<FEFF" + text.encode("utf-16-be").hex().upper().encode() + b">"


def _content(lines: list[PdfLine]) -> bytes:
    parts: list[bytes] = []
    y = float(PAGE_HEIGHT - _MARGIN)
    for line in lines:
        y -= line.size * 1.45
        font = b"/F2" if line.bold else b"/F1"
        parts.append(
            b"BT "
            + font
            + b" %.1f Tf %d %.1f Td " % (line.size, _MARGIN, y)
            + _literal(line.text)
            + b" Tj ET"
        )
    return b"\n".join(parts)


class _Objects:
    def __init__(self) -> None:
        self.bodies: dict[int, bytes] = {}
        self.next_number = 1

    def reserve(self) -> int:
        number = self.next_number
        self.next_number += 1
        return number

    def put(self, number: int, body: bytes) -> None:
        self.bodies[number] = body


def build_pdf(
    pages: list[list[PdfLine]],
    *,
    outline: list[OutlineItem] | None = None,
    title: str | None = None,
    user_password: str | None = None,
) -> bytes:
    """Write a PDF with one page per entry of ``pages``; see the module docstring."""
    security = _Security(user_password, user_password + "-owner") if user_password else None
    objects = _Objects()
    catalog, page_tree, font_regular, font_bold = (objects.reserve() for _ in range(4))
    objects.put(
        font_regular, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    objects.put(
        font_bold, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
    )
    page_numbers: list[int] = []
    for lines in pages:
        page, content = objects.reserve(), objects.reserve()
        page_numbers.append(page)
        stream = _content(lines)
        if security:
            stream = security.encrypt(content, stream)
        objects.put(content, b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        objects.put(
            page,
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R /F2 %d 0 R >> >> >>"
            % (page_tree, PAGE_WIDTH, PAGE_HEIGHT, content, font_regular, font_bold),
        )
    kids = b" ".join(b"%d 0 R" % number for number in page_numbers)
    objects.put(page_tree, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_numbers)))
    outline_entry = b""
    if outline and not security:
        root = objects.reserve()
        first, last, count = _write_outline(objects, outline, root, page_numbers)
        objects.put(
            root, b"<< /Type /Outlines /First %d 0 R /Last %d 0 R /Count %d >>" % (first, last, count)
        )
        outline_entry = b" /Outlines %d 0 R /PageMode /UseOutlines" % root
    objects.put(catalog, b"<< /Type /Catalog /Pages %d 0 R%s >>" % (page_tree, outline_entry))
    info = 0
    if title and not security:
        info = objects.reserve()
        objects.put(info, b"<< /Title " + _text_string(title) + b" /Producer (docmill samples) >>")
    encrypt = 0
    if security:
        encrypt = objects.reserve()
        objects.put(encrypt, security.dictionary())
    return _serialise(objects, catalog, info, encrypt)


def scanned_pdf(pdf: bytes, dpi: int = 150) -> bytes:
    """The pages of ``pdf`` rendered (by PDFium) to greyscale images, as a PDF of images only."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    images: list[tuple[int, int, bytes]] = []
    try:
        for index in range(len(document)):
            page = document[index]
            bitmap = page.render(scale=dpi / 72, grayscale=True)
            width, height, stride = bitmap.width, bitmap.height, bitmap.stride
            buffer = bytes(bitmap.buffer)
            images.append(
                (
                    width,
                    height,
                    b"".join(buffer[row * stride : row * stride + width] for row in range(height)),
                )
            )
            bitmap.close()
            page.close()
    finally:
        document.close()
    objects = _Objects()
    catalog, page_tree = objects.reserve(), objects.reserve()
    page_numbers: list[int] = []
    for width, height, pixels in images:
        page, content, image = objects.reserve(), objects.reserve(), objects.reserve()
        page_numbers.append(page)
        data = zlib.compress(pixels)
        objects.put(
            image,
            b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
            b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n"
            % (width, height, len(data))
            + data
            + b"\nendstream",
        )
        draw = b"q %d 0 0 %d 0 0 cm /Scan Do Q" % (PAGE_WIDTH, PAGE_HEIGHT)
        objects.put(content, b"<< /Length %d >>\nstream\n" % len(draw) + draw + b"\nendstream")
        objects.put(
            page,
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R "
            b"/Resources << /XObject << /Scan %d 0 R >> >> >>"
            % (page_tree, PAGE_WIDTH, PAGE_HEIGHT, content, image),
        )
    kids = b" ".join(b"%d 0 R" % number for number in page_numbers)
    objects.put(page_tree, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_numbers)))
    objects.put(catalog, b"<< /Type /Catalog /Pages %d 0 R >>" % page_tree)
    return _serialise(objects, catalog, 0, 0)


def _write_outline(
    objects: _Objects, items: list[OutlineItem], parent: int, page_numbers: list[int]
) -> tuple[int, int, int]:
    numbers = [objects.reserve() for _ in items]
    total = len(items)
    for position, (item, number) in enumerate(zip(items, numbers, strict=True)):
        page = page_numbers[min(item.page, len(page_numbers) - 1)]
        body = (
            b"<< /Title " + _text_string(item.title) + b" /Parent %d 0 R /Dest [%d 0 R /Fit]" % (parent, page)
        )
        if position > 0:
            body += b" /Prev %d 0 R" % numbers[position - 1]
        if position + 1 < len(numbers):
            body += b" /Next %d 0 R" % numbers[position + 1]
        if item.children:
            first, last, count = _write_outline(objects, item.children, number, page_numbers)
            body += b" /First %d 0 R /Last %d 0 R /Count %d" % (first, last, count)
            total += count
        objects.put(number, body + b" >>")
    return numbers[0], numbers[-1], total


def _serialise(objects: _Objects, catalog: int, info: int, encrypt: int) -> bytes:
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects.bodies):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects.bodies[number] + b"\nendobj\n"
    size = objects.next_number
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number]
    trailer = b"<< /Size %d /Root %d 0 R" % (size, catalog)
    if info:
        trailer += b" /Info %d 0 R" % info
    if encrypt:
        trailer += b" /Encrypt %d 0 R" % encrypt
    trailer += b" /ID [<" + _FILE_ID.hex().encode() + b"> <" + _FILE_ID.hex().encode() + b">] >>"
    out += b"trailer\n" + trailer + b"\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)
