"""Settings of the documents domain, from the environment (``docmill.config.load`` builds them).

The seed's names keep their meaning (``DOCUMENT_ANALYSIS_QUEUE``,
``DOCUMENT_PROCESSING_QUEUE``, ``ANALYSIS_JOB_MAX_TRIES``, ``ANALYSIS_JOB_TIMEOUT``,
``ANALYSIS_JOB_RETRY_DELAY``); the rest are docmill's own:

    DOCMILL_STORAGE                 storage directory: databases, files, logs ./storage
    DATABASE_URL                    documents database                      sqlite:///<storage>/docmill.db
    DOCUMENT_MAX_UPLOAD_MB          upload size limit                       50
    DOCUMENT_AUTO_APPROVE_MAX_USD   estimates up to this are approved       0.50
    DOCUMENT_WEBHOOK_QUEUE          queue of webhook deliveries             default
    DOCUMENT_CHUNK_CONCURRENCY      model calls in flight per document      4
    DOCUMENT_BATCH_PROFILES         profiles sent by Message Batches unless (none)
                                    the upload says (comma separated)
    DOCUMENT_BATCH_DEADLINE_S       past this, a batch document's calls go  21600
                                    direct (s since its first batch)
    DOCUMENT_BATCH_POLL_S           shortest pause between looks at a batch 30
    DOCUMENT_ANALYSIS_TIME_LIMIT    hard wall-time limit of one parse (s)   120
    DOCUMENT_ANALYSIS_MEMORY_MB     hard memory limit of one parse          512
    PROCESSING_JOB_MAX_TRIES        tries of the processing job             3
    PROCESSING_JOB_TIMEOUT          timeout of one processing attempt (s)   1800
    DOCMILL_API_TOKENS              API bearer tokens, comma separated      (none)
    DOCMILL_WEBHOOK_SECRET          HMAC key of webhook signatures          (none)
    DOCUMENT_WEBHOOK_TIMEOUT        seconds per webhook request             10
    DOCMILL_WEBHOOK_ALLOW_PRIVATE   send webhooks to loopback/private hosts false

Secrets (API tokens, the webhook secret, passwords in URLs, the LLM key) never appear
in ``repr`` or in ``masked()``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docmill.documents.errors import InvalidSetting
from docmill.documents.options import PROFILES, parse_yes_no
from docmill.llm.settings import LLMSettings
from docmill.queue import mask_url
from docmill.queue.connection import queue_url_from_env
from docmill.queue.values import as_float

WEBHOOK_BACKOFF_S = (10, 60, 300)


@dataclass(frozen=True)
class DocumentSettings:
    """Everything the documents domain is configured with; build it with ``from_env``."""

    storage_dir: Path = Path("storage")
    database_url: str = "sqlite:///storage/docmill.db"
    queue_url: str = "sqlite:///storage/queue.db"
    max_upload_mb: float = 50.0
    auto_approve_max_usd: float = 0.50
    analysis_queue: str = "document-analysis"
    processing_queue: str = "document-processing"
    webhook_queue: str = "default"
    analysis_tries: int = 3
    analysis_timeout_s: float = 300.0
    analysis_retry_delay_s: int = 60
    analysis_time_limit_s: float = 120.0
    analysis_memory_mb: int = 512
    processing_tries: int = 3
    processing_timeout_s: float = 1800.0
    chunk_concurrency: int = 4
    batch_profiles: frozenset[str] = frozenset()
    batch_deadline_s: float = 6 * 3600.0
    batch_poll_s: float = 30.0
    webhook_timeout_s: float = 10.0
    webhook_tries: int = 5
    webhook_backoff_s: tuple[int, ...] = WEBHOOK_BACKOFF_S
    webhook_allow_private: bool = False  # loopback, private and link-local hosts (webhook.py)
    api_tokens: tuple[str, ...] = field(default=(), repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    llm: LLMSettings | None = field(default=None, repr=False)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        queue_url: str | None = None,
        llm: LLMSettings | None = None,
    ) -> DocumentSettings:
        """Read the settings from ``env`` (default: ``os.environ``); see the module docstring.

        ``queue_url`` and ``llm``, when the caller resolved them already (``docmill.config``),
        are taken as they are.
        """
        env = os.environ if env is None else env
        storage = Path(_get(env, "DOCMILL_STORAGE") or "storage")
        analysis_timeout_s = _number(env, "ANALYSIS_JOB_TIMEOUT", 300.0, minimum=1)
        # The parse must end before its job's timeout, so a stuck parser fails the document
        # with a reason instead of timing the job out.
        time_limit_s = min(
            _number(env, "DOCUMENT_ANALYSIS_TIME_LIMIT", 120.0, minimum=1), max(1.0, analysis_timeout_s * 0.8)
        )
        return cls(
            storage_dir=storage,
            database_url=normalize_database_url(
                _get(env, "DATABASE_URL") or f"sqlite:///{storage / 'docmill.db'}"
            ),
            queue_url=queue_url or queue_url_from_env(env),
            max_upload_mb=_number(env, "DOCUMENT_MAX_UPLOAD_MB", 50.0, minimum=0.001),
            auto_approve_max_usd=_number(env, "DOCUMENT_AUTO_APPROVE_MAX_USD", 0.50, minimum=0),
            analysis_queue=_get(env, "DOCUMENT_ANALYSIS_QUEUE") or "document-analysis",
            processing_queue=_get(env, "DOCUMENT_PROCESSING_QUEUE") or "document-processing",
            webhook_queue=_get(env, "DOCUMENT_WEBHOOK_QUEUE") or "default",
            analysis_tries=int(_number(env, "ANALYSIS_JOB_MAX_TRIES", 3, minimum=1)),
            analysis_timeout_s=analysis_timeout_s,
            analysis_retry_delay_s=int(_number(env, "ANALYSIS_JOB_RETRY_DELAY", 60, minimum=0)),
            analysis_time_limit_s=time_limit_s,
            analysis_memory_mb=int(_number(env, "DOCUMENT_ANALYSIS_MEMORY_MB", 512, minimum=64)),
            processing_tries=int(_number(env, "PROCESSING_JOB_MAX_TRIES", 3, minimum=1)),
            processing_timeout_s=_number(env, "PROCESSING_JOB_TIMEOUT", 1800.0, minimum=10),
            chunk_concurrency=int(_number(env, "DOCUMENT_CHUNK_CONCURRENCY", 4, minimum=1)),
            batch_profiles=_profiles(env, "DOCUMENT_BATCH_PROFILES"),
            batch_deadline_s=_number(env, "DOCUMENT_BATCH_DEADLINE_S", 6 * 3600.0, minimum=0),
            batch_poll_s=_number(env, "DOCUMENT_BATCH_POLL_S", 30.0, minimum=0.01),
            webhook_timeout_s=_number(env, "DOCUMENT_WEBHOOK_TIMEOUT", 10.0, minimum=0.1),
            webhook_allow_private=_flag(env, "DOCMILL_WEBHOOK_ALLOW_PRIVATE"),
            api_tokens=tuple(t.strip() for t in _get(env, "DOCMILL_API_TOKENS").split(",") if t.strip()),
            webhook_secret=_get(env, "DOCMILL_WEBHOOK_SECRET") or None,
            llm=llm or LLMSettings.from_env(env),
        )

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def documents_dir(self) -> Path:
        """Where uploaded files live (content-addressed, see ``storage.py``)."""
        return self.storage_dir / "documents"

    def masked(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict with every secret masked, for ``config`` output."""
        return {
            "storage_dir": str(self.storage_dir),
            "database_url": mask_url(self.database_url),
            "queue_url": mask_url(self.queue_url),
            "max_upload_mb": self.max_upload_mb,
            "auto_approve_max_usd": self.auto_approve_max_usd,
            "analysis_queue": self.analysis_queue,
            "processing_queue": self.processing_queue,
            "webhook_queue": self.webhook_queue,
            "analysis_tries": self.analysis_tries,
            "analysis_timeout_s": self.analysis_timeout_s,
            "analysis_retry_delay_s": self.analysis_retry_delay_s,
            "analysis_time_limit_s": self.analysis_time_limit_s,
            "analysis_memory_mb": self.analysis_memory_mb,
            "processing_tries": self.processing_tries,
            "processing_timeout_s": self.processing_timeout_s,
            "chunk_concurrency": self.chunk_concurrency,
            "batch_profiles": sorted(self.batch_profiles),
            "batch_deadline_s": self.batch_deadline_s,
            "batch_poll_s": self.batch_poll_s,
            "webhook_timeout_s": self.webhook_timeout_s,
            "webhook_tries": self.webhook_tries,
            "webhook_backoff_s": list(self.webhook_backoff_s),
            "webhook_allow_private": self.webhook_allow_private,
            "api_tokens": f"{len(self.api_tokens)} set" if self.api_tokens else "none",
            "webhook_secret": "***" if self.webhook_secret else "none",
            "llm": self.llm.masked() if self.llm is not None else None,
        }

    def __repr__(self) -> str:
        shown = ", ".join(f"{key}={value!r}" for key, value in self.masked().items() if key != "llm")
        return f"DocumentSettings({shown})"


def normalize_database_url(url: str) -> str:
    """Use the installed psycopg 3 driver for plain ``postgres://`` / ``postgresql://`` URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _get(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = _get(env, name)
    if not raw:
        return default
    try:
        value = as_float(raw)
    except ValueError:
        raise InvalidSetting(
            f"{name}={raw!r} (env) is not a number; set it to a number like {default:g}."
        ) from None
    if value < minimum:
        raise InvalidSetting(f"{name}={raw!r} (env) is too small; set it to at least {minimum:g}.")
    return value


def _profiles(env: Mapping[str, str], name: str) -> frozenset[str]:
    names = frozenset(p.strip().lower() for p in _get(env, name).split(",") if p.strip())
    unknown = sorted(names - set(PROFILES))
    if unknown:
        raise InvalidSetting(
            f"{name}={_get(env, name)!r} (env) names no profile {unknown[0]!r}; use {', '.join(PROFILES)}."
        )
    return names


def _flag(env: Mapping[str, str], name: str) -> bool:
    parsed = parse_yes_no(_get(env, name))
    if parsed is None:
        raise InvalidSetting(
            f"{name}={_get(env, name)!r} (env) is not a yes/no value; set it to true or false."
        )
    return parsed
