"""Rules: small pure objects that turn a measurement, or its interval over seeds, into a verdict.

A numeric rule cuts the real line at a few edges into bands, each with a verdict:

    at_least(1.2, partly=1.05, exceeds=1.377)   not | partly | reproduced | exceeds paper
                                                    1.05     1.2          1.377

A single value gets the verdict of its band; a value exactly on an edge gets the better of the two
(reproduced > exceeds paper > partly > not), except where the rule says otherwise (`direction`: no
move at all is not reproduced). An interval that lies in one band gets that band's
verdict; one that spans "reproduced" and "exceeds paper" only is "reproduced" (the paper's range is
among the values it admits); any other interval that straddles an edge is "inconclusive": the measurement
cannot tell the two bands apart, and the report shows the verdict of the mean beside it (`Bands.point`).
`qualitative(reason)` is the rule for a claim no number of ours can be compared with.
"""

from __future__ import annotations

import bisect
import dataclasses
import math

from mlsys_core import validate

REPRODUCED = "reproduced"
EXCEEDS = "exceeds paper"
PARTLY = "partly reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
NOT_COMPARABLE = "not comparable"
VERDICTS = (REPRODUCED, EXCEEDS, PARTLY, NOT_REPRODUCED, INCONCLUSIVE, NOT_COMPARABLE)
_RANK = {NOT_REPRODUCED: 0, PARTLY: 1, EXCEEDS: 2, REPRODUCED: 3}


@dataclasses.dataclass(frozen=True)
class Bands:
    """A numeric rule: `edges` (increasing) cut the line into len(edges) + 1 bands with `verdicts`."""

    edges: tuple[float, ...]
    verdicts: tuple[str, ...]
    text: str
    at_edges: tuple[str, ...] | None = None  # a value exactly on edge i; default: the better neighbour

    def __post_init__(self) -> None:
        if len(self.verdicts) != len(self.edges) + 1:
            raise ValueError(f"Bands needs len(edges) + 1 verdicts, got {len(self.edges)} edges, {self.verdicts}")
        if any(not math.isfinite(e) for e in self.edges) or list(self.edges) != sorted(set(self.edges)):
            raise ValueError(f"Bands edges must be finite and strictly increasing, got {self.edges}")
        if not set(self.verdicts) | set(self.at_edges or ()) <= set(_RANK):
            raise ValueError(f"Bands verdicts must be among {tuple(_RANK)}, got {self.verdicts}, {self.at_edges}")
        if self.at_edges is not None and len(self.at_edges) != len(self.edges):
            raise ValueError(f"Bands needs one at_edges verdict per edge, got {self.at_edges} for {self.edges}")

    def point(self, x: float) -> str:
        """The verdict of one value (an edge goes to the better of its two bands)."""
        below, above = bisect.bisect_left(self.edges, x), bisect.bisect_right(self.edges, x)
        if below == above or self.at_edges is None:
            return max(self.verdicts[below], self.verdicts[above], key=_RANK.__getitem__)
        return self.at_edges[below]

    def __call__(self, lo: float, hi: float | None = None) -> str:
        """The verdict of a value `lo`, or of the interval [lo, hi]."""
        hi = lo if hi is None else hi
        if math.isnan(lo) or math.isnan(hi) or lo > hi:
            raise ValueError(f"a rule needs a number or an interval lo <= hi, got [{lo}, {hi}]")
        if lo == hi:
            return self.point(lo)
        touched = set(self.verdicts[bisect.bisect_right(self.edges, lo) : bisect.bisect_left(self.edges, hi) + 1])
        if len(touched) == 1:
            return touched.pop()
        return REPRODUCED if touched <= {REPRODUCED, EXCEEDS} else INCONCLUSIVE


@dataclasses.dataclass(frozen=True)
class Qualitative:
    """The rule for a claim our measurement cannot be held against: always "not comparable"."""

    reason: str

    @property
    def text(self) -> str:
        return f"not comparable: {self.reason}"

    def __call__(self, lo: float, hi: float | None = None) -> str:
        return NOT_COMPARABLE

    def point(self, x: float) -> str:
        return NOT_COMPARABLE


Rule = Bands | Qualitative


def _ordered(name: str, *values: float) -> None:
    for v in values:
        validate.number(name, v)
    if list(values) != sorted(set(values)):
        raise ValueError(f"{name} needs strictly increasing values, got {values}")


