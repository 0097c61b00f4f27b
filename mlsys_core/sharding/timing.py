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


def _check_counts(repeats: int, warmup: int) -> None:
    if repeats < 1 or warmup < 1:
        raise ValueError(f"repeats and warmup must be >= 1, got repeats={repeats}, warmup={warmup}")


def time_steps(step, state, batch, repeats: int = 7, warmup: int = 2) -> tuple[StepTiming, object]:
    """Time `state, loss = step(state, batch)`; returns the timing and the final state.

    Each step is followed by `jax.block_until_ready`, so asynchronous dispatch cannot hide work.
    """
    _check_counts(repeats, warmup)
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


def time_interleaved(runs: dict, repeats: int = 7, warmup: int = 2) -> dict:
    """Time several steps fairly on a shared machine: {name: (step, state, batch)} -> {name: StepTiming}.

    Round r times one step of every run, in an order rotated by r, so that load from other work on
    the machine falls on all of them alike instead of on whichever happened to run at a busy moment.
    """
    _check_counts(repeats, warmup)
    if not runs:
        raise ValueError("runs must hold at least one {name: (step, state, batch)}, got none")
    names = list(runs)
    states = {name: state for name, (_, state, _) in runs.items()}
    times: dict = {name: [] for name in names}
    for r in range(warmup + repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            step, _, batch = runs[name]
            start = time.perf_counter()
            states[name], loss = step(states[name], batch)
            jax.block_until_ready((states[name], loss))
            if r >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: StepTiming(tuple(times[name])) for name in names}
