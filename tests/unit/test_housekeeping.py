"""Restart requests are told apart by value, never by comparing clocks."""

from __future__ import annotations

from docmill.queue.housekeeping import RestartWatch


def test_the_request_standing_at_the_first_look_is_not_a_new_one() -> None:
    watch = RestartWatch()
    assert not watch.requested(1_700_000_000.0)
    assert not watch.requested(1_700_000_000.0)


def test_any_other_value_later_is_a_new_request_even_an_older_time() -> None:
    # A backend clock that went back (a failover to a server with a slower clock) still counts
    watch = RestartWatch()
    watch.requested(1_700_000_000.0)
    assert watch.requested(1_699_999_000.0)


def test_a_first_request_after_none_stood_is_new() -> None:
    watch = RestartWatch()
    assert not watch.requested(None)
    assert watch.requested(5.0)
