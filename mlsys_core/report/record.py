"""The notebook side of the report: `check` a declared claim against a measurement, and `collect` the checks
a run recorded (one JSON line per check in the file named by $MLSYS_REPORT_PATH)."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

from mlsys_core import claims, validate
from mlsys_core.claims.registry import Assumption, Estimate, Evaluation, Sensitivity, show

ENV_REPORT_PATH = "MLSYS_REPORT_PATH"
ENV_NOTEBOOK = "MLSYS_NOTEBOOK"
NOT_CHECKED = "not checked"
STATUSES = (*claims.VERDICTS, NOT_CHECKED)
FIELDS = (
    "id", "paper", "kind", "statement", "paper_value", "source", "unit", "rule", "assumptions", "parameters", "sample",
    "interval_method", "measured", "measured_text", "interval", "seeds", "values", "verdict", "mean_verdict",
    "sweeps", "holds_over", "depends_on", "flip", "details", "notebook", "cell", "figure_png",
)  # the keys of a row of claims.jsonl and claims.json


def _parameter(a: Assumption) -> dict:
    return {"name": a.name, "label": a.label, "unit": a.unit, "default": a.default, "values": list(a.values),
            "source": a.source}


def declared(claim: claims.Claim) -> dict:
    """What the registry says of a claim, as the first fields of its JSON object."""
    return {
        "id": claim.id, "paper": claim.paper, "kind": claim.kind, "statement": claim.statement,
        "paper_value": claim.paper_value, "source": claim.source, "unit": claim.unit, "rule": claim.rule.text,
        "assumptions": list(claim.assumptions), "parameters": [_parameter(a) for a in claim.parameters],
        "sample": claim.sample, "interval_method": claim.interval,
    }


def _interval(estimate: Estimate) -> list | None:
    return list(estimate.interval) if estimate.interval else None


def _sweep(s: Sensitivity) -> dict:
    points = [{"value": p.assumption_value, "measured": p.estimate.value, "interval": _interval(p.estimate),
               "values": p.estimate.measured, "verdict": p.verdict} for p in s.points]
    return {**_parameter(s.assumption), "by": s.by, "holds_over": s.holds_over, "points": points}


@dataclasses.dataclass(frozen=True)
class Result:
    """One claim checked: the claim's declaration, the measurement, its verdict and where it was made."""

    evaluation: Evaluation
    details: str = ""
    notebook: str = ""
    cell: int | None = None
    figure_png: str = ""  # base64, when the check came with a figure

    def row(self) -> dict:
        """The result as one JSON object (the shape of build/claims.json)."""
        e, c = self.evaluation, self.evaluation.claim
        return {
            **declared(c),
            "measured": e.estimate.value, "measured_text": show(c, e.estimate), "interval": _interval(e.estimate),
            "seeds": e.estimate.seeds, "values": e.estimate.measured, "verdict": e.verdict,
            "mean_verdict": e.mean_verdict, "sweeps": [_sweep(s) for s in e.sweeps], "holds_over": e.holds_over,
            "depends_on": list(e.depends_on), "flip": e.flip, "details": self.details, "notebook": self.notebook,
            "cell": self.cell, "figure_png": self.figure_png,
        }

    @classmethod
    def from_row(cls, row: dict) -> Result:
        """The result a row of claims.jsonl was written from (its claim as declared now)."""
        claim = claims.get(row["id"])
        by_notebook = {s["name"]: [p["values"] for p in s["points"]] for s in row["sweeps"] if s["by"] == "notebook"}
        evaluation = claims.evaluate(claim, row["values"], by_notebook or None)
        return cls(evaluation, row["details"], row["notebook"], row["cell"], row["figure_png"])

    def __repr__(self) -> str:
        e = self.evaluation
        return f"{e.claim.id}: {e.verdict} (measured {show(e.claim, e.estimate)}; rule {e.claim.rule.text})"

    def _repr_markdown_(self) -> str:
        return table([self.row()], with_notes=True)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def verdict_text(row: dict) -> str:
    """The verdict as the report prints it: an inconclusive one names the band of its mean."""
    if row["verdict"] == claims.rules.INCONCLUSIVE:
        return f"{row['verdict']} (mean: {row['mean_verdict']})"
    return row["verdict"]


