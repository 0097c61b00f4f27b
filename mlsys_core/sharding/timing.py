"""Honest step times: compile and warm up first, block on the result, report the median of repeats."""

from __future__ import annotations

import dataclasses
import statistics
import time

import jax


@dataclasses.dataclass(frozen=True)
class StepTiming:
    """Wall-clock seconds of `repeats` steps after `warmup` steps; `median_s` is what to compare."""

    times_s: tuple[float, ...]

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)


def time_steps(step, state, batch, repeats: int = 7, warmup: int = 2) -> tuple[StepTiming, object]:
    """Time `state, loss = step(state, batch)`; returns the timing and the final state.

    Each step is followed by `jax.block_until_ready`, so asynchronous dispatch cannot hide work.
    """
    if repeats < 1 or warmup < 1:
        raise ValueError(f"repeats and warmup must be >= 1, got repeats={repeats}, warmup={warmup}")
    for _ in range(warmup):
        state, loss = step(state, batch)
        jax.block_until_ready((state, loss))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state, loss = step(state, batch)
        jax.block_until_ready((state, loss))
        times.append(time.perf_counter() - start)
    return StepTiming(tuple(times)), state
