"""Reading an upload form as it streams in, with the size limit enforced on the way.

The request body is fed to ``python_multipart``'s streaming parser block by block.
The file part goes to a spooled temporary file (memory up to 1 MB, then an unlinked
file in the storage's ``tmp`` directory, never ``/tmp``); the other parts are the
options, small and bounded. The upload is refused with ``UploadTooLarge`` as soon as
the file passes the limit, or at once when ``Content-Length`` says it will, without
reading the rest. The form is read whole before the service sees it because the
options may follow the file in the body, and the service must know them first.
Whatever happens, the spool is closed, which deletes it.
"""

from __future__ import annotations

import asyncio
import codecs
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import SpooledTemporaryFile
from typing import Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from docmill.documents.errors import UploadTooLarge
from docmill.web.errors import ApiError, BadUpload

FILE_FIELD = "file"
FORM_OVERHEAD_BYTES = 1024 * 1024  # the option fields and the multipart framing around the file
MAX_FIELD_BYTES = 256 * 1024
MAX_FIELDS = 16
SPOOL_MEMORY_BYTES = 1024 * 1024


class UnsupportedMediaType(ApiError):
    status_code = 415
    type = "unsupported_media_type"


@dataclass
class ReceivedForm:
    """The form of one upload: its text fields and its file, rewound, ready to read."""

    fields: dict[str, str]
    filename: str
    content_type: str | None
    file: SpooledTemporaryFile[bytes]
    size_bytes: int

    def close(self) -> None:
        self.file.close()


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    content_type: str | None = None
    data: bytearray = field(default_factory=bytearray)
    is_file: bool = False


class _FormReader:
    """The parser's callbacks: collect the fields, hand file bytes on, count everything."""

    def __init__(self, max_file_bytes: int, charset: str) -> None:
        self.max_file_bytes = max_file_bytes
        self.charset = charset
        self.fields: dict[str, str] = {}
        self.file_part: _Part | None = None
        self.file_bytes = 0
        self.pending: list[bytes] = []  # file bytes parsed but not yet written to the spool
        self._part = _Part()
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    def on_part_begin(self) -> None:
        self._part = _Part()
        self._headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_name.strip().lower()] = self._header_value.strip()
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        raw_name = params.get(b"name")
        if raw_name is None:
            raise BadUpload("A form part has no name; send a multipart/form-data form.")
        part = self._part
        part.name = self._decode(raw_name)
        raw_filename = params.get(b"filename")
        part.filename = self._decode(raw_filename) if raw_filename is not None else None
        content_type = self._headers.get(b"content-type")
        part.content_type = content_type.decode("latin-1") if content_type else None
        part.is_file = part.name == FILE_FIELD or part.filename is not None
        if part.is_file:
            if part.name != FILE_FIELD:
                raise BadUpload(f"Send the document in the form field {FILE_FIELD!r}, not {part.name!r}.")
            if self.file_part is not None:
                raise BadUpload("The form has more than one file; upload one document per request.")
            self.file_part = part
        else:
            if part.name in self.fields:
                raise BadUpload(f"The form field {part.name!r} is given twice; give it once.")
            if len(self.fields) >= MAX_FIELDS:
                raise BadUpload(f"The form has more than {MAX_FIELDS} fields; send only the upload options.")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        if part.is_file:
            self.file_bytes += end - start
            if self.file_bytes > self.max_file_bytes:
                raise UploadTooLarge(self.max_file_bytes)
            self.pending.append(bytes(data[start:end]))
            return
        if len(part.data) + (end - start) > MAX_FIELD_BYTES:
            raise BadUpload(f"The form field {part.name!r} is longer than {MAX_FIELD_BYTES // 1024} KB.")
        part.data += data[start:end]

    def on_part_end(self) -> None:
        part = self._part
        if not part.is_file:
            self.fields[part.name] = self._decode(bytes(part.data))

    def _decode(self, raw: bytes) -> str:
        return raw.decode(self.charset, errors="replace")


async def receive_form(request: Request, *, max_file_bytes: int, spool_dir: Path) -> ReceivedForm:
    """Read the multipart upload of ``request``; see the module docstring.

    Raises ``UploadTooLarge`` (413), ``BadUpload`` (422) or ``UnsupportedMediaType`` (415).
    """
    content_type = request.headers.get("content-type", "")
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType(
            f"Send the document as multipart/form-data with a {FILE_FIELD!r} field, not {kind.decode()!r}."
        )
    max_body = max_file_bytes + FORM_OVERHEAD_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body:
        raise UploadTooLarge(max_file_bytes)

    charset = _charset(params.get(b"charset"))
    reader = _FormReader(max_file_bytes, charset)
    await asyncio.to_thread(spool_dir.mkdir, parents=True, exist_ok=True)
    # Closed on every failure below, and by ReceivedForm.close after a success.
    spool: SpooledTemporaryFile[bytes] = SpooledTemporaryFile(  # noqa: SIM115
        max_size=SPOOL_MEMORY_BYTES, dir=str(spool_dir)
    )
    try:
        parser = MultipartParser(boundary, reader.callbacks())  # type: ignore[arg-type]
        received = 0
        async for block in request.stream():
            received += len(block)
            if received > max_body:
                raise UploadTooLarge(max_file_bytes)
            parser.write(block)
            if reader.pending:
                pending, reader.pending = b"".join(reader.pending), []
                await asyncio.to_thread(spool.write, pending)
        parser.finalize()
        if reader.file_part is None:
            raise BadUpload(
                f"The form has no {FILE_FIELD!r} field; send the document as multipart/form-data "
                f"in a field named {FILE_FIELD}."
            )
        spool.seek(0)
        return ReceivedForm(
            fields=reader.fields,
            filename=reader.file_part.filename or "",
            content_type=reader.file_part.content_type,
            file=spool,
            size_bytes=reader.file_bytes,
        )
    except FormParserError:
        spool.close()
        raise BadUpload("The multipart form is malformed; send a valid multipart/form-data body.") from None
    except BaseException:
        spool.close()
        raise


def _charset(raw: bytes | None) -> str:
    name = raw.decode("latin-1") if raw else "utf-8"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "utf-8"
