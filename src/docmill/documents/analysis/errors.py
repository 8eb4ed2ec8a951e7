"""Errors raised by document structure analysis.

The tree::

    AnalysisError                   root of everything analysis raises on purpose
    └── AnalysisFailed              this document cannot be analysed; ``reason`` is one
        │                           sentence for the user, ``code`` a stable machine name
        └── NotADocument            detection recognised something else (an image, an
                                    archive, a program); ``what`` names it, so a
                                    mislabelled upload can be explained

Every way a document can fail has a :class:`FailureCode`; the sandbox maps limits it
enforces (time, memory, a crashed parser) onto the same class, so a caller only ever
catches ``AnalysisFailed`` and shows ``reason``.
"""

from __future__ import annotations

from enum import StrEnum


class FailureCode(StrEnum):
    """Why a document could not be analysed; stable names for logs, APIs and tests."""

    EMPTY = "empty"
    NO_TEXT = "no_text"
    UNSUPPORTED = "unsupported"
    MISLABELLED = "mislabelled"
    CORRUPT = "corrupt"
    TRUNCATED = "truncated"
    ENCRYPTED = "encrypted"
    ZIP_BOMB = "zip_bomb"
    ENTITY_EXPANSION = "entity_expansion"
    TOO_LARGE = "too_large"
    TIME_LIMIT = "time_limit"
    MEMORY_LIMIT = "memory_limit"
    CRASHED = "crashed"
    NOT_FOUND = "not_found"
    UNREADABLE = "unreadable"  # the stored file exists, but the worker's user may not read it


class AnalysisError(Exception):
    """Root of every error document analysis raises on purpose."""


class AnalysisFailed(AnalysisError):
    """The document cannot be analysed; ``reason`` says why and what to do, in one sentence."""

    def __init__(self, code: FailureCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"AnalysisFailed(code={self.code.value!r}, reason={self.reason!r})"


def memory_reason(memory_limit_mb: int) -> str:
    """The reason of a document whose analysis passed the sandbox's memory limit."""
    return (
        f"Analysing the document needed more than {memory_limit_mb} MB of memory, so it was stopped; "
        "upload a smaller or simpler file."
    )


UNREADABLE_REASON = (
    "The stored file cannot be read by the user the workers run as (permission denied); upload "
    "as that user (e.g. runuser -u docmill -- docmill submit ...), then retry the document."
)
CRASH_REASON = "The document made the parser fail unexpectedly; re-save the file and upload it again."

SUPPORTED_FORMATS = "a PDF, DOCX, PPTX, XLSX, EPUB, HTML, Markdown or plain-text document"


class NotADocument(AnalysisFailed):
    """The bytes are a known non-document (an image, an archive...); ``what`` names it."""

    def __init__(self, what: str) -> None:
        super().__init__(
            FailureCode.UNSUPPORTED,
            f"The file is {what}, which docmill cannot analyse; upload {SUPPORTED_FORMATS}.",
        )
        self.what = what
