"""The worker pools the document pipeline needs, handed to the supervisor as data.

The seed ran ``queue:work`` for three queues; ``docmill supervise`` runs the same pools
when ``docmill.toml`` names none:

==================== ========= =========== ========= ========================================
pool (and queue)     processes concurrency memory_mb what its jobs do
==================== ========= =========== ========= ========================================
default              2         1           192       webhooks (``DOCUMENT_WEBHOOK_QUEUE``)
document-analysis    1         2           256       parse, estimate, approve
document-processing  2         4           256       the model calls
==================== ========= =========== ========= ========================================

A processing job spends its time waiting for the API, so each processing worker runs four
documents at once: with the seed's one job per process, two processes making one call at a
time cannot use what an API tier allows (``bench/pipeline.py``). The shared rate limiter,
not the number of jobs, keeps the calls under the limits. The analysis worker parses two
documents at once, each in its own sandboxed child process, so parsing keeps up with what
the processing can send on two cores.

Each pool's memory limit is about twice what its workers settle at with the ``anthropic``
SDK loaded (72-82 MB for webhooks, about 120 MB for the other two; ``bench/worker_memory.py``,
docs/benchmarks.md "Worker memory"), so a healthy worker is never recycled.

The seed's variables keep their meaning: ``DOCUMENT_ANALYSIS_QUEUE`` and
``DOCUMENT_PROCESSING_QUEUE`` rename the queue those pools serve, and
``ANALYSIS_JOB_MAX_TRIES``, ``ANALYSIS_JOB_TIMEOUT``, ``ANALYSIS_JOB_RETRY_DELAY`` set
tries, timeout and retry delay of the analysis pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The handlers a worker loads when no --app, DOCMILL_APP or [supervisor] app names others.
PIPELINE_APP = "docmill.documents.jobs:registry"

ANALYSIS_POOL = "document-analysis"
PROCESSING_POOL = "document-processing"

SEED_POOLS: Mapping[str, Mapping[str, Any]] = {
    "default": {"queues": ("default",), "processes": 2, "memory_mb": 192},
    ANALYSIS_POOL: {"queues": (ANALYSIS_POOL,), "processes": 1, "concurrency": 2, "memory_mb": 256},
    PROCESSING_POOL: {"queues": (PROCESSING_POOL,), "processes": 2, "concurrency": 4, "memory_mb": 256},
}

# The seed's variables: name -> (pool, pool key).
SEED_POOL_VARIABLES: Mapping[str, tuple[str, str]] = {
    "DOCUMENT_ANALYSIS_QUEUE": (ANALYSIS_POOL, "queues"),
    "DOCUMENT_PROCESSING_QUEUE": (PROCESSING_POOL, "queues"),
    "ANALYSIS_JOB_MAX_TRIES": (ANALYSIS_POOL, "tries"),
    "ANALYSIS_JOB_TIMEOUT": (ANALYSIS_POOL, "timeout_s"),
    "ANALYSIS_JOB_RETRY_DELAY": (ANALYSIS_POOL, "backoff_s"),
}
