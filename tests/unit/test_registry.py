"""The handler registry: names, options given at registration, and loading with --app."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from docmill.queue import ConfigurationError, JobOptions, Registry, UnknownHandler, load_registry
from docmill.queue.registry import merge_options


def plain(document_id: int) -> int:
    return document_id


async def coroutine(document_id: int) -> int:
    return document_id


def test_a_bare_decorator_registers_under_the_functions_dotted_name() -> None:
    registry = Registry()

    decorated = registry.handler(plain)

    assert decorated is plain
    handler = registry.get(f"{__name__}.plain")
    assert (handler.func, handler.is_async, handler.options) == (plain, False, JobOptions())


def test_a_decorator_with_options_records_them_as_the_jobs_own_options() -> None:
    registry = Registry()

    registry.handler(queue="document-analysis", tries=3, backoff_s=(1, 5))(plain)

    assert registry.get(f"{__name__}.plain").options == JobOptions(
        queue="document-analysis", tries=3, backoff_s=(1, 5)
    )


def test_a_handler_can_be_registered_under_an_explicit_name() -> None:
    registry = Registry()

    registry.handler(name="analyze")(coroutine)

    assert registry.get("analyze").is_async
    assert "analyze" in registry
    assert registry.name_of(coroutine) == "analyze"


def test_invalid_options_fail_at_registration() -> None:
    with pytest.raises(ConfigurationError):
        Registry().handler(tries=0)(plain)


def test_registering_the_same_function_twice_is_harmless() -> None:
    registry = Registry()

    registry.register(plain)
    registry.register(plain)

    assert len(registry) == 1


def test_two_different_functions_cannot_share_a_name() -> None:
    registry = Registry()
    registry.register(plain, name="h")

    with pytest.raises(ConfigurationError, match="'h'"):
        registry.register(coroutine, name="h")


def test_an_unknown_name_says_how_to_fix_it() -> None:
    with pytest.raises(UnknownHandler, match=r"no handler named 'missing'.*--app"):
        Registry().get("missing")


def test_name_of_accepts_a_name_or_a_registered_function() -> None:
    registry = Registry()
    registry.register(plain, name="p")

    assert registry.name_of("anything.at.all") == "anything.at.all"
    assert registry.name_of(plain) == "p"
    with pytest.raises(UnknownHandler):
        registry.name_of(coroutine)


def test_a_registry_iterates_over_its_handlers() -> None:
    registry = Registry()
    registry.register(plain, name="a")
    registry.register(coroutine, name="b")

    assert [handler.name for handler in registry] == ["a", "b"]
    assert "c" not in registry


def test_dispatch_options_override_registered_options_field_by_field() -> None:
    base = JobOptions(queue="analysis", tries=3, timeout_s=300.0, tags=("kind:analysis",))

    merged = merge_options(base, JobOptions(tries=5, delay_s=10))

    assert merged == JobOptions(
        queue="analysis", tries=5, timeout_s=300.0, delay_s=10, tags=("kind:analysis",)
    )


def test_no_dispatch_options_keep_the_registered_ones() -> None:
    base = JobOptions(queue="analysis", tries=3)

    assert merge_options(base, None) is base
    assert merge_options(base, JobOptions()) == base


@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"docmill_test_app_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            from docmill.queue import Registry

            registry = Registry()
            jobs = Registry()
            not_a_registry = object()

            @registry.handler(name="ping")
            def ping():
                return "pong"
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_load_registry_reads_the_registry_attribute_by_default(app_module: str) -> None:
    assert "ping" in load_registry(app_module)


def test_load_registry_reads_a_named_attribute(app_module: str) -> None:
    assert len(load_registry(f"{app_module}:jobs")) == 0


def test_load_registry_rejects_an_attribute_that_is_not_a_registry(app_module: str) -> None:
    with pytest.raises(ConfigurationError, match=r"not a docmill\.queue\.Registry"):
        load_registry(f"{app_module}:not_a_registry")


def test_load_registry_reports_a_module_that_cannot_be_imported() -> None:
    with pytest.raises(ConfigurationError, match="cannot import handler module 'no_such_module_here'"):
        load_registry("no_such_module_here:registry")
