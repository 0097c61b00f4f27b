"""`python -m mlsys_core.report notebooks --out build`: run every notebook headless, sweep each claim's declared
assumptions, and write the report.

Notebooks run one after another through nbclient's per-cell API, from cleared outputs, in a temporary folder
beside `--out`; then each checked claim is measured again over every assumption its notebook did not sweep
(`sweep.complete`); the report (report.md, report.html, claims.json) and the executed copies move into `--out` only
when the run finishes. SIGINT or SIGTERM stops the run (see `_Stop`) and leaves `--out` as it was; the exit
status is non-zero when a notebook failed, a declared claim was checked by no cell or by several, or the run
was stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import pathlib
import shutil
import signal
import sys
import tempfile
import time
from typing import Any

from mlsys_core import claims
from mlsys_core.report import tornado
from mlsys_core.report.record import ENV_NOTEBOOK, ENV_REPORT_PATH, NOT_CHECKED, Result, collect
from mlsys_core.report.render import render_html, render_markdown
from mlsys_core.report.sweep import complete

GRACE_S = 5.0  # after SIGINT or SIGTERM, how long the running cell has to stop before its kernel is killed


class _Stop:
    """What SIGINT and SIGTERM do to a run: the first is noted (no further cell or notebook starts) and interrupts
    the running cell, whose kernel is killed if it still runs GRACE_S later; another signal kills it at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # while notebooks run
        self.km: Any = None  # the running kernel's manager
        self._tasks: set[asyncio.Task] = set()

    def handle(self, signum: int, _frame: object) -> None:
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


async def _send(km: Any, signum: int) -> None:
    """Signal the kernel's process group; it may have exited already."""
    with contextlib.suppress(RuntimeError, OSError):
        await km.signal_kernel(signum)


async def _shut_down(km: Any, kc: Any) -> None:
    """Shut the kernel down (asked to exit, killed if it does not) and free its channels and files."""
    try:
        if await km.is_alive():
            await km.shutdown_kernel()
        else:
            await km.cleanup_resources()
    finally:
        if kc is not None:
            kc.stop_channels()


async def _run_cells(client: Any, stop: _Stop) -> None:
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


def mark_failed(nb: Any, where: str, error: str) -> None:
    """Say on top of an executed copy that its run failed, where, and with what error."""
    import nbformat

    nb.cells.insert(0, nbformat.v4.new_markdown_cell(
        f"**This run failed {where}**; the cells below it did not run and show no output. `make reproduce` "
        f"wrote this copy; the committed notebook is unchanged.\n\n```text\n{error}\n```"
    ))


async def execute(notebook: pathlib.Path, out_dir: pathlib.Path, timeout_s: int, stop: _Stop) -> str | None:
    """Run one notebook headless with nbclient, from cleared outputs; return its error or None. Unless the run
    was stopped, write the executed copy, marked when it failed.

    Args:
        notebook: the .ipynb to run (its folder is the kernel's working directory).
        out_dir: where the executed copy goes.
        timeout_s: seconds allowed per cell.
        stop: the run's signal state; no cell starts once it holds a signal.
    """
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


async def _execute_all(
    paths: list[pathlib.Path], out_dir: pathlib.Path, timeout_s: int, stop: _Stop
) -> tuple[dict[str, str], list[str]]:
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


def sweep_rows(rows: list[dict], stop: _Stop) -> tuple[list[dict], list[str], float]:
    """Each checked claim's row with every declared assumption swept (`sweep.complete`); the problems (a
    measure function that failed) and the seconds the sweeps took. A stop signal ends the sweeps early."""
    from tqdm import tqdm

    out, problems, start = [], [], time.perf_counter()
    for row in tqdm(rows, unit="claim", desc="sweeps"):
        if row["verdict"] == NOT_CHECKED or stop.signum is not None:
            out.append(row)
            continue
        result = Result.from_row(row)
        try:
            evaluation = complete(result.evaluation, lambda: stop.signum is not None)
        except Exception as e:  # noqa: BLE001 — a failing measure: name it in the report, keep the notebook's row
            problems.append(f"{row['id']}: its sweep failed: {type(e).__name__}: {e}")
            evaluation = result.evaluation
        out.append(dataclasses.replace(result, evaluation=evaluation).row())
    return out, problems, time.perf_counter() - start


def write(out: pathlib.Path, rows: list[dict], backend: str, problems: list[str], notebooks: dict[str, str]) -> None:
    """Write report.md, report.html, claims.json and the sensitivity figures into `out`; the arguments are as
    for `render.render_markdown`."""
    figures = {paper: tornado.png(rows, paper) for paper in dict.fromkeys(r["paper"] for r in rows)}
    (out / "report.md").write_text(render_markdown(rows, backend, problems, notebooks), encoding="utf-8")
    (out / "report.html").write_text(render_html(rows, backend, problems, notebooks, figures), encoding="utf-8")
    (out / "claims.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    for paper, picture in figures.items():
        if picture:
            (out / tornado.slug(paper)).write_bytes(picture)


def _finish(staging: pathlib.Path, statuses: dict[str, str], stop: _Stop) -> list[str]:
    """Sweep the claims and write the report of a finished run into `staging`; return its problems."""
    from mlsys_core import backend

    backend.setup()
    rows, problems = collect(staging / "claims.jsonl")
    rows, failed, seconds = sweep_rows(rows, stop)
    statuses = {**statuses, "assumption sweeps": f"{'FAILED: ' if failed else 'ok'} ({seconds:.0f} s)"}
    write(staging, rows, str(backend.info()), problems + failed, statuses)
    return problems + failed


def _interrupted(signum: int, done: int, total: int, out: pathlib.Path) -> int:
    """Say that the run stopped and what `out` holds; return the shell's exit status for the signal."""
    earlier = f"{out / 'report.md'} is from an earlier run" if (out / "report.md").exists() else "no report written"
    print(f"interrupted by {signal.Signals(signum).name} after {done} of {total} notebooks; {earlier}",
          file=sys.stderr)
    return 128 + signum


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlsys_core.report",
                                     description="Execute the notebooks and write the reproduction report.")
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
            problems = _finish(staging, statuses, stop)
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
