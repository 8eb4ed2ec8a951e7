"""Errors raised by the queue engine.

The tree::

    QueueError                      root of everything the engine raises on purpose
    ├── BackendError                the backend could not be reached or answered nonsense
    │   └── BackendUnavailable      connecting failed (Redis down, SQLite file unwritable)
    ├── ConfigurationError          bad URL, bad option value, unknown backend scheme
    │   └── InvalidQueueName        a queue name breaks the rule of docmill.queue.names
    ├── UnknownHandler              a job names a handler nobody registered
    ├── JobNotFound                 an operator command named an id that does not exist
    └── SerializationError          arguments JSON would not give back unchanged (arguments.py)

    JobTimeout(QueueError)          raised inside the worker when a job overran its timeout
    MaxAttemptsExceeded(QueueError) recorded as the reason when a job has no attempts left

Control flow is not an error: a handler that wants to come back later calls
``Release`` (see ``docmill.queue.job``), and shutdown is driven by the worker's
stop reasons, not by exceptions.
"""

from __future__ import annotations


class QueueError(Exception):
    """Root of every error the queue engine raises on purpose."""


class BackendError(QueueError):
    """The backend failed while executing a command."""


class BackendUnavailable(BackendError):
    """The backend could not be reached; the message says which URL and why."""


class ConfigurationError(QueueError):
    """An option, URL or configuration value is invalid."""


class InvalidQueueName(ConfigurationError):
    """A queue name breaks the rule of ``docmill.queue.names``; the message says how."""


class UnknownHandler(QueueError):
    """A job names a handler that is not registered in this process."""


class JobNotFound(QueueError):
    """An operator command named a job id that the backend does not hold."""


class SerializationError(QueueError):
    """Raised at dispatch: job arguments that JSON would not give back equal; the message
    names the offending value's place (``kwargs['data'][1]``)."""


class JobTimeout(QueueError):
    """A job ran longer than its timeout and was stopped."""


class MaxAttemptsExceeded(QueueError):
    """A job has spent all its attempts (or its retry_until passed) before it could run."""
