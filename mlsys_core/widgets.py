"""Thin ipywidgets glue: a control panel whose callback is `compute` (pure, tested) then `draw`.

ipywidgets is imported lazily, so the core runs where it is not installed (e.g. the GPU machine).
"""

from __future__ import annotations

from collections.abc import Callable

from mlsys_core import validate


def explore(compute: Callable[..., object], draw: Callable[[object], object], labels: dict[str, str] | None = None,
            **controls):
    """Controls (ipywidgets or `interact` abbreviations) -> `draw(compute(**values))`, redrawn on change.

    `compute` holds all the logic and is unit-tested; `draw` returns a matplotlib Figure or anything
    IPython can display. `labels` maps a control's name to the text a student reads beside it, with its
    unit (e.g. `{"bandwidth": "link bandwidth (Gbit/s)"}`); labels are shown in full, not cut to the
    default label width. Returns the widget box so a notebook can show it.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    labels = dict(validate.instance("labels", labels, dict, "a dict of control name -> label") if labels else {})
    for name in labels:
        validate.choice("labels key", name, tuple(controls))

    def show(**values):
        result = draw(compute(**values))
        display(result)
        if hasattr(result, "savefig"):
            plt.close(result)

    panel = widgets.interactive(show, {"manual": False}, **controls)
    for control in panel.children[:-1]:
        name = control.description
        control.description = labels.get(name, name)
        control.style = {"description_width": "initial"}
        control.layout = widgets.Layout(width="auto", min_width="24em")
    return panel
