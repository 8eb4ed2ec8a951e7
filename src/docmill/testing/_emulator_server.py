"""The emulator served by uvicorn on a background thread, for in-process tests."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn

from docmill.testing._emulator_app import create_app
from docmill.testing._emulator_limits import RateLimits
from docmill.testing._emulator_state import EmulatorConfig, EmulatorState, EmulatorStats, FaultKind

STARTUP_TIMEOUT_S = 10.0


class AnthropicEmulator:
    """The emulator served by uvicorn on a background thread (``start``/``stop`` or ``with``)."""

    def __init__(
        self, config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._state = EmulatorState(config or EmulatorConfig())
        self.app = create_app(self._state)
        self._host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL for ``anthropic.Anthropic(base_url=...)``; the port is known once started."""
        return f"http://{self._host}:{self._port}"

    @property
    def config(self) -> EmulatorConfig:
        return self._state.config

    @property
    def stats(self) -> EmulatorStats:
        """A snapshot of the counters."""
        return self._state.stats()

    def configure(self, **changes: Any) -> EmulatorConfig:
        """Change knobs by ``EmulatorConfig`` field name; takes effect for the next request."""
        return self._state.configure(**changes)

    def set_limits(self, *, rpm: int | None = None, itpm: int | None = None, otpm: int | None = None) -> None:
        """Replace the default per-model limits (buckets start full)."""
        current = self.config.limits
        self.configure(
            limits=RateLimits(
                requests_per_minute=current.requests_per_minute if rpm is None else rpm,
                input_tokens_per_minute=current.input_tokens_per_minute if itpm is None else itpm,
                output_tokens_per_minute=current.output_tokens_per_minute if otpm is None else otpm,
            )
        )

    def inject(self, kind: FaultKind | str, count: int = 1) -> None:
        """Make the next ``count`` Messages calls fail with ``kind`` ("429", "529", "stream_error", …)."""
        self._state.inject(FaultKind.parse(kind), count)

    def reset(self, config: EmulatorConfig | None = None) -> None:
        """Zero the counters, refill the buckets, drop queued faults; with ``config``, use it from now."""
        self._state.reset(config)

    def start(self) -> Self:
        """Bind a port (a free one unless given) and serve until ``stop``."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="anthropic-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the Anthropic emulator did not start on {self.url}; see the log above")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the server thread."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=STARTUP_TIMEOUT_S)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
