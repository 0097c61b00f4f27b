"""The reproduction report: notebooks measure, the claims registry decides, `make reproduce` collects.

In a notebook, `check(claim_id, measured)` (or `check(claim_id, sweep=[...])` for a claim measured over
an assumption's range) evaluates the declared claim's rule and returns a `Result`, shown as a one-row
table. Under `make reproduce` it also appends the result, with the notebook and cell, to the JSON-lines
file named by $MLSYS_REPORT_PATH. `python -m mlsys_core.report notebooks --out build` runs every notebook
headless and writes `report.md`, a self-contained `report.html` and `claims.json`; it exits non-zero
when a notebook failed, or when a declared claim was checked by no cell, or by more than one.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import html
import io
import json
import os
import pathlib
import platform
import sys
import time

from mlsys_core import claims, validate
from mlsys_core.claims.registry import Evaluation, show

ENV_REPORT_PATH = "MLSYS_REPORT_PATH"
ENV_NOTEBOOK = "MLSYS_NOTEBOOK"
NOT_CHECKED = "not checked"
STATUSES = (*claims.VERDICTS, NOT_CHECKED)


def declared(claim) -> dict:
    """What the registry says of a claim, as the first fields of its JSON object."""
    return {
        "id": claim.id, "paper": claim.paper, "statement": claim.statement, "paper_value": claim.paper_value,
        "source": claim.source, "unit": claim.unit, "rule": claim.rule.text, "assumptions": list(claim.assumptions),
        "sample": claim.sample,
    }


def _interval(estimate) -> list | None:
    return list(estimate.interval) if estimate.interval else None


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
        sweep = None
        if c.sweep is not None:
            points = [{"value": p.assumption_value, "measured": p.estimate.value, "interval": _interval(p.estimate),
                       "verdict": p.verdict} for p in e.sweep]
            sweep = {"assumption": c.sweep.assumption, "unit": c.sweep.unit, "default": c.sweep.default,
                     "points": points}
        return {
            **declared(c),
            "measured": e.estimate.value, "measured_text": show(c, e.estimate), "interval": _interval(e.estimate),
            "seeds": e.estimate.seeds, "verdict": e.verdict, "sweep": sweep, "holds_over": e.holds_over,
            "details": self.details, "notebook": self.notebook, "cell": self.cell, "figure_png": self.figure_png,
        }

    def __repr__(self) -> str:
        e = self.evaluation
        return f"{e.claim.id}: {e.verdict} (measured {show(e.claim, e.estimate)}; rule {e.claim.rule.text})"

    def _repr_markdown_(self) -> str:
        return _table([self.row()], with_notes=True)


def _current_cell() -> int | None:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return None if shell is None else shell.execution_count - 1  # IPython counts the running cell already


def _png(figure) -> str:
    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=72, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def check(claim_id: str, measured=None, *, sweep=None, details: str = "", figure=None) -> Result:
    """Check a declared claim against a measurement and return the `Result`.

    `measured` is a number, or per-seed values (the claim's rule is applied to their 95% interval);
    a claim that declares a sweep takes `sweep`, one measurement per value of its assumption. `details`
    is a short text of supporting numbers; `figure` (a matplotlib Figure) goes inline in report.html.
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


# --- collecting and rendering -----------------------------------------------------------------


def collect(path: pathlib.Path) -> tuple[list[dict], list[str]]:
    """One row per declared claim, in registry order (unchecked ones marked so), and the problems found:
    claims checked by no cell or by several, and ids that the registry does not declare."""
    checked: dict[str, list[dict]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line:
                row = json.loads(line)
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
                "verdict": NOT_CHECKED, "sweep": None, "holds_over": "", "details": "", "notebook": "", "cell": None,
                "figure_png": "",
            })
    problems += [f"{claim_id} is not a declared claim" for claim_id in checked]
    return rows, problems


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(rows: list[dict], with_notes: bool = False) -> str:
    lines = ["| claim | paper reports | we measure | rule | verdict |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {_cell(r['statement'])} | {_cell(r['paper_value'])} ({_cell(r['source'])}) "
            f"| {_cell(r['measured_text'])} | {_cell(r['rule'])} | {r['verdict']} |"
        )
    if with_notes:
        lines += [f"\n{r['holds_over']}" for r in rows if r["holds_over"]]
        lines += [f"\n{r['details']}" for r in rows if r["details"]]
    return "\n".join(lines)


