"""docmill's job-queue engine. Imports nothing else from docmill; could ship on its own."""

from docmill.queue.backend import (
    Backend,
    BackendSettings,
    Completion,
    MinuteMetrics,
    QueueStats,
    Reservation,
)
from docmill.queue.backends import backend_from_url, mask_url
from docmill.queue.client import Client, Dispatch
from docmill.queue.connection import queue_url_from_env
from docmill.queue.context import WorkerContext
from docmill.queue.errors import (
    BackendError,
    BackendUnavailable,
    ConfigurationError,
    InvalidQueueName,
    JobNotFound,
    JobTimeout,
    MaxAttemptsExceeded,
    QueueError,
    SerializationError,
    UnknownHandler,
)
from docmill.queue.events import CapturedEventLog, EventLog
from docmill.queue.job import ErrorInfo, Fail, Job, JobState, Release
from docmill.queue.options import (
    EffectiveOptions,
    JobOptions,
    QueueConfig,
    WorkerOptions,
    resolve_options,
)
from docmill.queue.registry import Handler, Registry, load_registry
from docmill.queue.stop import WorkerStopReason
from docmill.queue.worker import Worker

__all__ = [
    "Backend",
    "BackendError",
    "BackendSettings",
    "BackendUnavailable",
    "CapturedEventLog",
    "Client",
    "Completion",
    "ConfigurationError",
    "Dispatch",
    "EffectiveOptions",
    "ErrorInfo",
    "EventLog",
    "Fail",
    "Handler",
    "InvalidQueueName",
    "Job",
    "JobNotFound",
    "JobOptions",
    "JobState",
    "JobTimeout",
    "MaxAttemptsExceeded",
    "MinuteMetrics",
    "QueueConfig",
    "QueueError",
    "QueueStats",
    "Registry",
    "Release",
    "Reservation",
    "SerializationError",
    "UnknownHandler",
    "Worker",
    "WorkerContext",
    "WorkerOptions",
    "WorkerStopReason",
    "backend_from_url",
    "load_registry",
    "mask_url",
    "queue_url_from_env",
    "resolve_options",
]
