"""Thin ipywidgets glue: a control panel whose callback is `compute` (pure, tested) then `draw`.

ipywidgets is imported lazily, so the core runs where it is not installed (e.g. the GPU machine).

Before a kernel runs, a saved widget cannot be shown live: JupyterLab renders the widget state that nbclient
stores in the notebook only for a *trusted* notebook (a freshly cloned one is not), and GitHub, the course site
and Colab (before its first run) do not render it either. So the panel's display bundle also carries a static
image of its first draw (the default setting). A frontend that can show the widget picks the widget view and
shows the figure once, inside the panel; one that cannot falls back to that image instead of the widget's
`interactive(children=...` text.
"""

from __future__ import annotations

import base64
import inspect
from collections.abc import Callable

from mlsys_core import validate

STATIC_NOTE = "Static view of the default setting; run the notebook to move the controls."


def _bundle(result, caption: str | None = None) -> dict[str, object]:
    """A display bundle for `result`: a matplotlib figure as inline PNG (as the inline backend draws it,
    with `caption` in small italics below it if given), anything else through IPython's display formatter.
    Binary values are base64 text, as in a notebook."""
    if hasattr(result, "savefig"):
        from IPython.core.pylabtools import print_figure

        note = result.text(0.01, 0, caption, fontsize=8, style="italic", va="top") if caption else None
        try:
            return {"image/png": print_figure(result, "png", base64=True), "text/plain": repr(result)}
        finally:
            if note is not None:
                note.remove()
    from IPython.core.formatters import DisplayFormatter
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance() if InteractiveShell.initialized() else None
    data, _ = (shell.display_formatter if shell else DisplayFormatter()).format(result)
    return {k: base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v for k, v in data.items()}


def _start_values(compute: Callable[..., object], controls: dict) -> inspect.Signature:
    """A signature of the controls' names whose defaults are `compute`'s: ipywidgets starts each control there."""
    try:
        own = inspect.signature(compute).parameters
    except (TypeError, ValueError):  # a callable without an inspectable signature: no defaults
        own = {}
    empty = inspect.Parameter.empty
    return inspect.Signature([inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                                default=own[name].default if name in own else empty)
                              for name in controls])


def explore(compute: Callable[..., object], draw: Callable[[object], object], labels: dict[str, str] | None = None,
            **controls):
    """Controls (ipywidgets or `interact` abbreviations) -> `draw(compute(**values))`, redrawn on change.

    `compute` holds all the logic and is unit-tested; `draw` returns a matplotlib Figure or anything
    IPython can display. A control starts at `compute`'s default for it where that is one of its values
    (else at ipywidgets' choice: a slider's middle, a list's first item). `labels` maps a control's name
    to the text a student reads beside it, with its unit (e.g. `{"bandwidth": "link bandwidth (Gbit/s)"}`);
    labels are shown in full, not cut to the default label width. Returns the widget box so a notebook can
    show it; its display bundle holds the widget view and, as the fallback where widgets cannot render,
    the first draw as a static image.

    Args:
        compute: the explorer's computation, `experiments.explore_<what>` (all logic, tested).
        draw: its drawing, `plots.explore_<what>`.
        labels: control name -> the label a student reads, with its unit.
        controls: one control per argument of `compute` to vary.
    """
    import ipywidgets as widgets
    from IPython.display import display

    labels = dict(validate.instance("labels", labels, dict, "a dict of control name -> label") if labels else {})
    for name in labels:
        validate.choice("labels key", name, tuple(controls))
    static: dict[str, object] = {}

    def show(**values):
        result = draw(compute(**values))
        if not static:  # the first draw is the default setting
            static.update({k: v for k, v in _bundle(result, STATIC_NOTE).items() if k != "text/plain"})
        display(_bundle(result), raw=True)
        if hasattr(result, "savefig"):
            import matplotlib.pyplot as plt

            plt.close(result)

    class Panel(widgets.interactive):
        def _repr_mimebundle_(self, **kwargs):
            data = super()._repr_mimebundle_(**kwargs)
            return {**static, **data, "text/plain": STATIC_NOTE} if static else data

    show.__signature__ = _start_values(compute, controls)
    panel = Panel(show, {"manual": False}, **controls)
    for control in panel.children[:-1]:
        name = control.description
        control.description = labels.get(name, name)
        control.style = {"description_width": "initial"}
        control.layout = widgets.Layout(width="auto", min_width="24em")
    return panel
