"""Thin ipywidgets glue: a control panel whose callback is `compute` (pure, tested) then `draw`.

ipywidgets is imported lazily, so the core runs where it is not installed (e.g. the GPU machine).
"""

from __future__ import annotations

from collections.abc import Callable


def explore(compute: Callable[..., object], draw: Callable[[object], object], **controls):
    """Controls (ipywidgets or `interact` abbreviations) -> `draw(compute(**values))`, redrawn on change.

    `compute` holds all the logic and is unit-tested; `draw` returns a matplotlib Figure or anything
    IPython can display. Returns the widget box so a notebook can show it.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    def show(**values):
        result = draw(compute(**values))
        display(result)
        if hasattr(result, "savefig"):
            plt.close(result)

    panel = widgets.interactive(show, {"manual": False}, **controls)
    return panel
