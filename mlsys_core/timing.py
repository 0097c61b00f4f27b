"""Honest step times: compile and warm up first, block on the result, report the median of repeats."""

from __future__ import annotations

import dataclasses
import statistics
import time

import jax
import numpy as np

from mlsys_core import validate


@dataclasses.dataclass(frozen=True)
class StepTiming:
    """Wall-clock seconds of `repeats` steps after `warmup` steps; `median_s` is what to compare."""

    times_s: tuple[float, ...]

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)


def _check_counts(repeats: int, warmup: int) -> None:
    validate.integer("repeats", repeats, 1)
    validate.integer("warmup", warmup, 1)


def time_steps(step, state, batch, repeats: int = 7, warmup: int = 2) -> tuple[StepTiming, object]:
    """Time `state, loss = step(state, batch)`; returns the timing and the final state.

    Each step is followed by `jax.block_until_ready`, so asynchronous dispatch cannot hide work.

    Args:
        step: a (compiled) function `(state, batch) -> (state, loss)`.
        state: the state the first step starts from.
        batch: the batch every step takes.
        repeats: timed steps (>= 1).
        warmup: untimed steps first, compilation included (>= 1).
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


def ratios(numerator: StepTiming, denominator: StepTiming) -> np.ndarray:
    """Per-repeat ratios numerator[i] / denominator[i] of two timings taken in the same rounds.

    Timed interleaved (`time_interleaved`), repeat i of both ran in the same round, so each ratio
    compares the two under the same load; the array carries the spread that a ratio of medians hides.
    """
    validate.instance("numerator", numerator, StepTiming)
    validate.instance("denominator", denominator, StepTiming)
    a, b = np.asarray(numerator.times_s), np.asarray(denominator.times_s)
    if a.shape != b.shape:
        raise ValueError(f"ratios needs timings of the same rounds, got {a.size} and {b.size} repeats")
    return a / b
