"""Document structure analysis: format detection, readers, section tree, tables, chunks.

A pure library: bytes or a file in, a ``DocumentStructure`` out. Untrusted files go
through ``analyze_file``, which parses in a child process under hard time and memory
limits and turns every failure into ``AnalysisFailed`` with a one-sentence ``reason``.

Formats (detected from the bytes, never the file name): PDF, DOCX, PPTX, XLSX, EPUB,
HTML, Markdown, and plain text in any common encoding.
"""

from docmill.documents.analysis.analyze import analyze_bytes, build_structure
from docmill.documents.analysis.chunking import ChunkingOptions, chunk_blocks
from docmill.documents.analysis.detect import Detection, detect
from docmill.documents.analysis.errors import AnalysisError, AnalysisFailed, FailureCode, NotADocument
from docmill.documents.analysis.language import detect_language
from docmill.documents.analysis.model import (
    Chunk,
    Counts,
    DocumentKind,
    DocumentStructure,
    Language,
    Section,
    Table,
)
from docmill.documents.analysis.sandbox import ChildResult, SandboxLimits, analyze_file, run_in_child
from docmill.documents.analysis.tokens import EstimatingTokenCounter, TokenCounter

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