def at_least(target: float, *, partly: float, exceeds: float | None = None) -> Bands:
    """Reproduced from `target` up; partly from `partly` up; "exceeds paper" above `exceeds` if given."""
    edges = (partly, target) if exceeds is None else (partly, target, exceeds)
    _ordered("at_least(partly, target, exceeds)", *edges)
    verdicts = (NOT_REPRODUCED, PARTLY, REPRODUCED) + (() if exceeds is None else (EXCEEDS,))
    beyond = "" if exceeds is None else f", exceeds paper > {exceeds:g}"
    return Bands(edges, verdicts, f">= {target:g} (partly >= {partly:g}{beyond})")


def at_most(target: float, *, partly: float, exceeds: float | None = None) -> Bands:
    """Reproduced up to `target`; partly up to `partly`; "exceeds paper" below `exceeds` if given."""
    edges = (target, partly) if exceeds is None else (exceeds, target, partly)
    _ordered("at_most(exceeds, target, partly)", *edges)
    verdicts = (() if exceeds is None else (EXCEEDS,)) + (REPRODUCED, PARTLY, NOT_REPRODUCED)
    beyond = "" if exceeds is None else f", exceeds paper < {exceeds:g}"
    return Bands(edges, verdicts, f"<= {target:g} (partly <= {partly:g}{beyond})")


def between(low: float, high: float, *, partly: tuple[float, float]) -> Bands:
    """Reproduced in [low, high]; partly in [partly[0], partly[1]]; not reproduced outside."""
    _ordered("between(partly[0], low, high, partly[1])", partly[0], low, high, partly[1])
    verdicts = (NOT_REPRODUCED, PARTLY, REPRODUCED, PARTLY, NOT_REPRODUCED)
    text = f"in [{low:g}, {high:g}] (partly in [{partly[0]:g}, {partly[1]:g}])"
    return Bands((partly[0], low, high, partly[1]), verdicts, text)


def equal(value: float, *, atol: float, partly_atol: float) -> Bands:
    """Reproduced when |measured - value| <= atol; partly when <= partly_atol."""
    _ordered("equal(atol, partly_atol)", 0.0, atol, partly_atol)
    rule = between(value - atol, value + atol, partly=(value - partly_atol, value + partly_atol))
    return dataclasses.replace(rule, text=f"= {value:g} +- {atol:g} (partly +- {partly_atol:g})")


def within(value: float, *, rel: float, partly_rel: float) -> Bands:
    """Reproduced within a relative `rel` of a positive `value`; partly within `partly_rel`."""
    _ordered("within(value)", 0.0, value)
    _ordered("within(rel, partly_rel)", 0.0, rel, partly_rel)
    partly = (value * (1 - partly_rel), value * (1 + partly_rel))
    rule = between(value * (1 - rel), value * (1 + rel), partly=partly)
    return dataclasses.replace(rule, text=f"within {rel:.0%} of {value:g} (partly within {partly_rel:.0%})")


def direction(sign: int, *, min_effect: float, reference: float = 0.0) -> Bands:
    """Reproduced when the measurement moves from `reference` by >= `min_effect` in the direction of
    `sign` (+1 up, -1 down); partly when it moves that way by less; not reproduced otherwise."""
    if sign not in (1, -1):
        raise ValueError(f"direction's sign must be +1 or -1, got {sign!r}")
    _ordered("direction(min_effect)", 0.0, min_effect)
    if sign == 1:
        rule = at_least(reference + min_effect, partly=reference)
        at_edges = (NOT_REPRODUCED, REPRODUCED)  # no move at all is not the claimed direction
    else:
        rule = at_most(reference - min_effect, partly=reference)
        at_edges = (REPRODUCED, NOT_REPRODUCED)
    arrow = ">" if sign == 1 else "<"
    text = f"{arrow} {reference:g} by >= {min_effect:g} (partly: any move {arrow} {reference:g})"
    return dataclasses.replace(rule, text=text, at_edges=at_edges)


def qualitative(reason: str) -> Qualitative:
    """A claim no measurement of ours can decide: the verdict is "not comparable", with `reason`."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError(f"qualitative needs a reason, got {reason!r}")
    return Qualitative(reason)
