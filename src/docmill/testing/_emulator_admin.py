"""Admin endpoints of the emulator (not part of the emulated API; no key needed).

``GET  /_emulator/config``   the current knobs as JSON.
``POST /_emulator/config``   change knobs; any subset of::

        {"api_key": "...", "latency_s": 0.2, "latency_per_output_token_s": 0.001,
         "limits": {"rpm": 600, "itpm": 400000, "otpm": 80000},
         "model_limits": {"claude-haiku-4-5": {"rpm": 50}},
         "fault_probabilities": {"529": 0.1, "stream_error": 0.05}, "seed": 7,
         "slow_s": 3, "fault_retry_after_s": 2, "max_request_bytes": 1000000,
         "default_model": "claude-sonnet-4-5", "spend_limit_after": 20,
         "batch_processing_s": 30, "batch_expiry_s": 86400,
         "inject": {"429": 2, "stream_error": 1}}

``GET  /_emulator/stats``    counters (``EmulatorStats``).
``POST /_emulator/reset``    zero counters, refill buckets, drop queued faults.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from docmill.testing._emulator_limits import RateLimits
from docmill.testing._emulator_state import EmulatorConfig, EmulatorState, FaultKind

admin_router = APIRouter(prefix="/_emulator")

_SCALARS: dict[str, type] = {
    "api_key": str,
    "latency_s": float,
    "latency_per_output_token_s": float,
    "seed": int,
    "slow_s": float,
    "fault_retry_after_s": int,
    "max_request_bytes": int,
    "default_model": str,
    "spend_limit_after": int,
    "batch_processing_s": float,
    "batch_expiry_s": float,
}
_LIMIT_NAMES = {
    "rpm": "requests_per_minute",
    "itpm": "input_tokens_per_minute",
    "otpm": "output_tokens_per_minute",
    "requests_per_minute": "requests_per_minute",
    "input_tokens_per_minute": "input_tokens_per_minute",
    "output_tokens_per_minute": "output_tokens_per_minute",
}


def limits_from_json(base: RateLimits, payload: dict[str, Any]) -> RateLimits:
    """``base`` with the limits named in ``payload`` (short or long names) replaced."""
    values = {
        "requests_per_minute": base.requests_per_minute,
        "input_tokens_per_minute": base.input_tokens_per_minute,
        "output_tokens_per_minute": base.output_tokens_per_minute,
    }
    for name, value in payload.items():
        if name not in _LIMIT_NAMES:
            raise ValueError(f"unknown limit {name!r}; use one of {sorted(_LIMIT_NAMES)}")
        values[_LIMIT_NAMES[name]] = int(value)
    return RateLimits(**values)


def changes_from_json(
    config: EmulatorConfig, payload: dict[str, Any]
) -> tuple[dict[str, Any], dict[FaultKind, int]]:
    """Turn an admin payload into ``EmulatorState.configure`` changes plus faults to inject."""
    changes: dict[str, Any] = {}
    injections: dict[FaultKind, int] = {}
    for key, value in payload.items():
        if key in _SCALARS:
            nullable = key in {"api_key", "spend_limit_after"}
            changes[key] = None if value is None and nullable else _SCALARS[key](value)
        elif key == "limits":
            changes["limits"] = limits_from_json(config.limits, value)
        elif key == "model_limits":
            changes["model_limits"] = {
                model: limits_from_json(config.limits, limits) for model, limits in value.items()
            }
        elif key == "fault_probabilities":
            changes["fault_probabilities"] = {FaultKind.parse(k): float(p) for k, p in value.items()}
        elif key == "inject":
            injections = {FaultKind.parse(k): int(n) for k, n in value.items()}
        else:
            raise ValueError(f"unknown setting {key!r}")
    return changes, injections


def config_to_json(config: EmulatorConfig) -> dict[str, Any]:
    """The knobs as JSON (the model list as ids only)."""

    def limits(value: RateLimits) -> dict[str, int]:
        return {
            "rpm": value.requests_per_minute,
            "itpm": value.input_tokens_per_minute,
            "otpm": value.output_tokens_per_minute,
        }

    return {
        **{name: getattr(config, name) for name in _SCALARS},
        "limits": limits(config.limits),
        "model_limits": {model: limits(value) for model, value in config.model_limits.items()},
        "fault_probabilities": {kind.value: p for kind, p in config.fault_probabilities.items()},
        "models": [model.id for model in config.models],
        "api_versions": sorted(config.api_versions),
    }


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


@admin_router.get("/config")
async def read_config(request: Request) -> Response:
    return JSONResponse(config_to_json(_state(request).config))


@admin_router.post("/config")
async def update_config(request: Request) -> Response:
    state = _state(request)
    try:
        payload = await request.json()
        if not isinstance(payload, dict):
            raise ValueError("expected a JSON object")
        changes, injections = changes_from_json(state.config, payload)
    except (ValueError, TypeError, AttributeError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    config = state.configure(**changes)
    for kind, count in injections.items():
        state.inject(kind, count)
    return JSONResponse(config_to_json(config))


@admin_router.get("/stats")
async def read_stats(request: Request) -> Response:
    return JSONResponse(dict(_state(request).stats()))


@admin_router.post("/reset")
async def reset(request: Request) -> Response:
    _state(request).reset()
    return JSONResponse(dict(_state(request).stats()))
