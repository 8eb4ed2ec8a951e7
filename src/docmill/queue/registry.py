"""Handlers: the functions jobs run, registered by name, and the hooks around a worker.

A handler is a plain function, async or sync, called with the job's args and
kwargs; one registered with ``context=True`` gets the worker's ``WorkerContext``
first (``context.py``). Options given at registration are the *job's own* options
(the top of the precedence order); dispatch-time options override them field by field.

``on_startup`` hooks run in the worker before its first job and ``on_shutdown`` hooks
after its last, each called with the ``WorkerContext``: that is where an application
opens what its handlers share (a database, an API client) from the worker's own backend.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, TypeVar, overload

from docmill.queue.errors import ConfigurationError, UnknownHandler
from docmill.queue.options import JobOptions

if TYPE_CHECKING:
    from docmill.queue.context import WorkerContext

F = TypeVar("F", bound=Callable[..., Any])
L = TypeVar("L", bound=Callable[..., Any])


FailureHook = Callable[..., Any]  # (job, error), or (context, job, error); sync or async
LifecycleHook = Callable[["WorkerContext"], Any]  # sync, or async returning an awaitable


@dataclass(frozen=True, slots=True)
class Handler:
    name: str
    func: Callable[..., Any]
    is_async: bool
    options: JobOptions
    # Run once a job of this handler lands in the failed store (Laravel's ``failed()``), so the
    # application can record the failure where its users look; see ``Registry.on_failed``.
    on_failed: FailureHook | None = None
    takes_context: bool = False  # called as func(context, *args, **kwargs)
    on_failed_takes_context: bool = False  # the hook is called as hook(context, job, error)


class Registry:
    """A name → handler map. Workers load one with ``--app module:attribute``."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self.startup_hooks: list[LifecycleHook] = []
        self.shutdown_hooks: list[LifecycleHook] = []

    @overload
    def handler(self, func: F, /) -> F: ...

    @overload
    def handler(
        self, func: str | None = None, /, *, name: str | None = None, context: bool = False, **options: Any
    ) -> Callable[[F], F]: ...

    def handler(
        self,
        func: F | str | None = None,
        /,
        *,
        name: str | None = None,
        context: bool = False,
        **options: Any,
    ) -> F | Callable[[F], F]:
        """Register a function: ``@registry.handler``, ``@registry.handler("send-mail")`` (its
        name, as Celery's ``@app.task(name=...)``) or ``@registry.handler(queue=..., tries=3)``.

        ``options`` are ``JobOptions`` fields (queue, tries, timeout_s, backoff_s, ...);
        ``context=True`` passes the worker's ``WorkerContext`` as the first argument.
        """
        if isinstance(func, str):
            if name is not None and name != func:
                raise ConfigurationError(
                    f"@handler({func!r}, name={name!r}) names the handler twice; give one name"
                )
            name, func = func, None
        elif func is not None and not callable(func):
            raise ConfigurationError(
                f"@handler takes a function or a name, not {func!r}: "
                "@registry.handler, @registry.handler('name') or @registry.handler(queue=...)"
            )
        unknown = sorted(set(options) - {f.name for f in fields(JobOptions)})
        if unknown:
            known = ", ".join(f.name for f in fields(JobOptions))
            raise ConfigurationError(f"@handler has no option {unknown[0]!r}; the options are: {known}")
        job_options = JobOptions(**options)

        def register(f: F) -> F:
            if not callable(f):
                raise ConfigurationError(f"@handler decorates a function, not {f!r}")
            self.register(f, name=name, options=job_options, takes_context=context)
            return f

        return register(func) if func is not None else register

    def register(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        options: JobOptions | None = None,
        on_failed: FailureHook | None = None,
        takes_context: bool = False,
        on_failed_takes_context: bool = False,
    ) -> Handler:
        handler_name = name or f"{func.__module__}.{func.__qualname__}"
        existing = self._handlers.get(handler_name)
        if existing is not None and existing.func is not func:
            raise ConfigurationError(f"two different handlers are registered as {handler_name!r}")
        if on_failed is None and existing is not None:
            on_failed, on_failed_takes_context = existing.on_failed, existing.on_failed_takes_context
        handler = Handler(
            handler_name,
            func,
            inspect.iscoroutinefunction(func),
            options or JobOptions(),
            on_failed,
            takes_context,
            on_failed_takes_context,
        )
        self._handlers[handler_name] = handler
        return handler

    def on_failed(self, name: str, *, context: bool = False) -> Callable[[F], F]:
        """Decorate ``hook(job, error)`` to run after a job of handler ``name`` failed for good
        (``hook(context, job, error)`` with ``context=True``).

        The hook runs in the worker once the job is in the failed store; an exception it
        raises is logged and changes nothing about the job.
        """

        def attach(hook: F) -> F:
            handler = self.get(name)
            self._handlers[name] = replace(handler, on_failed=hook, on_failed_takes_context=context)
            return hook

        return attach

    def on_startup(self, hook: L) -> L:
        """Decorate ``hook(context)`` to run in each worker before it takes its first job.

        A hook that raises keeps the worker from starting (see ``Worker.run``).
        """
        self.startup_hooks.append(hook)
        return hook

    def on_shutdown(self, hook: L) -> L:
        """Decorate ``hook(context)`` to run in each worker after its last job, before it exits."""
        self.shutdown_hooks.append(hook)
        return hook

    def include(self, other: Registry) -> None:
        """Take every handler and hook of ``other`` (a worker given several ``--app``)."""
        for handler in other:
            self.register(
                handler.func,
                name=handler.name,
                options=handler.options,
                on_failed=handler.on_failed,
                takes_context=handler.takes_context,
                on_failed_takes_context=handler.on_failed_takes_context,
            )
        self.startup_hooks.extend(h for h in other.startup_hooks if h not in self.startup_hooks)
        self.shutdown_hooks.extend(h for h in other.shutdown_hooks if h not in self.shutdown_hooks)

    def get(self, name: str) -> Handler:
        try:
            return self._handlers[name]
        except KeyError:
            raise UnknownHandler(
                f"no handler named {name!r} is registered in this worker; "
                "start the worker with the --app that defines it"
            ) from None

    def name_of(self, func: Callable[..., Any] | str) -> str:
        if isinstance(func, str):
            return func
        for handler in self._handlers.values():
            if handler.func is func:
                return handler.name
        raise UnknownHandler(f"{func!r} is not a registered handler")

    def __contains__(self, name: object) -> bool:
        return name in self._handlers

    def __iter__(self) -> Iterator[Handler]:
        return iter(self._handlers.values())

    def __len__(self) -> int:
        return len(self._handlers)


def merge_options(base: JobOptions, override: JobOptions | None) -> JobOptions:
    """Fields set in ``override`` (not None / not default) win over ``base``."""
    if override is None:
        return base
    defaults = JobOptions()
    changes = {
        f.name: getattr(override, f.name)
        for f in fields(JobOptions)
        if getattr(override, f.name) != getattr(defaults, f.name)
    }
    return replace(base, **changes)


def load_registry(spec: str) -> Registry:
    """Import ``module:attribute`` (attribute defaults to ``registry``) and return the Registry."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import handler module {module_name!r}: {exc}") from exc
    registry = getattr(module, attr or "registry", None)
    if not isinstance(registry, Registry):
        raise ConfigurationError(f"{spec!r} is not a docmill.queue.Registry")
    return registry
