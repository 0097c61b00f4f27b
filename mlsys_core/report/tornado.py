"""A paper's sensitivity as a tornado figure: how far each declared assumption moves each claim's measurement.

Claims measure different quantities, so each swing is put on one scale: the change of the measured mean over
an assumption's range, divided by the distance from the headline to the rule's next band edge in the direction
of the change. A bar that reaches ±1 takes the mean across an edge somewhere in its range; a short bar means the
verdict is far from every edge whatever the assumption. Red bars change the verdict (an interval that comes to
straddle an edge does so before its mean crosses it).
"""

from __future__ import annotations

import dataclasses
import io
import re
from typing import TYPE_CHECKING

from mlsys_core import claims

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CLIP = 3.0  # swings beyond this many edge distances are drawn at the border


@dataclasses.dataclass(frozen=True)
class Swing:
    """One bar: a claim's measurement over one assumption's range, in edge distances from its headline."""

    claim_id: str
    assumption: str
    low: float
    high: float
    flips: bool


def swings(row: dict) -> list[Swing]:
    """The bars of one claim's row (none for a qualitative rule, an unchecked claim or a claim without sweeps)."""
    rule = claims.get(row["id"]).rule
    if not isinstance(rule, claims.rules.Bands) or row["measured"] is None:
        return []
    head = row["measured"]
    above = [e - head for e in rule.edges if e > head]
    below = [head - e for e in rule.edges if e < head]
    up = min(above or below or [1.0])  # no edge on one side: scale by the other side's
    down = min(below or above or [1.0])
    out = []
    for s in row["sweeps"]:
        moved = [(p["measured"] - head) / (up if p["measured"] > head else down) for p in s["points"]]
        flips = any(p["verdict"] != row["verdict"] for p in s["points"])
        out.append(Swing(row["id"], s["label"], min(0.0, *moved), max(0.0, *moved), flips))
    return out


def figure(rows: list[dict], paper: str) -> Figure | None:
    """The tornado figure of one paper's claims, widest swing on top; None when nothing was swept."""
    bars = sorted((b for r in rows if r["paper"] == paper for b in swings(r)),
                  key=lambda b: max(-b.low, b.high))
    if not bars:
        return None
    from mlsys_core import viz

    fig, ax = viz.figure(width=8.5, height=0.9 + 0.28 * len(bars))
    for i, b in enumerate(bars):
        lo, hi = max(b.low, -CLIP), min(b.high, CLIP)
        ax.barh(i, hi - lo, left=lo, color="#c0392b" if b.flips else "#7f8c8d", height=0.7)
    ax.set_yticks(range(len(bars)), [f"{b.claim_id.split('.', 1)[1]}: {b.assumption}"[:70] for b in bars],
                  fontsize=7)
    for x in (-1.0, 1.0):
        ax.axvline(x, color="k", lw=0.8, ls="--")
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_xlim(-CLIP - 0.1, CLIP + 0.1)
    ax.set_xlabel("change of the measured mean over the assumption's range, in distances to the next band edge\n"
                  "(±1: the mean reaches an edge; red: the verdict changes somewhere in the range)", fontsize=8)
    ax.set_title(f"{paper}: what each assumption does to each verdict", fontsize=10)
    return fig


def png(rows: list[dict], paper: str) -> bytes | None:
    """`figure` as PNG bytes, or None."""
    fig = figure(rows, paper)
    if fig is None:
        return None
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return buf.getvalue()


def slug(paper: str) -> str:
    """A file name for a paper's figure, e.g. "sensitivity_paper_4_tictac.png"."""
    return "sensitivity_" + re.sub(r"[^a-z0-9]+", "_", paper.lower()).strip("_") + ".png"
