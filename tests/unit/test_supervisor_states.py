"""The process state machine: every legal move is allowed, every other one refused."""

from __future__ import annotations

import itertools

import pytest

from docmill.supervisor.states import IllegalTransition, ProcessState, can_transition, transition

S = ProcessState
LEGAL = {
    (S.EXITED, S.STARTING),
    (S.STARTING, S.RUNNING),
    (S.STARTING, S.BACKOFF),
    (S.STARTING, S.FATAL),
    (S.STARTING, S.STOPPING),
    (S.RUNNING, S.STOPPING),
    (S.RUNNING, S.EXITED),
    (S.RUNNING, S.BACKOFF),
    (S.RUNNING, S.FATAL),
    (S.BACKOFF, S.STARTING),
    (S.BACKOFF, S.EXITED),
    (S.BACKOFF, S.FATAL),
    (S.STOPPING, S.EXITED),
    (S.FATAL, S.STARTING),
    (S.FATAL, S.EXITED),
}


@pytest.mark.parametrize(("current", "new"), sorted(LEGAL, key=lambda t: (t[0].value, t[1].value)))
def test_a_legal_move_returns_the_new_state(current: ProcessState, new: ProcessState) -> None:
    assert transition(current, new) is new


def test_every_move_not_drawn_in_the_machine_is_refused() -> None:
    for current, new in itertools.product(ProcessState, ProcessState):
        if (current, new) in LEGAL:
            continue
        assert not can_transition(current, new)
        with pytest.raises(IllegalTransition, match=f"from {current.value} to {new.value}"):
            transition(current, new)


def test_a_stopping_process_can_only_exit() -> None:
    # A worker asked to stop must not be restarted or marked fatal by a late exit code.
    assert [s for s in ProcessState if can_transition(S.STOPPING, s)] == [S.EXITED]
