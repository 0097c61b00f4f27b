"""Every notebook in a real browser: JupyterLab on loopback, Debian's Chromium driven by Playwright.

    python tests/browser/lab_check.py [--open-only] [--jobs N] [notebooks/01_tpu_concurrency.ipynb ...]

By default all notebooks, checked by one worker per CPU at a time, each worker with its own server and browser.

For each notebook (a copy under build/browser/, so the committed files are never written):
  1. open it in a fresh workspace; it must not be marked modified once its kernel is idle, and no widget
     cell may show the `interactive(children=...` text or "Error displaying widget" (screenshot "before");
  2. run all cells; every non-empty code cell must run, and no output may be an error or go to stderr;
  3. every widget panel must render; move one control of each and check that the figure below it changes
     and the kernel stays alive (screenshot "after").
Screenshots go to build/screenshots/<notebook>-before.png and -after.png, timings to
build/screenshots/timings.json. The servers and every kernel they started are stopped by their PID.
Exit status 1 (with one line per problem) if anything failed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pathlib
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from queue import Empty

import psutil
from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")  # Debian's; Playwright's own download is not used
RUN_TIMEOUT_S = 900  # one notebook, run all (the shared 2-core machine is slow)
REDRAW_TIMEOUT_S = 240  # one widget redraw
LAB_SETTINGS = {  # no news pop-up, no autosave, every cell attached to the DOM (so it can be inspected)
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
COPIED: dict[str, str] = {}  # each notebook's text as copied for the check
# A djb2 hash of an element's HTML, so a redraw can be detected without shipping the image back.
SIGNATURE_JS = """el => { const s = el.innerHTML; let h = 5381;
  for (let i = 0; i < s.length; i++) h = ((h << 5) + h + s.charCodeAt(i)) | 0;
  return s.length + ':' + h + ':' + el.querySelectorAll('img, svg, canvas').length; }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server on 127.0.0.1 with a random token; `stop()` ends it and its kernels by PID."""

    def __init__(self, root: pathlib.Path, state: pathlib.Path):
        self.root, self.port, self.token = root, free_port(), secrets.token_hex(16)
        settings = state / "settings"
        for name, values in LAB_SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(values))
        env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),
               "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
               "JUPYTER_RUNTIME_DIR": str(state / "runtime"), "PYTHONUNBUFFERED": "1"}
        command = [str(pathlib.Path(sys.executable).parent / "jupyter"), "lab", "--no-browser",
                   "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                   f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}"]
        if os.geteuid() == 0:
            command.append("--allow-root")
        self.log = (state / "lab.log").open("w")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.kernel_pids: set[int] = set()
        deadline = time.time() + 120
        while True:
            try:
                self.api("status")
                break
            except OSError:
                if self.process.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"JupyterLab did not start; see {state / 'lab.log'}") from None
                time.sleep(0.5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def kernel_state(self, notebook_path: str) -> str | None:
        """The execution state of the kernel of the session on `notebook_path` (None: no session yet)."""
        for session in self.api("sessions"):
            if session["path"] == notebook_path and session.get("kernel"):
                return self.api(f"kernels/{session['kernel']['id']}")["execution_state"]
        return None

    def remember_kernels(self):
        """Note the PIDs of the kernels the server has started (its child processes)."""
        try:
            self.kernel_pids |= {p.pid for p in psutil.Process(self.process.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            pass

    def shutdown_kernels(self):
        self.remember_kernels()
        for kernel in self.api("kernels"):
            self.api(f"kernels/{kernel['id']}", method="DELETE")

    def stop(self):
        self.remember_kernels()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        for pid in sorted(self.kernel_pids):
            try:
                kernel = psutil.Process(pid)
                kernel.terminate()
                kernel.wait(10)
            except psutil.NoSuchProcess:
                pass
            except psutil.TimeoutExpired:
                kernel.kill()
        self.log.close()


def wait_until(predicate, timeout: float, what: str, poll: float = 1.0):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def code_cell_prompts(page) -> list[str]:
    """The prompt ("[3]:", "[*]:", "[ ]:") of every code cell whose source is not empty."""
    return page.evaluate("""() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell')]
        .filter(c => (c.querySelector('.cm-content')?.innerText || '').trim() !== '')
        .map(c => (c.querySelector('.jp-InputArea-prompt')?.innerText || '').trim())""")


def stderr_outputs(page) -> list[str]:
    return page.evaluate("""() => [...document.querySelectorAll(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
        .map(o => o.innerText.trim().slice(0, 300))""")


def widget_text_problems(page) -> list[str]:
    text = page.locator(".jp-NotebookPanel-notebook").inner_text()
    problems = []
    if "Error displaying widget" in text:
        problems.append("a widget shows 'Error displaying widget'")
    if "interactive(children=" in text:
        problems.append("a widget cell shows its text repr 'interactive(children=...' instead of a view")
    return problems


def move_one_control(panel) -> str:
    """Change the first slider (else dropdown, else checkbox) of a widget panel; return what was moved."""
    slider = panel.locator(".widget-slider .noUi-handle, .widget-hslider .noUi-handle")
    if slider.count():
        readout = panel.locator(".widget-readout").first
        before = readout.inner_text() if readout.count() else None
        slider.first.focus()
        slider.first.press("ArrowRight")
        if readout.count() and readout.inner_text() == before:  # it was at its maximum
            slider.first.press("ArrowLeft")
            slider.first.press("ArrowLeft")
        label = panel.locator(".widget-slider .widget-label, .widget-hslider .widget-label").first
        return f"slider '{label.inner_text() if label.count() else '?'}' {before} -> " + (
            readout.inner_text() if readout.count() else "?")
    select = panel.locator(".widget-dropdown select")
    if select.count():
        options = select.first.locator("option")
        current = select.first.evaluate("s => s.selectedIndex")
        select.first.select_option(index=1 if current == 0 and options.count() > 1 else 0)
        return f"dropdown -> {select.first.evaluate('s => s.options[s.selectedIndex].text')}"
    checkbox = panel.locator(".widget-checkbox input")
    if checkbox.count():
        checkbox.first.click()
        return "checkbox toggled"
    raise RuntimeError("widget panel has no slider, dropdown or checkbox to move")


def what_lab_changed(page, lab: Lab, notebook: pathlib.Path) -> str:
    """Save the (copied) notebook from Lab and name what differs from the committed file."""
    page.keyboard.press("Control+s")
    page.wait_for_timeout(3000)
    saved = json.loads((pathlib.Path(lab.root) / "notebooks" / notebook.name).read_text())
    original = json.loads(COPIED[notebook.name])  # as copied: the committed file may change meanwhile
    changed = [f"metadata.{k}" for k in sorted(set(saved["metadata"]) | set(original["metadata"]))
               if saved["metadata"].get(k) != original["metadata"].get(k)]
    changed += [k for k in ("nbformat", "nbformat_minor") if saved.get(k) != original.get(k)]
    if len(saved["cells"]) != len(original["cells"]):
        changed.append("the number of cells")
    else:
        fields = sorted({k for a, b in zip(saved["cells"], original["cells"]) for k in set(a) | set(b)
                         if a.get(k) != b.get(k)})
        changed += [f"cells' {k}" for k in fields]
    return ", ".join(changed) or "nothing that is saved"


def check_notebook(lab: Lab, browser, notebook: pathlib.Path, shots: pathlib.Path,
                   open_only: bool = False) -> tuple[list[str], dict]:
    """Open, run and interact with one notebook; return its problems and timings."""
    name, rel = notebook.stem, f"notebooks/{notebook.name}"
    problems: list[str] = []
    timings: dict[str, float] = {}
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    console_errors: list[str] = []
    page.on("pageerror", lambda error: console_errors.append(str(error)[:300]))
    start = time.time()
    try:
        page.goto(f"{lab.url}/lab/workspaces/check-{name}/tree/{rel}?token={lab.token}&reset")
        page.locator(".jp-NotebookPanel-notebook").first.wait_for(timeout=120_000)
        wait_until(lambda: lab.kernel_state(rel) == "idle", 180, f"{name}: kernel idle after opening")
        page.wait_for_timeout(3000)  # let Lab apply kernel info and widget state to the model
        timings["open_s"] = round(time.time() - start, 1)
        if page.locator(".lm-TabBar-tab.jp-mod-dirty").count():
            problems.append(f"{name}: opens marked modified (Lab changed {what_lab_changed(page, lab, notebook)})")
        problems += [f"{name} before running: {p}" for p in widget_text_problems(page)]
        first_widget_cell = page.locator(".jp-CodeCell").filter(has_text="widgets.explore(")
        blank = [i + 1 for i in range(first_widget_cell.count()) if not first_widget_cell.nth(i).locator(
            ".jp-OutputArea-output img, .jp-OutputArea-output .jupyter-widgets").count()]
        if blank:
            problems.append(f"{name} before running: widget cell(s) {blank} show no figure (static view missing)")
        if first_widget_cell.count():  # the static view of the first widget, with the code above it
            first_widget_cell.first.evaluate("e => e.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(500)
        page.screenshot(path=shots / f"{name}-before.png")
        if open_only:
            return problems, timings

        start = time.time()
        page.locator(".jp-NotebookPanel-notebook").first.click(position={"x": 5, "y": 5})
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        n_code = len(code_cell_prompts(page))

        def finished():
            prompts = code_cell_prompts(page)
            if any("*" in p for p in prompts):
                return False
            counts = [int(m.group(1)) for p in prompts if (m := re.search(r"\[(\d+)\]", p))]
            if stderr_outputs(page) and lab.kernel_state(rel) == "idle":
                return "stopped with an error or stderr output"
            return (len(counts) == n_code and max(counts, default=0) == n_code
                    and lab.kernel_state(rel) == "idle") and "done"

        # The committed prompts already read [1]..[n]: only count the run as finished once it has started.
        wait_until(lambda: any("*" in p for p in code_cell_prompts(page)), 60, f"{name}: cells queued", 0.2)
        outcome = wait_until(finished, RUN_TIMEOUT_S, f"{name}: run all cells", poll=2)
        timings["run_all_s"] = round(time.time() - start, 1)
        stderr_outputs_after_run = stderr_outputs(page)
        problems += [f"{name}: error or stderr output: {text!r}" for text in stderr_outputs_after_run]
        if outcome != "done":
            problems.append(f"{name}: run all {outcome}")
        problems += [f"{name} after running: {p}" for p in widget_text_problems(page)]

        start = time.time()
        panels = page.locator(".widget-interact")
        n_explore = page.locator(".jp-CodeCell").filter(has_text="widgets.explore(").count()
        if panels.count() < n_explore:
            problems.append(f"{name}: {panels.count()} widget panels rendered for {n_explore} explore cells")
        for i in range(panels.count()):
            panel = panels.nth(i)
            panel.evaluate("e => e.scrollIntoView({block: 'center'})")
            output = panel.locator(".widget-output").first
            before = output.evaluate(SIGNATURE_JS)
            if before.endswith(":0"):
                problems.append(f"{name} widget {i + 1}: no figure in the panel before interaction")
            moved = move_one_control(panel)
            try:
                def redrawn(output=output, before=before):
                    now = output.evaluate(SIGNATURE_JS)
                    return now != before and not now.endswith(":0") and lab.kernel_state(rel) == "idle"

                wait_until(redrawn, REDRAW_TIMEOUT_S, f"{name} widget {i + 1} redraw")
            except TimeoutError as error:
                problems.append(f"{error} ({moved})")
            state = lab.kernel_state(rel)
            if state not in ("idle", "busy"):
                problems.append(f"{name} widget {i + 1}: kernel {state} after moving {moved}")
            print(f"  {name} widget {i + 1}: {moved}", flush=True)
            if i == 0:
                page.wait_for_timeout(500)
                page.screenshot(path=shots / f"{name}-after.png")
        if not panels.count():
            page.screenshot(path=shots / f"{name}-after.png")
        problems += [f"{name} after interaction: {p}" for p in widget_text_problems(page)]
        seen = set(stderr_outputs_after_run)
        problems += [f"{name} after interaction: stderr {p!r}" for p in stderr_outputs(page) if p not in seen]
        timings["widgets_s"] = round(time.time() - start, 1)
        timings["widgets"] = panels.count()
    except Exception as error:  # a timeout or a missing element: report it, screenshot, go on
        problems.append(f"{name}: {type(error).__name__}: {str(error).splitlines()[0]}")
        page.screenshot(path=shots / f"{name}-failed.png")
    finally:
        problems += [f"{name}: page error in the browser: {e}" for e in console_errors]
        page.close()
        lab.shutdown_kernels()
    return problems, timings


def check_worker(index: int, queue, out: pathlib.Path, open_only: bool) -> list[tuple[str, list[str], dict]]:
    """One worker process: its own JupyterLab server, root and Chromium, checking notebooks from `queue`
    (pairs of path and text as read when the check began) until it is empty."""
    work = ROOT / "build" / "browser" / f"worker-{index}"
    (work / "root" / "notebooks").mkdir(parents=True)
    checked = []
    lab = Lab(work / "root", work)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM)
            try:
                while True:
                    try:
                        notebook, text = queue.get_nowait()
                    except Empty:
                        return checked
                    COPIED[notebook.name] = text
                    (work / "root" / "notebooks" / notebook.name).write_text(text)
                    started = time.time()
                    found, timings = check_notebook(lab, browser, notebook, out, open_only)
                    timings["total_s"] = round(time.time() - started, 1)
                    checked.append((notebook.name, found, timings))
                    print(f"{notebook.name}: {'ok' if not found else f'{len(found)} problem(s)'} {timings}",
                          flush=True)
            finally:
                browser.close()
    finally:
        lab.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "build" / "screenshots")
    parser.add_argument("--open-only", action="store_true",
                        help="only step 1 (opens unmodified, static widget views): seconds per notebook")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="notebooks checked at once, each worker with its own server and browser "
                             "(default: one per CPU)")
    args = parser.parse_args(argv)
    notebooks = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    jobs = min(args.jobs, len(notebooks))
    shutil.rmtree(ROOT / "build" / "browser", ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    timings: dict[str, dict] = {}
    total = time.time()
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no threads carried over by a fork
    with context.Manager() as manager, ProcessPoolExecutor(jobs, mp_context=context) as pool:
        queue = manager.Queue()
        for notebook in notebooks:
            queue.put((notebook, notebook.read_text()))
        for future in [pool.submit(check_worker, i, queue, args.out, args.open_only) for i in range(jobs)]:
            try:
                for name, found, timing in future.result():
                    problems += found
                    timings[name] = timing
            except Exception as error:  # a worker whose server or browser did not start
                problems.append(f"browser worker: {type(error).__name__}: {str(error).splitlines()[0]}")
    problems += [f"{n.name}: not checked" for n in notebooks if n.name not in timings]
    timings = {name: timings[name] for name in sorted(timings)}
    timings["total_s"] = round(time.time() - total, 1)
    (args.out / "timings.json").write_text(json.dumps(timings, indent=1))
    for problem in problems:
        print("FAIL", problem)
    print(f"browser test: {len(notebooks)} notebooks in {jobs} worker(s), {len(problems)} problems, "
          f"{timings['total_s']} s; screenshots in {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
