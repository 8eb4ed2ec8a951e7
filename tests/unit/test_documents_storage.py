"""Content-addressed storage: names shown, never used for paths; limits while streaming."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from docmill.documents.errors import EmptyUpload, UploadTooLarge
from docmill.documents.storage import FileStore, display_name


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\cmd.exe", "cmd.exe"),
        ("C:\\temp\\a.pdf", "a.pdf"),
        ("/abs/path/notes.md", "notes.md"),
        (".hidden", "hidden"),
        ("..", "document"),
        ("", "document"),
        (None, "document"),
        ("bad\x00name\x1f.txt", "bad_name_.txt"),
        ('qu"o<t>e|s?.txt', "qu_o_t_e_s_.txt"),
        ("отчёт.txt", "отчёт.txt"),
    ],
)
def test_display_name_keeps_only_a_harmless_base_name(given: str | None, shown: str) -> None:
    assert display_name(given) == shown


def test_display_name_shortens_long_names_but_keeps_the_extension() -> None:
    name = display_name("x" * 500 + ".pdf")
    assert len(name) <= 200 and name.endswith(".pdf")


async def test_same_bytes_land_at_one_content_address(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "documents")
    first = await store.save(b"hello world", max_bytes=100)
    second = await store.save(io.BytesIO(b"hello world"), max_bytes=100)
    digest = hashlib.sha256(b"hello world").hexdigest()
    assert first == second
    assert first.sha256 == digest and first.size_bytes == 11
    assert first.path == (tmp_path / "documents" / digest[:2] / digest[2:4] / digest).resolve()
    assert first.path.read_bytes() == b"hello world"
    assert list((tmp_path / "documents" / "tmp").iterdir()) == []  # temp files never stay behind


async def test_async_and_sync_iterables_are_streamed(tmp_path: Path) -> None:
    store = FileStore(tmp_path)

    async def parts() -> AsyncIterator[bytes]:
        for part in (b"ab", b"", b"cd"):
            yield part

    stored = await store.save(parts(), max_bytes=10)
    assert stored.path.read_bytes() == b"abcd"
    assert (await store.save(iter([b"ab", b"cd"]), max_bytes=10)).sha256 == stored.sha256


async def test_an_upload_over_the_limit_is_cut_off_while_streaming(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    read: list[int] = []

    def endless() -> Iterator[bytes]:
        while True:
            read.append(1)
            yield b"x" * 1024

    with pytest.raises(UploadTooLarge, match="larger than the upload limit"):
        await store.save(endless(), max_bytes=10 * 1024)
    assert len(read) == 11  # stopped at the first block past the limit
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


async def test_exactly_the_limit_is_accepted(tmp_path: Path) -> None:
    stored = await FileStore(tmp_path).save(b"x" * 64, max_bytes=64)
    assert stored.size_bytes == 64


async def test_an_empty_upload_is_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    with pytest.raises(EmptyUpload):
        await FileStore(tmp_path).save(b"", max_bytes=10)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


@pytest.mark.parametrize(
    "digest", ["../../etc/passwd", "A" * 64, "0" * 63, "0" * 64 + "/..", "..%2f" + "0" * 59, ""]
)
def test_paths_come_only_from_a_hex_digest(tmp_path: Path, digest: str) -> None:
    with pytest.raises(ValueError, match="not a SHA-256"):
        FileStore(tmp_path).path_for(digest)


async def test_delete_removes_the_file_and_its_empty_directories(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    stored = await store.save(b"bye", max_bytes=10)
    assert store.delete(stored.sha256) is True
    assert not stored.path.exists() and not stored.path.parent.exists()
    assert store.delete(stored.sha256) is False
