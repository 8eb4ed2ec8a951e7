"""Errors of the supervisor.

SupervisorError                 root; nothing else is raised on purpose
└── SupervisorConfigError       the configuration (file, environment, flags) is invalid
"""

from __future__ import annotations


class SupervisorError(Exception):
    """Root of the supervisor's errors."""


class SupervisorConfigError(SupervisorError):
    """Raised while loading the configuration; the message names the key and where it came from."""
