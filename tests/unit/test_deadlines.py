"""Job timeouts on one shared timer behave as asyncio.timeout does."""

from __future__ import annotations

import asyncio
import time

import pytest

from docmill.queue.deadlines import Deadlines


async def _sleep_within(deadlines: Deadlines, timeout_s: float, sleep_s: float) -> float:
    """Sleep under a deadline; return when it ended (loop clock)."""
    loop = asyncio.get_running_loop()
    try:
        with deadlines.limit(timeout_s):
            await asyncio.sleep(sleep_s)
    finally:
        ended = loop.time()
    return ended


async def test_a_job_past_its_deadline_gets_timeout_error_at_the_deadline() -> None:
    deadlines = Deadlines()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await _sleep_within(deadlines, 0.05, 30)
    assert 0.04 <= time.monotonic() - started < 2
    assert len(deadlines) == 0


async def test_a_job_that_ends_in_time_is_never_cancelled_afterwards() -> None:
    deadlines = Deadlines()
    await _sleep_within(deadlines, 0.05, 0.01)
    # The same task goes on past the old deadline: nothing may cancel it now.
    await asyncio.sleep(0.1)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    assert len(deadlines) == 0


async def test_a_later_job_with_an_earlier_deadline_moves_the_timer() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    long_job = asyncio.create_task(_sleep_within(deadlines, 30, 0.5))
    await asyncio.sleep(0)  # the 30 s deadline is armed first
    started = loop.time()
    with pytest.raises(TimeoutError):
        await _sleep_within(deadlines, 0.05, 30)
    assert loop.time() - started < 1
    assert await long_job > started  # the long job ran to its end, untouched


async def test_many_jobs_expire_each_at_its_own_deadline() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    started = loop.time()
    timeouts = [0.05, 0.15, 0.1, 0.25]
    results = await asyncio.gather(
        *(_sleep_within(deadlines, t, 30) for t in timeouts), return_exceptions=True
    )
    assert all(isinstance(r, TimeoutError) for r in results)
    # gather returns when the last one ends; the longest deadline bounds it from below
    assert 0.24 <= loop.time() - started < 2
    assert len(deadlines) == 0


async def test_a_cancel_from_elsewhere_stands_even_when_the_deadline_passed_too() -> None:
    deadlines = Deadlines()

    async def job() -> None:
        with deadlines.limit(0.01):
            try:
                await asyncio.sleep(30)
            finally:
                # By the time the cancellation lands, the deadline has passed as well.
                await asyncio.shield(asyncio.sleep(0.05))

    task = asyncio.create_task(job())
    await asyncio.sleep(0)
    task.cancel()  # e.g. the worker lost the job's lease
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_a_handler_that_swallows_the_cancellation_leaves_the_task_uncancelled() -> None:
    deadlines = Deadlines()
    swallowed: list[bool] = []

    async def job() -> str:
        with deadlines.limit(0.02) as deadline:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                swallowed.append(True)
        assert deadline.expired
        task = asyncio.current_task()
        assert task is not None
        await asyncio.sleep(0.01)  # would raise if the cancel count had been left raised
        return f"cancelling={task.cancelling()}"

    assert await job() == "cancelling=0"
    assert swallowed == [True]


async def test_a_handler_raising_timeout_error_itself_is_not_marked_expired() -> None:
    deadlines = Deadlines()
    with pytest.raises(TimeoutError) as raised, deadlines.limit(5) as deadline:
        raise TimeoutError("socket read")
    assert not deadline.expired
    assert str(raised.value) == "socket read"
