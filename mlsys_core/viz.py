"""Shared plotting glue: one figure style for every notebook. Plot functions take results, return a Figure."""

from __future__ import annotations

DPI = 80  # modest, so that executed notebooks stay small


def figure(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.4, **kwargs):
    """A matplotlib `(Figure, axes)` pair sized per panel, at the suite's dpi, with a tight layout.

    The figure is not registered with pyplot: nothing keeps it alive once its caller lets go (no pile of
    open figures), and a notebook shows it once, where the cell returns or `display`s it.

    Args:
        ncols, nrows: the grid of panels.
        width, height: one panel's size (inches).
        kwargs: passed on to `Figure.subplots` (sharex, sharey, gridspec_kw, ...).
    """
    import matplotlib.pyplot  # noqa: F401 -- in a notebook, this sets up showing a returned Figure inline
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), dpi=DPI, layout="constrained")
    return fig, fig.subplots(nrows, ncols, **kwargs)


def bar_labels(ax, fmt: str = "{:.2f}") -> None:
    """Write each bar's value above it."""
    for container in ax.containers:
        ax.bar_label(container, fmt=fmt, fontsize=8)
