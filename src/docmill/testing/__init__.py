"""Test doubles for docmill's integration tests and benchmarks.

``AnthropicEmulator`` serves an emulation of the Anthropic Messages API over HTTP so the
real ``anthropic`` SDK can be driven against it (see ``docmill.testing.anthropic_emulator``).
"""

from docmill.testing._emulator_limits import RateLimits
from docmill.testing._emulator_models import DEFAULT_MODELS, ModelEntry
from docmill.testing._emulator_replies import count_input_tokens, digest, estimate_tokens
from docmill.testing._emulator_server import AnthropicEmulator
from docmill.testing._emulator_state import EmulatorConfig, EmulatorStats, FaultKind

__all__ = [
    "DEFAULT_MODELS",
    "AnthropicEmulator",
    "EmulatorConfig",
    "EmulatorStats",
    "FaultKind",
    "ModelEntry",
    "RateLimits",
    "count_input_tokens",
    "digest",
    "estimate_tokens",
]