def table(rows: list[dict], with_notes: bool = False) -> str:
    """Claims as a Markdown table (statement, paper, measured, rule, verdict), with their notes if asked."""
    lines = ["| claim | paper reports | we measure | rule | verdict |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {_cell(r['statement'])} | {_cell(r['paper_value'])} ({_cell(r['source'])}) "
            f"| {_cell(r['measured_text'])} | {_cell(r['rule'])} | {verdict_text(r)} |"
        )
    if with_notes:
        lines += [f"\n{r['holds_over']}" for r in rows if r["holds_over"]]
        lines += [f"\n{r['details']}" for r in rows if r["details"]]
    return "\n".join(lines)


def _current_cell() -> int | None:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return None if shell is None else shell.execution_count - 1  # IPython counts the running cell already


def _png(figure: Any) -> str:
    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=72, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def check(claim_id: str, measured: Any = None, *, sweep: Mapping[str, Sequence] | None = None, details: str = "",
          figure: Any = None) -> Result:
    """Check a declared claim against a measurement and return the `Result`.

    Args:
        claim_id: a claim declared in `mlsys_core.claims`.
        measured: a number, or per-seed values (the claim's rule is applied to their 95% interval).
        sweep: {parameter name: one measurement per value of that declared parameter, in order} for the
            assumptions the notebook itself measures over their range; without `measured`, the headline is
            the first one's default point.
        details: a short text of supporting numbers, shown beside the verdict.
        figure: a matplotlib Figure, inline in report.html.
    """
    claim = claims.get(claim_id)
    validate.string("details", details, empty=True)
    evaluation = claims.evaluate(claim, measured, sweep)
    result = Result(
        evaluation,
        details,
        os.environ.get(ENV_NOTEBOOK, ""),
        _current_cell(),
        "" if figure is None else _png(figure),
    )
    path = os.environ.get(ENV_REPORT_PATH)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(result.row()) + "\n")
    return result


# --- collecting ------------------------------------------------------------------------------


def _parse_row(path: pathlib.Path, number: int, line: str) -> dict:
    """One line of a claims.jsonl file as a row; a damaged line raises `ValueError` naming the file and line."""
    where = f"{path}, line {number}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: not JSON ({e.msg} at column {e.colno}): {line[:80]!r}") from None
    if not isinstance(row, dict):
        raise ValueError(f"{where}: must be a JSON object from report.check, got {line[:80]!r}")
    missing = [key for key in FIELDS if key not in row]
    if missing:
        raise ValueError(f"{where}: lacks {', '.join(missing)} (a row from report.check has the keys "
                         f"{', '.join(FIELDS)})")
    if not isinstance(row["id"], str):
        raise ValueError(f"{where}: id must be a claim id (a string), got {row['id']!r}")
    if row["verdict"] not in claims.VERDICTS:
        raise ValueError(f"{where}: verdict must be one of {claims.VERDICTS}, got {row['verdict']!r}")
    return row


def collect(path: pathlib.Path) -> tuple[list[dict], list[str]]:
    """One row per declared claim, in registry order (unchecked ones marked so), and the problems found:
    claims checked by no cell or by several, and ids that the registry does not declare. A damaged line of
    `path` raises `ValueError`."""
    checked: dict[str, list[dict]] = {}
    if path.exists():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line:
                row = _parse_row(path, number, line)
                checked.setdefault(row["id"], []).append(row)
    rows, problems = [], []
    for claim_id, claim in claims.REGISTRY.items():
        found = checked.pop(claim_id, [])
        if len(found) > 1:
            places = ", ".join(f"{r['notebook']} cell {r['cell']}" for r in found)
            problems.append(f"{claim_id} was checked {len(found)} times ({places})")
        if found:
            rows.append(found[-1])
        else:
            problems.append(f"{claim_id} was not checked by any notebook")
            rows.append({
                **declared(claim), "measured": None, "measured_text": "", "interval": None, "seeds": 0,
                "values": None, "verdict": NOT_CHECKED, "mean_verdict": NOT_CHECKED, "sweeps": [], "holds_over": "",
                "depends_on": [], "flip": "", "details": "", "notebook": "", "cell": None, "figure_png": "",
            })
    problems += [f"{claim_id} is not a declared claim" for claim_id in checked]
    return rows, problems
