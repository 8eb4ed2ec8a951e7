"""Document structure analysis: format detection, readers, section tree, tables, chunks.

A pure library: bytes or a file in, a ``DocumentStructure`` out. Untrusted files go
through ``analyze_file``, which parses in a child process under hard time and memory
limits and turns every failure into ``AnalysisFailed`` with a one-sentence ``reason``.

Formats (detected from the bytes, never the file name): PDF, DOCX, PPTX, XLSX, EPUB,
HTML, Markdown, and plain text in any common encoding.
Image-only PDF pages are read by OCR (``ocr``) when Tesseract is installed.

Format detection, language detection and the parsing entry points are imported on first
use: a worker that analyses through ``analyze_file`` (the parse runs in the child) never
loads them, nor the encoding guesser they need.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from docmill.documents.analysis.chunking import ChunkingOptions, chunk_blocks
from docmill.documents.analysis.errors import AnalysisError, AnalysisFailed, FailureCode, NotADocument
from docmill.documents.analysis.model import (
    Chunk,
    Counts,
    DocumentKind,
    DocumentStructure,
    Language,
    OcrInfo,
    Section,
    Table,
)
from docmill.documents.analysis.sandbox import ChildResult, SandboxLimits, analyze_file, run_in_child
from docmill.documents.analysis.tokens import EstimatingTokenCounter, TokenCounter

if TYPE_CHECKING:
    from docmill.documents.analysis.analyze import analyze_bytes, build_structure
    from docmill.documents.analysis.detect import Detection, detect
    from docmill.documents.analysis.language import detect_language

# Imported on first use: name -> its module.
_LAZY = {
    "analyze_bytes": "analyze",
    "build_structure": "analyze",
    "Detection": "detect",
    "detect": "detect",
    "detect_language": "language",
}

__all__ = [
    "AnalysisError",
    "AnalysisFailed",
    "ChildResult",
    "Chunk",
    "ChunkingOptions",
    "Counts",
    "Detection",
    "DocumentKind",
    "DocumentStructure",
    "EstimatingTokenCounter",
    "FailureCode",
    "Language",
    "NotADocument",
    "OcrInfo",
    "SandboxLimits",
    "Section",
    "Table",
    "TokenCounter",
    "analyze_bytes",
    "analyze_file",
    "build_structure",
    "chunk_blocks",
    "detect",
    "detect_language",
    "run_in_child",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups find it without this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """This package, whose ``detect`` stays the function when the submodule of the same name
    is imported (the import system would otherwise set the attribute to the submodule)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "detect" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
