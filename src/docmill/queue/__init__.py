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
from docmill.queue.errors import (
    BackendError,
    BackendUnavailable,
    ConfigurationError,
    JobNotFound,
    JobTimeout,
    MaxAttemptsExceeded,
    QueueError,
    SerializationError,
    UnknownHandler,
)
from docmill.queue.job import ErrorInfo, Job, JobState, Release
from docmill.queue.options import (
    EffectiveOptions,
    JobOptions,
    QueueConfig,
    WorkerOptions,
    resolve_options,
)
from docmill.queue.registry import Handler, Registry, load_registry

__all__ = [
    "Backend",
    "BackendError",
    "BackendSettings",
    "BackendUnavailable",
    "Client",
    "Completion",
    "ConfigurationError",
    "Dispatch",
    "EffectiveOptions",
    "ErrorInfo",
    "Handler",
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
    "WorkerOptions",
    "backend_from_url",
    "load_registry",
    "mask_url",
    "resolve_options",
]
