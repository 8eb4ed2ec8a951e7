"""The model calls a document needs: one map per chunk, then reduces until one answer.

The plan is a pure function of the number of chunks, so an interrupted job and its
retry agree on what call ``("reduce", 3)`` is, and the saved results of a first run
line up with the second. A document of one chunk needs one call: its map is the final
answer. Otherwise partial answers are combined ``fan_in`` at a time, level by level; a
group of one is passed up as it is rather than paid for again.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_FAN_IN = 12
MAP = "map"
REDUCE = "reduce"

CallRef = tuple[str, int]  # (phase, index): ("map", 0), ("reduce", 2)


@dataclass(frozen=True)
class ReduceStep:
    """One reduce call: which earlier answers it combines, and whether it is the last."""

    index: int
    level: int
    inputs: tuple[CallRef, ...]
    final: bool


@dataclass(frozen=True)
class CallPlan:
    maps: int
    reduces: tuple[ReduceStep, ...]

    @property
    def total(self) -> int:
        return self.maps + len(self.reduces)

    @property
    def final(self) -> CallRef:
        """The call whose answer is the document's result."""
        return (REDUCE, self.reduces[-1].index) if self.reduces else (MAP, 0)


def plan_calls(chunks: int, fan_in: int = DEFAULT_FAN_IN) -> CallPlan:
    """The calls for a document of ``chunks`` chunks (see the module docstring)."""
    if chunks < 1:
        raise ValueError("a document to process has at least one chunk")
    if fan_in < 2:
        raise ValueError("a reduce combines at least two answers")
    level_inputs: list[CallRef] = [(MAP, i) for i in range(chunks)]
    steps: list[ReduceStep] = []
    level = 0
    while len(level_inputs) > 1:
        groups = [level_inputs[i : i + fan_in] for i in range(0, len(level_inputs), fan_in)]
        last_level = len(groups) == 1
        next_inputs: list[CallRef] = []
        for group in groups:
            if len(group) == 1:
                next_inputs.append(group[0])
                continue
            step = ReduceStep(len(steps), level, tuple(group), final=last_level)
            steps.append(step)
            next_inputs.append((REDUCE, step.index))
        level_inputs = next_inputs
        level += 1
    return CallPlan(chunks, tuple(steps))
