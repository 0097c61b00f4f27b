"""The one place argument checks live: a bad value names the parameter, the value and what is allowed.

`TypeError` for the wrong kind of value, `ValueError` for a value of the right kind out of range.
NumPy integers and floats are accepted wherever Python ones are, and returned as Python ones; `bool`
is never taken for a number. Every check returns the value it checked, so a frozen config writes
`object.__setattr__(self, "x", validate.integer("x", self.x, low=1))` or simply calls it for effect.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def _bound(x: float) -> str:
    """A range's end as written: whole numbers in full (4294967295, not 4.29497e+09)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e18 else f"{x:g}"


def _range_text(low: float, high: float, low_open: bool, high_open: bool) -> str:
    if high == math.inf:
        return f"{'>' if low_open else '>='} {_bound(low)}"
    if low == -math.inf:
        return f"{'<' if high_open else '<='} {_bound(high)}"
    return f"in {'(' if low_open else '['}{_bound(low)}, {_bound(high)}{')' if high_open else ']'}"


def number(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    allow_inf: bool = False,
) -> Any:
    """Check that `value` is a real number (an integer if `integer`) in the given range; return it.

    Args:
        name: the parameter's name, as the error message says it.
        value: what the caller passed.
        low, high: the range's ends (closed unless `low_open` / `high_open`).
        integer: an int is required (a float, even a whole one, is refused).
        allow_inf: +-inf is accepted where the range admits it; NaN never is.

    Returns:
        `value` as a Python int or float.
    """
    kinds = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise TypeError(f"{name} must be {'an int' if integer else 'a number'}, got {value!r}")
    value = int(value) if isinstance(value, numbers.Integral) else float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {value!r}")
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above:
        raise ValueError(f"{name} must be {_range_text(low, high, low_open, high_open)}, got {value!r}")
    return value


def integer(name: str, value: Any, low: float = -math.inf, high: float = math.inf) -> int:
    """Check that `value` is an int (Python or NumPy, not bool) in [low, high]; return it as an int.

    Args:
        name: the parameter's name, as the error message says it.
        value: what the caller passed.
        low, high: the closed range allowed.
    """
    return number(name, value, low, high, integer=True)


def whole(name: str, value: Any, low: float = -math.inf, high: float = math.inf) -> int:
    """Check that `value` is a whole number in [low, high], an int or an integral float (4096.0, as a claim's
    declared assumption passes a count); return it as an int."""
    x = number(name, value, low, high)
    if x != int(x):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(x)


def flag(name: str, value: Any) -> bool:
    """Check that `value` is a switch given as a bool or as the number 0 or 1; return it as a bool."""
    if isinstance(value, bool):
        return value
    return bool(choice(name, number(name, value), (0, 1)))


def positive(name: str, value: Any, *, allow_inf: bool = False) -> float:
    """Check that `value` is a number > 0; return it."""
    return number(name, value, 0.0, low_open=True, allow_inf=allow_inf)


def probability(name: str, value: Any, *, open_low: bool = False, open_high: bool = False) -> float:
    """Check that `value` is a number in [0, 1] (ends open as asked); return it.

    Args:
        name: the parameter's name, as the error message says it.
        value: what the caller passed.
        open_low, open_high: exclude 0, exclude 1.
    """
    return number(name, value, 0.0, 1.0, low_open=open_low, high_open=open_high)


def seeds(name: str, values: Any) -> tuple[int, ...]:
    """Check that `values` is a non-empty sequence of ints >= 0 (random seeds); return them as a tuple."""
    try:
        seq = None if isinstance(values, (str, bytes)) else tuple(values)  # bytes would iterate as ints
    except TypeError:
        seq = None
    if seq is None:
        raise TypeError(f"{name} must be a sequence of ints >= 0, got {values!r}")
    values = seq
    if not values:
        raise ValueError(f"{name} must hold at least one seed, got ()")
    return tuple(integer(name, v, 0) for v in values)


def seed(name: str, value: Any) -> int:
    """Check that `value` is a random seed: an int >= 0 (Python or NumPy); return it as an int."""
    return integer(name, value, 0)


