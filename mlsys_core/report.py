"""The reproduction report: notebooks measure, the claims registry decides, `make reproduce` collects.

In a notebook, `check(claim_id, measured)` (or `check(claim_id, sweep=[...])` for a claim measured over
an assumption's range) evaluates the declared claim's rule and returns a `Result`, shown as a one-row
table. Under `make reproduce` it also appends the result, with the notebook and cell, to the JSON-lines
file named by $MLSYS_REPORT_PATH. `python -m mlsys_core.report notebooks --out build` runs every notebook
headless and writes `report.md`, a self-contained `report.html` and `claims.json`; it exits non-zero
when a notebook failed, or when a declared claim was checked by no cell, or by more than one. The run writes
into a temporary folder beside `--out` and moves its files in when it finishes; SIGINT or SIGTERM stops it
(see `_Stop`) and leaves `--out` as it was.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import html
import io
import json
import os
import pathlib
import platform
import shutil
import signal
import sys
import tempfile
import time

from mlsys_core import claims, validate
from mlsys_core.claims.registry import Evaluation, show

ENV_REPORT_PATH = "MLSYS_REPORT_PATH"
ENV_NOTEBOOK = "MLSYS_NOTEBOOK"
NOT_CHECKED = "not checked"
STATUSES = (*claims.VERDICTS, NOT_CHECKED)
FIELDS = (
    "id", "paper", "statement", "paper_value", "source", "unit", "rule", "assumptions", "sample", "measured",
    "measured_text", "interval", "seeds", "verdict", "sweep", "holds_over", "details", "notebook", "cell", "figure_png",
)  # the keys of a row of claims.jsonl and claims.json
GRACE_S = 5.0  # after SIGINT or SIGTERM, how long the running cell has to stop before its kernel is killed


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


class _Stop:
    """What SIGINT and SIGTERM do to a run: the first is noted (no further cell or notebook starts) and interrupts
    the running cell, whose kernel is killed if it still runs GRACE_S later; another signal kills it at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # while notebooks run
        self.km = None  # the running kernel's manager
        self._tasks: set[asyncio.Task] = set()

    def handle(self, signum: int, _frame) -> None:
        """The signal handler: note the signal and leave the kernel to the event loop."""
        first = self.signum is None
        self.signum = self.signum or signum
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._stop_kernel, first)

    def _stop_kernel(self, first: bool) -> None:
        if first:
            self._signal_kernel(signal.SIGINT)
            asyncio.get_running_loop().call_later(GRACE_S, self._signal_kernel, signal.SIGKILL)
        else:
            self._signal_kernel(signal.SIGKILL)

    def _signal_kernel(self, signum: int) -> None:
        if self.km is not None and self.km.has_kernel:
            task = asyncio.ensure_future(_send(self.km, signum))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


async def _send(km, signum: int) -> None:
    """Signal the kernel's process group; it may have exited already."""
    with contextlib.suppress(RuntimeError, OSError):
        await km.signal_kernel(signum)


async def _shut_down(km, kc) -> None:
    """Shut the kernel down (asked to exit, killed if it does not) and free its channels and files."""
    try:
        if await km.is_alive():
            await km.shutdown_kernel()
        else:
            await km.cleanup_resources()
    finally:
        if kc is not None:
            kc.stop_channels()


async def _run_cells(client, stop: _Stop) -> None:
    """Start the kernel and run the cells in order; none starts after a stop signal."""
    await client.async_start_new_kernel()
    await client.async_start_new_kernel_client()
    for index, cell in enumerate(client.nb.cells):
        if stop.signum is not None:
            return
        await client.async_execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
    client.set_widgets_metadata()


def _error_text(e: Exception) -> str:
    from nbclient.exceptions import CellExecutionError

    if isinstance(e, CellExecutionError):
        return f"{e.ename}: {e.evalue}"
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[-1] if text else ''}"


def mark_failed(nb, where: str, error: str) -> None:
    """Say on top of an executed copy that its run failed, where, and with what error."""
    import nbformat

    nb.cells.insert(0, nbformat.v4.new_markdown_cell(
        f"**This run failed {where}**; the cells below it did not run and show no output. `make reproduce` "
        f"wrote this copy; the committed notebook is unchanged.\n\n```text\n{error}\n```"
    ))