def summary(rows: list[dict]) -> dict[str, dict[str, int]]:
    """Verdict counts per paper (papers in registry order, every status present)."""
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        counts.setdefault(r["paper"], dict.fromkeys(STATUSES, 0))[r["verdict"]] += 1
    return counts


def machine() -> str:
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _sensitivity(r: dict) -> list[str]:
    s = r["sweep"]
    unit = f" {s['unit']}" if s["unit"] else ""
    out = [f"- **{r['id']}** ({r['statement']}), over {s['assumption']} (suite's default {s['default']:g}{unit}):"]
    for p in s["points"]:
        iv = f" [{p['interval'][0]:.3g}, {p['interval'][1]:.3g}]" if p["interval"] else ""
        out.append(f"  - {p['value']:g}{unit}: {p['measured']:.3g}{iv} {r['unit']} → {p['verdict']}")
    return out


def render_markdown(rows: list[dict], backend: str, problems: list[str], notebooks: dict[str, str]) -> str:
    """The report as Markdown: machine, summary, notebooks, problems, then each paper's claims."""
    counts = summary(rows)
    lines = ["# Reproduction report", "", f"Machine: {machine()}", "", f"Backend: {backend}", "", "## Summary", ""]
    lines += ["| paper | " + " | ".join(STATUSES) + " |", "|---" * (len(STATUSES) + 1) + "|"]
    lines += [f"| {p} | " + " | ".join(str(c[s]) for s in STATUSES) + " |" for p, c in counts.items()]
    lines += ["", "## Notebooks", ""] + [f"- `{name}`: {status}" for name, status in notebooks.items()]
    if problems:
        lines += ["", "## Problems", ""] + [f"- {p}" for p in problems]
    for paper in counts:
        mine = [r for r in rows if r["paper"] == paper]
        lines += ["", f"## {paper}", "", _table(mine)]
        for r in mine:
            where = f"{r['notebook']}, cell [{r['cell']}]" if r["notebook"] else "not checked"
            extra = "; ".join(x for x in (r["holds_over"], r["details"]) if x)
            lines.append(f"\n- `{r['id']}` ({where}). Assumes: {'; '.join(r['assumptions']) or 'nothing chosen'}."
                         + (f" {extra}" if extra else ""))
        sweeps = [r for r in mine if r["sweep"]]
        if sweeps:
            lines += ["", "### Sensitivity", ""] + [line for r in sweeps for line in _sensitivity(r)]
    return "\n".join(lines) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;line-height:1.45}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top}
