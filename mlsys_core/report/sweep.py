"""The report's sweeps: each claim measured again with one declared assumption moved over its range.

`complete` takes a notebook's evaluation of a claim and measures every parameter the notebook did not sweep
itself, one at a time, the others at their defaults; the default point is the notebook's own measurement.
`over` measures a claim over some of its parameters for a notebook's own sweep.
`python -m mlsys_core.report.sweep <claim id or prefix> ...` measures claims from scratch and prints, per
claim, where each verdict holds, the change that flips it, and what the sweep cost.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from mlsys_core import claims
from mlsys_core.claims.registry import Claim, Evaluation, load_measure, show, with_sweep


def unswept(evaluation: Evaluation) -> tuple[claims.registry.Assumption, ...]:
    """The claim's parameters that `evaluation` holds no sweep of."""
    done = {s.assumption.name for s in evaluation.sweeps}
    return tuple(p for p in evaluation.claim.parameters if p.name not in done)


def complete(evaluation: Evaluation, stopped: Callable[[], bool] = lambda: False) -> Evaluation:
    """`evaluation` with every unswept parameter of its claim measured over its declared values.

    Args:
        evaluation: the notebook's evaluation; its estimate's samples are the default point.
        stopped: asked before each measurement; once true, the sweeps measured so far are returned.
    """
    todo = unswept(evaluation)
    if not todo:
        return evaluation
    measure = load_measure(evaluation.claim)
    for a in todo:
        points = []
        for value in a.values:
            if stopped():
                return evaluation
            points.append(evaluation.estimate.measured if value == a.default else measure(**{a.name: value}))
        evaluation = with_sweep(evaluation, a.name, points)
    return evaluation


def over(claim_id: str, *names: str) -> dict[str, list]:
    """{name: the claim's measurement at each declared value of that parameter, the others at their defaults}
    for the parameters `names`: what a notebook passes to `report.check(..., sweep=...)`. The default point
    is measured once and shared by every name."""
    claim = claims.get(claim_id)
    measure = load_measure(claim)
    at_default = measure()
    return {n: [at_default if v == a.default else measure(**{n: v}) for v in a.values]
            for n, a in ((n, claim.parameter(n)) for n in names)}


def matching(patterns: list[str]) -> list[Claim]:
    """The declared claims whose id equals or starts with one of `patterns`; a ValueError if one matches none."""
    found: dict[str, Claim] = {}
    for pattern in patterns:
        hits = [c for i, c in claims.REGISTRY.items() if i == pattern or i.startswith(pattern)]
        if not hits:
            raise ValueError(f"no declared claim id starts with {pattern!r}; known: {sorted(claims.REGISTRY)}")
        found.update((c.id, c) for c in hits)
    return list(found.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlsys_core.report.sweep",
                                     description="Measure claims at their defaults and over each assumption.")
    parser.add_argument("claims", nargs="+", help="claim ids or id prefixes (e.g. tictac.inference_gain, bandana.)")
    args = parser.parse_args(argv)
    try:
        chosen = matching(args.claims)
    except ValueError as e:
        parser.error(str(e))
    from mlsys_core import backend

    backend.setup()
    total = 0.0
    for claim in chosen:
        if not claim.measure:
            print(f"{claim.id}: declares no measure function", file=sys.stderr)
            continue
        start = time.perf_counter()
        head = claims.evaluate(claim, load_measure(claim)())
        middle = time.perf_counter()
        done = complete(head)
        end = time.perf_counter()
        total += end - middle
        print(f"{claim.id}: {done.verdict}, {show(claim, done.estimate)} "
              f"(default {middle - start:.1f} s, sweeps {end - middle:.1f} s)")
        for s in done.sweeps:
            print(f"  {s.holds_over}")
        print(f"  flips: {done.flip}")
    print(f"sweep time over {len(chosen)} claim(s): {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