def _array(name: str, values: Any, ndim: int | None) -> np.ndarray:
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as e:  # ragged nesting, say
        raise ValueError(f"{name} must be an array of numbers, got {_short(values)} ({e})") from None
    if arr.dtype.kind not in "uif":
        raise TypeError(f"{name} must be an array of numbers, got dtype {arr.dtype} ({_short(values)})")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension{'s' if ndim != 1 else ''}, got shape {arr.shape}")
    return arr


def _short(values: Any, limit: int = 60) -> str:
    text = repr(values)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first(name: str, arr: np.ndarray, bad: np.ndarray) -> str:
    """The first element where `bad` holds, as `name[i] is value` (`name[i, j]` in two dimensions)."""
    at = np.unravel_index(int(np.argmax(bad)), bad.shape)
    return f"{name}[{', '.join(str(int(i)) for i in at)}] is {arr[at].item()!r}"


def _in_range(name: str, arr: np.ndarray, low: float, high: float) -> None:
    bad = (arr < low) | (arr > high)
    if bad.any():
        raise ValueError(f"{name} must hold values {_range_text(low, high, False, False)}; {_first(name, arr, bad)}")


def integers(
    name: str, values: Any, low: float = -math.inf, high: float = math.inf, *, ndim: int | None = 1
) -> np.ndarray:
    """Check that `values` is an array of whole numbers (an integer dtype, or floats that are whole); return
    it as int64. A float id such as 1.7 is refused, never truncated.

    Args:
        name: the parameter's name; an error names the first bad element as `name[i]`.
        values: an array or anything `np.asarray` takes (a ragged nesting is refused).
        low, high: the closed range every element must lie in.
        ndim: the dimensions required (None: any).
    """
    arr = _array(name, values, ndim)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise ValueError(f"{name} must hold whole numbers; {_first(name, arr, bad)}")
        if arr.size and (arr.min() < -(2.0**63) or arr.max() >= 2.0**63):
            raise ValueError(f"{name} must hold values that fit in int64, got {arr.min()!r}..{arr.max()!r}")
    elif arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} must hold values that fit in int64, got {arr.max()!r}")
    arr = arr.astype(np.int64)
    _in_range(name, arr, low, high)
    return arr


def reals(
    name: str, values: Any, low: float = -math.inf, high: float = math.inf, *, ndim: int | None = None
) -> np.ndarray:
    """Check that `values` is an array of finite numbers; return it as float64.

    Args:
        name: the parameter's name; an error names the first bad element as `name[i]`.
        values: an array or anything `np.asarray` takes (a ragged nesting is refused).
        low, high: the closed range every element must lie in.
        ndim: the dimensions required (None: any).
    """
    arr = _array(name, values, ndim).astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} must hold finite numbers; {_first(name, arr, bad)}")
    _in_range(name, arr, low, high)
    return arr


def boolean(name: str, value: Any) -> bool:
    """Check that `value` is a bool (Python or NumPy); return it as a bool."""
    if type(value).__name__ not in ("bool", "bool_"):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def string(name: str, value: Any, *, empty: bool = False) -> str:
    """Check that `value` is a str (non-empty unless `empty`); return it."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {value!r}")
    if not empty and not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def choice(name: str, value: T, allowed: Iterable) -> T:
    """Check that `value` is one of `allowed`; return it."""
    allowed = tuple(allowed)
    try:
        ok = value in allowed
    except TypeError:  # an unhashable value against a dict's keys, say
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def instance(name: str, value: T, kinds: type | tuple[type, ...], what: str | None = None) -> T:
    """Check that `value` is an instance of `kinds`; return it.

    Args:
        name: the parameter's name, as the error message says it.
        value: what the caller passed.
        kinds: a type or a tuple of types.
        what: how the message names the allowed kind (default: the types' names).
    """
    if not isinstance(value, kinds):
        if what is None:
            what = " or ".join(k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,)))
        raise TypeError(f"{name} must be {what}, got {value!r}")
    return value


def callable_(name: str, value: Any) -> Callable:
    """Check that `value` can be called; return it."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {value!r}")
    return value


def numeric_arguments(fn: Callable[..., T]) -> Callable[..., T]:
    """Wrap a function whose every argument is a number (a claim's measure: one per declared assumption), so
    that a non-number or a non-finite value is refused naming its parameter before any work starts."""
    import functools
    import inspect

    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> T:
        for name, value in signature.bind(*args, **kwargs).arguments.items():
            number(name, value)
        return fn(*args, **kwargs)

    return checked
