"""Sphinx configuration of the course site (`make site`): the executed notebooks as committed, not re-run.

`docs/stage.py` copies this folder, the notebooks and the reproduction report into build/site-src, which is
the source folder; `sphinx-build -c docs build/site-src build/site` then builds the book.
"""

project = "mlsys-notebooks"
author = "the mlsys-notebooks authors"
extensions = ["myst_nb"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "jupyter_execute"]

# The notebooks' committed outputs are the site's content: never execute them here.
nb_execution_mode = "off"
# Widgets cannot run on a static page; widgets.explore puts a static PNG of the default setting in the same
# output bundle, so prefer it (and plain images/HTML) over the widget view, which would need a kernel and
# the widget JavaScript from a CDN.
nb_mime_priority_overrides = [
    ("html", "application/vnd.jupyter.widget-view+json", None),
]
myst_enable_extensions = ["dollarmath", "colon_fence"]
suppress_warnings = ["mystnb.unknown_mime_type"]

html_theme = "sphinx_book_theme"
html_title = "ML systems notebooks"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "home_page_in_toc": True,
}
html_static_path = ["_static"]  # relative to this folder (the -c folder)
html_css_files = ["wide.css"]
# No widget JavaScript from a CDN (the static PNG above stands in for each widget; the site works offline).
nb_ipywidgets_js: dict[str, dict[str, str]] = {}
