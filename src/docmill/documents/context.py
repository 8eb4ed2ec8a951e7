"""What the pipeline's handlers and the service run with: settings, database, files,
queue client and LLM provider, built once per process from the environment.

Nothing connects at import time. A worker's first document job builds the context
(``current_context``); every later job in that process shares it. It is closed when
the worker's event loop shuts down (``asyncio.run`` cancels the keeper task, whose
``finally`` closes the context), so connections are not left to the garbage collector.
Tests build a context themselves and ``use_context`` it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from docmill.documents.db import Database
from docmill.documents.service import DocumentService
from docmill.documents.settings import DocumentSettings
from docmill.documents.storage import FileStore
from docmill.llm.settings import LLMSettings
from docmill.queue import Backend, Client, backend_from_url

if TYPE_CHECKING:
    from docmill.llm.types import Provider


@dataclass
class DocumentContext:
    """The dependencies of one process; ``create`` builds it, ``aclose`` releases it."""

    settings: DocumentSettings
    db: Database
    store: FileStore
    backend: Backend
    client: Client
    owns_backend: bool = True
    webhook_transport: httpx.AsyncBaseTransport | None = None  # tests route webhooks in-process
    _provider: Provider | None = None
    _provider_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    async def create(
        cls,
        settings: DocumentSettings | None = None,
        *,
        env: Mapping[str, str] | None = None,
        backend: Backend | None = None,
        provider: Provider | None = None,
        migrate: bool = True,
    ) -> DocumentContext:
        """Open the database (migrating it), and the queue backend unless one is given."""
        settings = settings or DocumentSettings.from_env(env)
        db = await asyncio.to_thread(Database.open, settings.database_url, migrate=migrate)
        owns_backend = backend is None
        if backend is None:
            backend = backend_from_url(settings.queue_url)
            try:
                await backend.connect()
            except BaseException:
                db.close()
                raise
        return cls(
            settings=settings,
            db=db,
            store=FileStore(settings.documents_dir),
            backend=backend,
            client=Client(backend, default_queue=settings.webhook_queue),
            owns_backend=owns_backend,
            _provider=provider,
        )

    @property
    def service(self) -> DocumentService:
        return DocumentService(self.db, self.store, self.client, self.settings)

    async def provider(self) -> Provider:
        """The LLM provider the settings name, built on first use; it shares the queue
        backend's token buckets, so every worker keeps to one set of rate limits."""
        async with self._provider_lock:
            if self._provider is None:
                # Imported here: the SDKs behind the factory are not needed by the API process.
                from docmill.llm.factory import build_provider

                llm = self.settings.llm or LLMSettings.from_env({})
                self._provider = build_provider(llm, rate_store=self.backend)
            return self._provider

    async def aclose(self) -> None:
        """Close the provider, the backend (if this context opened it) and the database."""
        provider, self._provider = self._provider, None
        if provider is not None:
            with contextlib.suppress(Exception):
                await provider.aclose()
        if self.owns_backend:
            with contextlib.suppress(Exception):
                await self.backend.close()
        await asyncio.to_thread(self.db.close)


@contextlib.asynccontextmanager
async def open_context(env: Mapping[str, str] | None = None) -> AsyncIterator[DocumentContext]:
    """A context for one command or one web app's lifetime: ``async with open_context() as ctx``."""
    context = await DocumentContext.create(env=env)
    try:
        yield context
    finally:
        await context.aclose()


# ---------------------------------------------------------------------- the process's context
_override: DocumentContext | None = None
_building: dict[tuple[int, int], asyncio.Task[DocumentContext]] = {}
_keepers: dict[tuple[int, int], asyncio.Task[None]] = {}  # the loop holds tasks weakly; these must live


def use_context(context: DocumentContext | None) -> None:
    """Make every handler in this process use ``context`` (``None``: back to the environment)."""
    global _override
    _override = context


async def current_context() -> DocumentContext:
    """The context of this process and event loop, built from the environment on first use."""
    if _override is not None:
        return _override
    loop = asyncio.get_running_loop()
    key = (os.getpid(), id(loop))
    task = _building.get(key)
    if task is None:
        _building.clear()  # anything else belongs to a forked parent or an earlier loop
        _keepers.clear()
        task = loop.create_task(_build(key))
        _building[key] = task
    try:
        return await asyncio.shield(task)
    except Exception:
        if _building.get(key) is task:
            del _building[key]  # let the next job try again (the database may be back)
        raise


async def _build(key: tuple[int, int]) -> DocumentContext:
    context = await DocumentContext.create()
    _keepers[key] = asyncio.get_running_loop().create_task(_close_on_shutdown(context, key))
    return context


async def _close_on_shutdown(context: DocumentContext, key: tuple[int, int]) -> None:
    """Wait forever; cancelled when the loop shuts down, then close the context."""
    try:
        await asyncio.Event().wait()
    finally:
        _building.pop(key, None)
        _keepers.pop(key, None)
        await context.aclose()
