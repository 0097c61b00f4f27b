"""The reproduction report: notebooks measure, the claims registry decides, `make reproduce` collects.

In a notebook, `check(claim_id, measured)` (or `check(claim_id, sweep=[...])` for a claim measured over an
assumption's range) evaluates the declared claim's rule and returns a `Result`, shown as a one-row table. Under
`make reproduce` it also appends the result, with the notebook and cell, to the JSON-lines file named by
$MLSYS_REPORT_PATH. Modules: `record` (check, Result, collect), `render` (Markdown and HTML), `run` (the
command `python -m mlsys_core.report notebooks --out build`).
"""

from mlsys_core.report.record import Result, check

__all__ = ["Result", "check"]
