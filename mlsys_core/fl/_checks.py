"""Validation helpers for the frozen configs: a bad value names the field, the value and what is allowed."""

from __future__ import annotations

import math


def number(name: str, value, low: float = -math.inf, high: float = math.inf, *, low_open=False, integer=False):
    """Check `value` is a real (or int) in [low, high] (or (low, high] with `low_open`); return it."""
    kind = "an int" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise TypeError(f"{name} must be {kind}, got {value!r}")
    if not math.isfinite(value) and not (value == math.inf and high == math.inf):
        raise ValueError(f"{name} must be finite, got {value!r}")
    too_low = value <= low if low_open else value < low
    if too_low or value > high:
        lo = "(" if low_open else "["
        raise ValueError(f"{name} must be in {lo}{low}, {high}], got {value!r}")
    return value


def choice(name: str, value, allowed: tuple):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value
