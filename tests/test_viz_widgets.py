import matplotlib

matplotlib.use("Agg")

from mlsys_core import viz, widgets


def test_figure_has_suite_dpi_and_panels():
    fig, axes = viz.figure(ncols=2, width=4, height=3)
    assert fig.dpi == viz.DPI
    assert len(axes) == 2
    assert tuple(fig.get_size_inches()) == (8, 3)


def test_bar_labels_writes_values():
    fig, ax = viz.figure()
    ax.bar(["a", "b"], [1.234, 5.0])
    viz.bar_labels(ax, "{:.1f}")
    assert sorted(t.get_text() for t in ax.texts) == ["1.2", "5.0"]


def test_explore_wires_compute_then_draw():
    calls = []

    def compute(n, scale):
        calls.append((n, scale))
        return [i * scale for i in range(n)]

    def draw(values):
        fig, ax = viz.figure()
        ax.plot(values)
        return fig

    panel = widgets.explore(compute, draw, n=(1, 10), scale=[1, 2])
    labels = {w.description for w in panel.children[:-1]}
    assert labels == {"n", "scale"}
    panel.children[0].value = 7
    assert calls[-1][0] == 7


def test_explore_starts_each_control_at_computes_default_where_it_is_one_of_its_values():
    def compute(n=7, scale=2.0, mode="fast", width=512, steps=3):
        return n

    panel = widgets.explore(compute, lambda v: v, n=(1, 10), scale=(0.5, 4.0, 0.5), mode=["slow", "fast"],
                            width=[128, 256], steps=(1, 9))
    values = {w.description: w.value for w in panel.children[:-1]}
    assert values == {"n": 7, "scale": 2.0, "mode": "fast", "width": 128, "steps": 3}  # 512 is no option
    no_defaults = widgets.explore(lambda n, mode: n, lambda v: v, n=(1, 9), mode=["slow", "fast"])
    assert [w.value for w in no_defaults.children[:-1]] == [5, "slow"]  # ipywidgets' own start


def test_explore_labels_controls_in_full_and_refuses_unknown_names():
    import pytest

    panel = widgets.explore(lambda n: n, lambda v: v, labels={"n": "clients per round (thousands)"}, n=(1, 10))
    slider = panel.children[0]
    assert slider.description == "clients per round (thousands)"
    assert slider.style.description_width == "initial"
    with pytest.raises(ValueError, match="labels key"):
        widgets.explore(lambda n: n, lambda v: v, labels={"m": "typo"}, n=(1, 10))


def test_explore_bundle_carries_a_static_image_of_the_default_setting_beside_the_widget_view():
    """Where widgets cannot render (untrusted Lab, GitHub, the site), the first draw shows instead."""
    import base64

    import matplotlib.pyplot as plt

    drawn = []

    def draw(n):
        fig, ax = viz.figure()
        ax.plot(range(n))
        drawn.append(n)
        return fig

    open_before = set(plt.get_fignums())
    panel = widgets.explore(lambda n: n, draw, labels={"n": "points"}, n=(2, 10))
    default = panel._repr_mimebundle_()
    assert drawn == [6] and "application/vnd.jupyter.widget-view+json" in default
    png = base64.b64decode(default["image/png"])
    assert png.startswith(b"\x89PNG") and default["text/plain"] == widgets.STATIC_NOTE
    panel.children[0].value = 9
    assert drawn == [6, 9]
    assert panel._repr_mimebundle_()["image/png"] == default["image/png"], "the static view stays the default"
    assert set(plt.get_fignums()) == open_before, "every drawn figure is closed"


def test_explore_static_view_of_a_non_figure_uses_the_display_formatter():
    panel = widgets.explore(lambda n: n, lambda v: f"value {v}", labels={"n": "count"}, n=(1, 3))
    bundle = panel._repr_mimebundle_()
    assert "image/png" not in bundle and "application/vnd.jupyter.widget-view+json" in bundle


def test_a_figure_is_not_kept_open_by_pyplot():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig, axes = viz.figure(ncols=2)
    assert plt.get_fignums() == before and len(axes) == 2 and fig.dpi == viz.DPI
    assert fig.get_size_inches().tolist() == [10.0, 3.4]