th{background:#f3f3f3}.v-reproduced{background:#d9f2d9}.v-exceeds{background:#fff2c2}.v-partly{background:#ffe3c2}
.v-not{background:#f7d4d4}.v-comparable,.v-checked{background:#e6e6e6}img{max-width:36rem;display:block}
small{color:#555}td:first-child{width:46%}table.sweep td{width:auto;font-size:.85em;padding:.1rem .4rem}"""


_VCLASS = dict(zip(STATUSES, ("v-reproduced", "v-exceeds", "v-partly", "v-not", "v-comparable", "v-checked")))


def _sweep_html(r: dict) -> str:
    """A claim's sweep as a small table: assumption value, measured, verdict."""
    e, s = html.escape, r["sweep"]
    head = f"{e(s['assumption'])} ({e(s['unit'])})" if s["unit"] else e(s["assumption"])
    rows = [f"<table class='sweep'><tr><th>{head}</th><th>measured</th><th>verdict</th></tr>"]
    for p in s["points"]:
        iv = f" [{p['interval'][0]:.3g}, {p['interval'][1]:.3g}]" if p["interval"] else ""
        mark = " (default)" if p["value"] == s["default"] else ""
        rows.append(f"<tr><td>{p['value']:g}{mark}</td><td>{p['measured']:.3g}{iv}</td>"
                    f"<td class='{_VCLASS[p['verdict']]}'>{e(p['verdict'])}</td></tr>")
    return "".join(rows) + "</table>"


def render_html(rows: list[dict], backend: str, problems: list[str], notebooks: dict[str, str]) -> str:
    """The same report as one self-contained HTML page (figures inline as data URIs)."""
    e = html.escape
    counts = summary(rows)
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>Reproduction report</title><style>{_CSS}</style>",
           "</head><body><h1>Reproduction report</h1>",
           f"<p>Machine: {e(machine())}<br>Backend: {e(backend)}</p><h2>Summary</h2><table><tr><th>paper</th>"]
    out += [f"<th>{e(s)}</th>" for s in STATUSES] + ["</tr>"]
    for paper, c in counts.items():
        out.append(f"<tr><td>{e(paper)}</td>" + "".join(f"<td>{c[s]}</td>" for s in STATUSES) + "</tr>")
    out.append("</table><h2>Notebooks</h2><ul>")
    out += [f"<li><code>{e(n)}</code>: {e(s)}</li>" for n, s in notebooks.items()] + ["</ul>"]
    if problems:
        out += ["<h2>Problems</h2><ul>"] + [f"<li>{e(p)}</li>" for p in problems] + ["</ul>"]
    for paper in counts:
        out.append(f"<h2>{e(paper)}</h2><table><tr><th>claim</th><th>paper reports</th><th>we measure</th>"
                   "<th>rule</th><th>verdict</th></tr>")
        for r in (r for r in rows if r["paper"] == paper):
            notes = [r["holds_over"], r["details"], "Assumes: " + ("; ".join(r["assumptions"]) or "nothing chosen")]
            if r["notebook"]:
                notes.append(f"{r['notebook']}, cell [{r['cell']}]")
            sweep = _sweep_html(r) if r["sweep"] else ""
            png = r["figure_png"]
            figure = f"<img alt='{e(r['id'])}' src='data:image/png;base64,{png}'>" if png else ""
            out.append(
                f"<tr><td><b>{e(r['statement'])}</b><br><small>{e(r['id'])}<br>"
                + "<br>".join(e(n) for n in notes if n) + f"</small>{sweep}{figure}</td>"
                f"<td>{e(r['paper_value'])}<br><small>{e(r['source'])}</small></td>"
                f"<td>{e(r['measured_text'])}</td><td>{e(r['rule'])}</td>"
                f"<td class='{_VCLASS[r['verdict']]}'>{e(r['verdict'])}</td></tr>"
            )
        out.append("</table>")
    return "\n".join(out) + "\n</body></html>\n"


def execute(notebook: pathlib.Path, out_dir: pathlib.Path, timeout_s: int) -> str | None:
    """Run one notebook headless with nbclient; write the executed copy; return an error or None."""
    import nbclient
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=timeout_s, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}}
    )
    os.environ[ENV_NOTEBOOK] = notebook.name  # the kernel inherits it: check() names its notebook
    error = None
    try:
        client.execute()
    except Exception as e:  # noqa: BLE001 — a failing cell: name it in the report, keep going
        error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
    finally:
        os.environ.pop(ENV_NOTEBOOK, None)
    nbformat.write(nb, out_dir / notebook.name)
    return error


def write(out: pathlib.Path, claims_path: pathlib.Path, backend: str, notebooks: dict[str, str]) -> list[str]:
    """Write report.md, report.html and claims.json from the collected checks; return the problems."""
    rows, problems = collect(claims_path)
    (out / "report.md").write_text(render_markdown(rows, backend, problems, notebooks), encoding="utf-8")
    (out / "report.html").write_text(render_html(rows, backend, problems, notebooks), encoding="utf-8")
    (out / "claims.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute the notebooks and write the reproduction report.")
    parser.add_argument("notebooks", type=pathlib.Path, help="folder of .ipynb files")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("build"))
    parser.add_argument("--timeout", type=int, default=1200, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    from tqdm import tqdm

    from mlsys_core import backend

    paths = sorted(args.notebooks.glob("*.ipynb"))
    if not paths:
        parser.error(f"no notebooks in {args.notebooks}")
    args.out.mkdir(parents=True, exist_ok=True)
    claims_path = (args.out / "claims.jsonl").resolve()
    claims_path.unlink(missing_ok=True)
    os.environ[ENV_REPORT_PATH] = str(claims_path)
    statuses, failed = {}, []
    for path in (bar := tqdm(paths, unit="notebook")):
        bar.set_description(path.name)
        start = time.perf_counter()
        error = execute(path, args.out, args.timeout)
        statuses[path.name] = f"{'FAILED: ' + error if error else 'ok'} ({time.perf_counter() - start:.0f} s)"
        if error:
            failed.append(f"FAILED {path.name}: {error}")
    backend.setup()
    problems = write(args.out, claims_path, str(backend.info()), statuses)
    print(f"wrote {args.out}/report.md, report.html, claims.json: {len(claims.REGISTRY)} claims declared, "
          f"{len(failed)} failed notebook(s), {len(problems)} problem(s)")
    for line in failed + problems:
        print(line, file=sys.stderr)
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
