"""What a Celery or RQ user types first does what it means, or is refused in one sentence."""

from __future__ import annotations

from typing import Any

import pytest

from docmill.queue import Client, ConfigurationError, Dispatch, JobOptions, Registry
from docmill.queue.backends.memory import MemoryBackend


async def test_dispatch_with_queue_as_a_keyword_is_refused_and_nothing_is_stored() -> None:
    backend = MemoryBackend()
    with pytest.raises(ConfigurationError) as raised:
        await Client(backend).dispatch("reports.build", 7, queue="reports")
    assert str(raised.value) == (
        "queue= is a job option, not a handler argument: dispatch(handler, ..., "
        "options=JobOptions(queue=...)); a handler argument of that name goes in "
        "dispatch_many([Dispatch(handler, kwargs={'queue': ...})])"
    )
    assert await backend.queues() == []


@pytest.mark.parametrize("option", ["tries", "timeout_s", "delay_s", "tags", "unique_key"])
async def test_every_job_option_given_as_a_keyword_is_refused(option: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"^{option}= is a job option"):
        await Client(MemoryBackend()).dispatch("reports.build", **{option: 1})


async def test_options_given_as_a_dict_are_refused() -> None:
    with pytest.raises(
        ConfigurationError, match=r"options of job 'reports\.build' must be a JobOptions, not a dict"
    ):
        await Client(MemoryBackend()).dispatch("reports.build", options={"queue": "reports"})  # type: ignore[arg-type]


async def test_the_option_routes_the_job_and_a_handler_argument_named_queue_still_has_a_way() -> None:
    backend = MemoryBackend()
    client = Client(backend)
    routed = await client.dispatch("reports.build", 7, options=JobOptions(queue="reports"))
    (passed,) = await client.dispatch_many([Dispatch("mq.forward", kwargs={"queue": "inbox"})])
    routed_job, passed_job = await backend.get(routed), await backend.get(passed)
    assert routed_job is not None and routed_job.queue == "reports" and routed_job.kwargs == {}
    assert (
        passed_job is not None and passed_job.queue == "default" and passed_job.kwargs == {"queue": "inbox"}
    )


async def test_a_name_given_to_the_decorator_is_the_handlers_name() -> None:
    registry = Registry()

    @registry.handler("mail.send")
    async def send(address: str) -> None: ...

    @registry.handler("mail.bounce", queue="mail", tries=5)
    def bounce(address: str) -> None: ...

    assert callable(send) and callable(bounce)
    assert registry.get("mail.send").func is send
    assert registry.get("mail.bounce").options == JobOptions(queue="mail", tries=5)
    backend = MemoryBackend()
    job = await backend.get(await Client(backend, registry).dispatch(bounce, "x@example.com"))
    assert job is not None and (job.name, job.queue, job.tries) == ("mail.bounce", "mail", 5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda r: r.handler("a", name="b"),
            "@handler('a', name='b') names the handler twice; give one name",
        ),
        (
            lambda r: r.handler(42),
            "@handler takes a function or a name, not 42: "
            "@registry.handler, @registry.handler('name') or @registry.handler(queue=...)",
        ),
        (
            lambda r: r.handler(max_retries=3),
            "@handler has no option 'max_retries'; the options are: queue, delay_s, tries, "
            "max_exceptions, timeout_s, backoff_s, retry_until, unique_key, tags",
        ),
    ],
)
def test_a_decorator_that_cannot_mean_anything_is_refused_in_one_sentence(call: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        call(Registry())
    assert str(raised.value) == message
