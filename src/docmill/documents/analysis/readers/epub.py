"""EPUB: the spine's XHTML documents in reading order, each read by the HTML reader."""

from __future__ import annotations

import posixpath
from xml.etree import ElementTree

from docmill.documents.analysis.blocks import Block, ParsedDocument
from docmill.documents.analysis.errors import AnalysisFailed, FailureCode
from docmill.documents.analysis.model import DocumentKind
from docmill.documents.analysis.readers.html import html_blocks
from docmill.documents.analysis.zipguard import ZIP_DAMAGED_REASON, has_member, open_zip, read_member

_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"
_DC = "{http://purl.org/dc/elements/1.1/}"


def read_epub(data: bytes) -> ParsedDocument:
    with open_zip(data) as archive:
        try:
            container = ElementTree.fromstring(read_member(archive, "META-INF/container.xml"))
            rootfile = container.find(f"{_CONTAINER}rootfiles/{_CONTAINER}rootfile")
            package_name = rootfile.get("full-path", "") if rootfile is not None else ""
            package = ElementTree.fromstring(read_member(archive, package_name))
        except ElementTree.ParseError as exc:
            raise AnalysisFailed(FailureCode.CORRUPT, ZIP_DAMAGED_REASON) from exc
        folder = posixpath.dirname(package_name)
        manifest = {
            item.get("id", ""): posixpath.normpath(posixpath.join(folder, item.get("href", "")))
            for item in package.iter(f"{_OPF}item")
        }
        title = (package.findtext(f"{_OPF}metadata/{_DC}title") or "").strip() or None
        blocks: list[Block] = []
        for itemref in package.iter(f"{_OPF}itemref"):
            member = manifest.get(itemref.get("idref", ""), "")
            if not has_member(archive, member):
                continue
            chapter, _ = html_blocks(read_member(archive, member).decode("utf-8", errors="replace"))
            blocks.extend(chapter)
    return ParsedDocument(DocumentKind.EPUB, blocks, title=title)