async def execute(notebook: pathlib.Path, out_dir: pathlib.Path, timeout_s: int, stop: _Stop) -> str | None:
    """Run one notebook headless with nbclient, from cleared outputs; return its error or None. Unless the run
    was stopped, write the executed copy, marked when it failed."""
    import nbclient
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = nbclient.NotebookClient(
        nb, timeout=timeout_s, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}}
    )
    os.environ[ENV_NOTEBOOK] = notebook.name  # the kernel inherits it: check() names its notebook
    stop.km = client.create_kernel_manager()
    error = None
    try:
        await _run_cells(client, stop)
    except Exception as e:  # noqa: BLE001 — a failing cell: name it in the report, keep going
        count = client.code_cells_executed
        where, error = f"in cell [{count}]" if count else "before its first cell", _error_text(e)
    finally:
        os.environ.pop(ENV_NOTEBOOK, None)
        await _shut_down(stop.km, client.kc)
        stop.km = None
    if stop.signum is not None:
        return None
    if error:
        mark_failed(nb, where, error)
    nbformat.write(nb, out_dir / notebook.name)
    return error and f"{error}, {where}"


async def _execute_all(paths: list[pathlib.Path], out_dir: pathlib.Path, timeout_s: int, stop: _Stop):
    """Execute the notebooks in order until a stop signal; return the finished ones' statuses and failures."""
    from tqdm import tqdm

    stop.loop = asyncio.get_running_loop()
    statuses, failed = {}, []
    try:
        with tqdm(paths, unit="notebook") as bar:
            for path in bar:
                if stop.signum is not None:
                    break
                bar.set_description(path.name)
                start = time.perf_counter()
                error = await execute(path, out_dir, timeout_s, stop)
                if stop.signum is not None:
                    break
                statuses[path.name] = f"{'FAILED: ' + error if error else 'ok'} ({time.perf_counter() - start:.0f} s)"
                if error:
                    failed.append(f"FAILED {path.name}: {error}")
    finally:
        stop.loop = None
    return statuses, failed


def write(out: pathlib.Path, claims_path: pathlib.Path, backend: str, notebooks: dict[str, str]) -> list[str]:
    """Write report.md, report.html and claims.json from the collected checks; return the problems."""
    rows, problems = collect(claims_path)
    (out / "report.md").write_text(render_markdown(rows, backend, problems, notebooks), encoding="utf-8")
    (out / "report.html").write_text(render_html(rows, backend, problems, notebooks), encoding="utf-8")
    (out / "claims.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return problems


def _finish(staging: pathlib.Path, statuses: dict[str, str]) -> list[str]:
    """Write the report of a finished run into `staging`; return its problems."""
    from mlsys_core import backend

    backend.setup()
    return write(staging, staging / "claims.jsonl", str(backend.info()), statuses)


def _interrupted(signum: int, done: int, total: int, out: pathlib.Path) -> int:
    """Say that the run stopped and what `out` holds; return the shell's exit status for the signal."""
    earlier = f"{out / 'report.md'} is from an earlier run" if (out / "report.md").exists() else "no report written"
    print(f"interrupted by {signal.Signals(signum).name} after {done} of {total} notebooks; {earlier}",
          file=sys.stderr)
    return 128 + signum


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute the notebooks and write the reproduction report.")
    parser.add_argument("notebooks", type=pathlib.Path, help="folder of .ipynb files")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("build"))
    parser.add_argument("--timeout", type=int, default=1200, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    paths = sorted(args.notebooks.glob("*.ipynb"))
    if not paths:
        parser.error(f"no notebooks in {args.notebooks}")
    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}-run-", dir=out.parent))
    os.environ[ENV_REPORT_PATH] = str(staging / "claims.jsonl")
    stop = _Stop()
    previous = {s: signal.signal(s, stop.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        statuses, failed = asyncio.run(_execute_all(paths, staging, args.timeout, stop))
        if stop.signum is None:
            problems = _finish(staging, statuses)
        if stop.signum is not None:  # also a signal that came while the report was written
            return _interrupted(stop.signum, len(statuses), len(paths), args.out)
        out.mkdir(exist_ok=True)
        for path in staging.iterdir():
            shutil.move(path, out / path.name)
    finally:
        os.environ.pop(ENV_REPORT_PATH, None)
        shutil.rmtree(staging, ignore_errors=True)
        for s, handler in previous.items():
            signal.signal(s, handler)
    print(f"wrote {args.out}/report.md, report.html, claims.json: {len(claims.REGISTRY)} claims declared, "
          f"{len(failed)} failed notebook(s), {len(problems)} problem(s)")
    for line in failed + problems:
        print(line, file=sys.stderr)
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
