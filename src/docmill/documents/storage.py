"""Uploaded files, content-addressed: ``<root>/ab/cd/<sha256>``.

A file is streamed into a temporary file under ``<root>/tmp`` while its SHA-256 is
computed and its size checked against the limit (an upload over the limit is cut off
as soon as it passes it), then renamed into place, so a reader never sees half a
file and two uploads of the same bytes share one file. The user's file name is never
part of a path: ``display_name`` cleans it for showing only, and every path comes from
a validated hex digest, so nothing is ever written outside the root.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import os
import re
import tempfile
import unicodedata
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from docmill.documents.errors import EmptyUpload, UploadTooLarge

READ_SIZE = 1024 * 1024
MAX_NAME_CHARS = 200
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f<>:\"|?*]+")


class AsyncReadable(Protocol):
    """An async byte source with ``read(n)`` (Starlette's ``UploadFile``, for one)."""

    async def read(self, size: int = -1) -> bytes: ...


Upload = bytes | bytearray | memoryview | IO[bytes] | AsyncIterable[bytes] | AsyncReadable | Iterable[bytes]


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size_bytes: int
    path: Path


def display_name(filename: str | None, default: str = "document") -> str:
    """The file name to show: no directories, no control or reserved characters, not hidden.

    ``../../etc/passwd`` becomes ``passwd``; ``C:\\temp\\a.pdf`` becomes ``a.pdf``; an
    empty result becomes ``default``. Never used to build a path.
    """
    name = unicodedata.normalize("NFC", filename or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip().lstrip(".").strip()
    if len(name) > MAX_NAME_CHARS:
        _stem, dot, suffix = name.rpartition(".")
        keep = suffix if dot and len(suffix) <= 10 else ""
        name = name[: MAX_NAME_CHARS - len(keep) - 1].rstrip() + ("." + keep if keep else "")
    return name or default


class FileStore:
    """Content-addressed file storage under ``root``; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def path_for(self, sha256: str) -> Path:
        """Where the file with this digest lives; rejects anything but 64 lowercase hex digits."""
        if not _SHA256.match(sha256):
            raise ValueError(f"{sha256!r} is not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    async def save(self, data: Upload, *, max_bytes: int) -> StoredFile:
        """Store ``data`` (bytes, a binary file, or an async/sync iterable of bytes).

        Raises ``UploadTooLarge`` past ``max_bytes`` and ``EmptyUpload`` for no bytes; in
        both cases nothing is kept.
        """
        tmp_dir = self.root / "tmp"
        await asyncio.to_thread(tmp_dir.mkdir, parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                digest = hashlib.sha256()
                size = 0
                async for block in _blocks(data):
                    size += len(block)
                    if size > max_bytes:
                        raise UploadTooLarge(max_bytes)
                    digest.update(block)
                    await asyncio.to_thread(out.write, block)
                await asyncio.to_thread(_sync_and_close, out)
            if size == 0:
                raise EmptyUpload()
            sha256 = digest.hexdigest()
            final = self.path_for(sha256)
            await asyncio.to_thread(_place, tmp, final)
            return StoredFile(sha256, size, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def delete(self, sha256: str) -> bool:
        """Remove the file (the caller checked no document still uses it); False if absent."""
        path = self.path_for(sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        for parent in (path.parent, path.parent.parent):  # tidy empty fan-out directories
            with contextlib.suppress(OSError):
                parent.rmdir()
        return True


def _sync_and_close(out: IO[bytes]) -> None:
    out.flush()
    os.fsync(out.fileno())


def _place(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``; identical bytes already there are kept as they are."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.is_file():
        return
    os.replace(tmp, final)


async def _blocks(data: Upload) -> AsyncIterator[bytes]:
    """The upload as blocks of at most ``READ_SIZE`` bytes, whatever its kind."""
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for start in range(0, len(view), READ_SIZE):
            yield bytes(view[start : start + READ_SIZE])
        return
    read = getattr(data, "read", None)
    if read is not None:
        is_async = inspect.iscoroutinefunction(read)
        while True:
            block = await read(READ_SIZE) if is_async else await asyncio.to_thread(read, READ_SIZE)
            if not block:
                return
            yield bytes(block)
    if isinstance(data, AsyncIterable):
        async for block in data:
            if block:
                yield bytes(block)
        return
    for block in data:  # type: ignore[union-attr]
        if block:
            yield bytes(block)
