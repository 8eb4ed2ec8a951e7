"""What the pipeline's handlers and the service run with: settings, database, files,
queue client and LLM provider.

Nothing connects at import time. A worker builds its context in the registry's start-up
hook, over the worker's own backend (``jobs.py``), and closes it in the shut-down hook;
the API builds one for its lifetime, a command for its run (``open_context``). No
context builds a queue backend from the environment behind its owner's back: what a
job dispatches goes where its worker's jobs come from, and the LLM rate limiter is the
one every worker on that backend shares.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from docmill.documents.db import Database
from docmill.documents.errors import InvalidSetting
from docmill.documents.service import DocumentService
from docmill.documents.settings import DocumentSettings
from docmill.documents.storage import FileStore
from docmill.llm.settings import LLMSettings
from docmill.queue import Backend, Client, backend_from_url, mask_url

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
        db = await asyncio.to_thread(_open_database, settings.database_url, migrate)
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


def _open_database(url: str, migrate: bool) -> Database:
    """Open (and migrate) the database; a URL no installed driver can use is an ``InvalidSetting``."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        return Database.open(url, migrate=migrate)
    except (NoSuchModuleError, ArgumentError) as exc:
        raise InvalidSetting(
            f"DATABASE_URL {mask_url(url)} cannot be used: {str(exc).splitlines()[0]}; "
            "e.g. postgresql+psycopg://user@host/db or sqlite:////path/docmill.db"
        ) from None


@contextlib.asynccontextmanager
async def open_context(
    settings: DocumentSettings | None = None, *, env: Mapping[str, str] | None = None
) -> AsyncIterator[DocumentContext]:
    """A context for one command or one web app's lifetime: ``async with open_context() as ctx``."""
    context = await DocumentContext.create(settings, env=env)
    try:
        yield context
    finally:
        await context.aclose()
