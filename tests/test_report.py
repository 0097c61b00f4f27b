import dataclasses
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402

from mlsys_core import claims, report  # noqa: E402
from mlsys_core.claims import rules  # noqa: E402
from mlsys_core.claims.registry import Assumption, Claim  # noqa: E402
from mlsys_core.report import record, render, run, sweep, tornado  # noqa: E402

BANDWIDTH = Assumption("bandwidth_gbps", "link bandwidth", "Gbit/s", 1.0, (1.0, 10.0), "suite's choice")
WORKERS = Assumption("workers", "workers", "", 4.0, (2.0, 4.0, 8.0), "suite's choice")
SWEPT = Claim(
    id="suite.test_swept", paper="Suite check", statement="gain over bandwidth", paper_value="up to 1.377x",
    source="abstract", unit="x", rule=rules.at_least(1.2, partly=1.05, exceeds=1.377), kind="reproduction",
    measure="mlsys_core.test:gain", parameters=(BANDWIDTH, WORKERS), assumptions=("10 GFLOP/s per worker",),
)


@pytest.fixture
def registry(monkeypatch):
    """The real suite claim (without its assumptions) plus a swept one, as the whole registry."""
    shard_bytes = dataclasses.replace(claims.get("suite.shard_bytes"), parameters=(), measure="")
    fake = {"suite.shard_bytes": shard_bytes, SWEPT.id: SWEPT}
    monkeypatch.setattr(claims, "REGISTRY", fake)
    return fake


def test_check_returns_the_rules_verdict_and_appends_when_asked(tmp_path, monkeypatch):
    path = tmp_path / "claims.jsonl"
    monkeypatch.setenv(record.ENV_REPORT_PATH, str(path))
    monkeypatch.setenv(record.ENV_NOTEBOOK, "00_start_here.ipynb")
    good = report.check("suite.shard_bytes", 1.0, details="8 devices")
    bad = report.check("suite.shard_bytes", 4.0)
    assert good.evaluation.verdict == "reproduced" and bad.evaluation.verdict == "not reproduced"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["verdict"] for r in rows] == ["reproduced", "not reproduced"]
    assert rows[0]["notebook"] == "00_start_here.ipynb" and rows[0]["details"] == "8 devices"
    assert rows[0]["rule"] == claims.get("suite.shard_bytes").rule.text and rows[0]["source"].startswith("suite")
    md = good._repr_markdown_()
    assert "| 1.0000 x 1/N of the array |" in md and md.rstrip().endswith("8 devices")


def test_check_without_env_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(record.ENV_REPORT_PATH, raising=False)
    monkeypatch.chdir(tmp_path)
    report.check("suite.shard_bytes", 1.0)
    assert list(tmp_path.iterdir()) == []


def test_check_embeds_a_figure_as_png(registry):
    fig, ax = plt.subplots()
    ax.plot([1, 2], [1.0, 1.5])
    r = report.check(SWEPT.id, sweep={"bandwidth_gbps": [1.5, 1.1]}, figure=fig)
    plt.close(fig)
    assert r.figure_png and r.row()["figure_png"].startswith("iVBOR")  # base64 of a PNG header
    assert r.row()["holds_over"] == "link bandwidth: exceeds paper at 1 Gbit/s; partly reproduced at 10 Gbit/s"


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [(("no.claim", 1.0), {}, ValueError, "claim_id must be a declared claim"),
     (("suite.shard_bytes", 1.0), {"details": 3}, TypeError, "details must be a string"),
     (("suite.shard_bytes", "1/8"), {}, TypeError, "measured must be an array of numbers, got dtype <U3"),
     (("suite.shard_bytes", True), {}, TypeError, "measured must be a number, got True")],
)
def test_check_refuses_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        report.check(*args, **kwargs)


@pytest.mark.parametrize(
    "claim_id, measured, sweep, match",
    [("suite.shard_bytes", float("inf"), None, "measured must be finite, got inf"),
     ("suite.shard_bytes", float("nan"), None, "measured must be finite, got nan"),
     ("suite.shard_bytes", [0.125, float("-inf"), 0.125], None, r"measured must hold finite numbers; measured\[1\]"),
     (SWEPT.id, None, {"bandwidth_gbps": [1.3, float("inf")]}, "measured at bandwidth_gbps 10 must be finite"),
     (SWEPT.id, None, {"cores": [1.3, 1.3]}, r"sweep names 'cores', the declared parameters are \['bandwidth"),
     (SWEPT.id, None, {"bandwidth_gbps": [1.3]}, "one measurement per bandwidth_gbps in"),
     (SWEPT.id, None, [1.3, 1.3], "sweep must map a declared parameter's name")],
)
def test_check_refuses_a_non_finite_measurement(registry, claim_id, measured, sweep, match):
    with pytest.raises(ValueError, match=match):
        report.check(claim_id, measured, sweep=sweep)


def test_a_result_row_has_the_fields_collect_requires():
    assert tuple(report.check("suite.shard_bytes", 1.0).row()) == record.FIELDS


def _jsonl(path: pathlib.Path, *results: report.Result) -> pathlib.Path:
    path.write_text("".join(json.dumps(r.row()) + "\n" for r in results))
    return path


def test_collect_marks_unchecked_and_double_checked_claims(registry, tmp_path):
    once = report.check("suite.shard_bytes", 1.0)
    rows, problems = record.collect(_jsonl(tmp_path / "a.jsonl", once))
    assert [r["verdict"] for r in rows] == ["reproduced", record.NOT_CHECKED]
    assert rows[1].keys() == rows[0].keys()  # claims.json has one shape, checked or not
    assert problems == [f"{SWEPT.id} was not checked by any notebook"]
    stray = json.loads(json.dumps(once.row()) .replace("suite.shard_bytes", "suite.gone"))
    path = _jsonl(tmp_path / "b.jsonl", once, once, report.check(SWEPT.id, sweep={"bandwidth_gbps": [1.3, 1.3]}))
    path.write_text(path.read_text() + json.dumps(stray) + "\n")
    _, problems = record.collect(path)
    assert problems[0].startswith("suite.shard_bytes was checked 2 times")
    assert problems[1] == "suite.gone is not a declared claim"


@pytest.mark.parametrize(
    "damage, match",
    [(lambda line: line[: len(line) // 2], "not JSON"),
     (lambda line: json.dumps({k: v for k, v in json.loads(line).items() if k not in ("notebook", "cell")}),
      "lacks notebook, cell"),
     (lambda line: "[1, 2]", "must be a JSON object"),
     (lambda line: line.replace('"verdict": "reproduced"', '"verdict": "fine"'), "verdict must be one of"),
     (lambda line: line.replace('"id": "suite.shard_bytes"', '"id": 7'), "id must be a claim id")],
)
def test_collect_names_the_file_and_line_of_a_damaged_row(registry, tmp_path, damage, match):
    path = _jsonl(tmp_path / "claims.jsonl", report.check("suite.shard_bytes", 1.0))
    line = path.read_text().strip()
    path.write_text(f"{line}\n\n{damage(line)}\n")
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}, line 3: {match}"):
        record.collect(path)


def _gain(bandwidth_gbps: float = 1.0, workers: float = 4.0) -> list[float]:
    """A stand-in measure: the gain falls as workers are added."""
    return [1.5 - 0.06 * workers + d for d in (-0.005, 0.0, 0.005)]


@pytest.fixture
def measured(monkeypatch):
    monkeypatch.setattr(sweep, "load_measure", lambda claim: _gain)


def test_the_report_sweeps_what_the_notebook_did_not_and_names_the_flipping_change(registry, measured):
    r = report.check(SWEPT.id, _gain(), sweep={"bandwidth_gbps": [_gain(), _gain()]})
    assert [a.name for a in sweep.unswept(r.evaluation)] == ["workers"]
    done = sweep.complete(r.evaluation)
    workers = done.sweeps[1]
    assert workers.by == "report" and [p.assumption_value for p in workers.points] == [2.0, 4.0, 8.0]
    assert workers.points[1].estimate == r.evaluation.estimate  # the default point is the notebook's own
    assert [p.verdict for p in workers.points] == ["reproduced", "reproduced", "not reproduced"]
    assert done.depends_on == ("workers",) and sweep.unswept(done) == ()
    assert done.flip == "not reproduced at workers = 8 (default 4)"
    assert sweep.complete(r.evaluation, stopped=lambda: True) == r.evaluation  # a stop signal measures nothing


def test_a_row_rebuilds_the_result_it_was_written_from(registry, measured):
    r = report.check(SWEPT.id, _gain(), sweep={"bandwidth_gbps": [_gain(), [1.0, 1.01, 1.02]]}, details="d")
    again = record.Result.from_row(json.loads(json.dumps(r.row())))
    assert again.row() == r.row()


def test_markdown_and_html_show_summary_sensitivity_and_figures(registry, measured, tmp_path):
    fig, _ = plt.subplots()
    swept = report.check(SWEPT.id, sweep={"bandwidth_gbps": [[1.3, 1.31, 1.29], [1.0, 1.01, 1.0]]}, figure=fig)
    path = _jsonl(tmp_path / "c.jsonl", report.check("suite.shard_bytes", 4.0), swept)
    plt.close(fig)
    rows, problems = record.collect(path)
    rows, failed, _ = run.sweep_rows(rows, run._Stop())
    assert failed == []
    assert render.summary(rows)["Suite check"]["not reproduced"] == 1
    assert render.summary(rows)["Suite check"]["reproduced"] == 1
    assert render.by_kind(rows)["reproduction"]["reproduced"] == 1
    notebooks = {"00_start_here.ipynb": "ok (3 s)"}
    md = render.render_markdown(rows, "cpu: 8 x cpu", problems, notebooks)
    assert "Backend: cpu: 8 x cpu" in md and "Machine: " in md
    assert "| Suite check | 1 | 0 | 0 | 1 | 0 | 0 | 0 |" in md  # reproduced, exceeds, partly, not, inconclusive, ...
    assert "  - over link bandwidth (by the notebook): 1 Gbit/s: 1.3 [1.28, 1.32] x → reproduced; " in md
    assert "## Verdicts that depend on an assumption" in md
    assert f"- `{SWEPT.id}` (reproduced): not reproduced at workers = 8 (default 4)" in md
    assert f"![Sensitivity of Suite check]({tornado.slug('Suite check')})" in md
    assert "- `00_start_here.ipynb`: ok (3 s)" in md and "## Problems" not in md
    page = render.render_html(rows, "cpu: 8 x cpu", problems, notebooks)
    assert page.count("data:image/png;base64,") == 2 and "http" not in page.replace("charset", "")
    assert "<td class='v-reproduced'>reproduced</td>" in page and "<td class='v-not'>not reproduced</td>" in page


def test_the_tornado_puts_each_swing_in_distances_to_the_next_edge_it_moves_towards(registry):
    r = report.check(SWEPT.id, sweep={"bandwidth_gbps": [[1.3, 1.3], [1.0, 1.0]]}).row()
    (bar,) = tornado.swings(r)
    assert bar.low == pytest.approx((1.0 - 1.3) / (1.3 - 1.2)) and bar.high == 0.0 and bar.flips  # the edge below
    assert tornado.swings(report.check("suite.shard_bytes", 1.0).row()) == []  # nothing swept
    assert tornado.slug("Paper 4 — TicTac") == "sensitivity_paper_4_tictac.png"


def _notebook(path: pathlib.Path, *sources: str) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.slow
def test_main_writes_three_reports_and_fails_on_unchecked_claims_and_broken_notebooks(registry, measured, tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "a.ipynb", "from mlsys_core import report\nreport.check('suite.shard_bytes', 1.0)")
    out = tmp_path / "out"
    assert run.main([str(nbs), "--out", str(out), "--timeout", "120"]) == 1  # SWEPT was never checked
    data = json.loads((out / "claims.json").read_text())
    assert [(r["id"], r["verdict"], r["notebook"], r["cell"]) for r in data] == [
        ("suite.shard_bytes", "reproduced", "a.ipynb", 1), (SWEPT.id, record.NOT_CHECKED, "", None)]
    assert f"{SWEPT.id} was not checked by any notebook" in (out / "report.md").read_text()
    assert (out / "report.html").read_text().startswith("<!doctype html>")

    declare = (  # the kernel has the real registry: declare the test's swept claim there too
        "from mlsys_core import claims, report\nfrom mlsys_core.claims import rules\n"
        "from mlsys_core.claims.registry import Assumption, Claim\n"
        "a = Assumption('bandwidth_gbps', 'link bandwidth', 'Gbit/s', 1.0, (1.0, 10.0), 'suite')\n"
        f"claims.REGISTRY[{SWEPT.id!r}] = Claim({SWEPT.id!r}, 'Suite check', 's', 'v', 'abstract', 'x', "
        "rules.at_least(1.2, partly=1.05), kind='reproduction', parameters=(a,))\n"
    )
    _notebook(nbs / "b.ipynb", declare + f"report.check({SWEPT.id!r}, sweep={{'bandwidth_gbps': [1.3, 1.0]}})")
    assert run.main([str(nbs), "--out", str(out), "--timeout", "120"]) == 0
    _notebook(nbs / "c.ipynb", "raise ValueError('broken on purpose')", "print('after')")
    committed = nbformat.read(nbs / "c.ipynb", as_version=4)
    committed.cells[1].outputs = [nbformat.v4.new_output("stream", text="from the committed notebook\n")]
    nbformat.write(committed, nbs / "c.ipynb")
    assert run.main([str(nbs), "--out", str(out), "--timeout", "120"]) == 1
    md = (out / "report.md").read_text()
    assert "`c.ipynb`: FAILED: ValueError: broken on purpose, in cell [1] (" in md
    executed = nbformat.read(out / "c.ipynb", as_version=4)
    top = executed.cells[0]
    assert top.cell_type == "markdown" and top.source.startswith("**This run failed in cell [1]**")
    assert "ValueError: broken on purpose" in top.source
    assert executed.cells[1].outputs[0].ename == "ValueError" and executed.cells[2].outputs == []
    assert not list(tmp_path.glob(".out-run-*"))  # the run's temporary folder went with the move


def _running(pid: int) -> bool:
    """Whether a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _interrupted_run(tmp_path: pathlib.Path, signals: list[signal.Signals], ignore_sigint: bool):
    """Run the report CLI over three notebooks, send `signals` while the second one's cell sleeps; return the
    process, its stderr, the kernel's pid and the seconds from the first signal to the exit."""
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    pid_file, c_started = tmp_path / "kernel.pid", tmp_path / "c-started"
    _notebook(nbs / "a.ipynb", "from mlsys_core import report\nreport.check('suite.shard_bytes', 1.0)")
    ignore = "signal.signal(signal.SIGINT, signal.SIG_IGN)\n" if ignore_sigint else ""
    _notebook(nbs / "b.ipynb", f"import os, pathlib, signal, time\n{ignore}"
              f"pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))\ntime.sleep(60)", "print('after')")
    _notebook(nbs / "c.ipynb", f"open({str(c_started)!r}, 'w')")
    cmd = [sys.executable, "-m", "mlsys_core.report", str(nbs), "--out", str(tmp_path / "out"), "--timeout", "90"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    start = time.monotonic()
    proc.send_signal(signals[0])
    for sig in signals[1:]:
        time.sleep(0.5)  # while the run stops
        proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert not c_started.exists()  # no notebook started after the signal
    return proc, stderr, int(pid_file.read_text()), time.monotonic() - start


@pytest.mark.parametrize(
    "signals, ignore_sigint",
    [([signal.SIGINT], False), ([signal.SIGTERM], False), ([signal.SIGINT, signal.SIGTERM], True)],
    ids=["sigint", "sigterm", "second-signal-kills-a-cell-that-ignores-sigint"],
)
def test_a_signal_stops_the_run_and_leaves_the_previous_report(tmp_path, signals, ignore_sigint):
    out = tmp_path / "out"
    out.mkdir()
    earlier = {name: f"{name} from an earlier run\n".encode() for name in
               ("report.md", "report.html", "claims.json", "claims.jsonl", "a.ipynb", "b.ipynb")}
    for name, data in earlier.items():
        (out / name).write_bytes(data)
    proc, stderr, kernel, seconds = _interrupted_run(tmp_path, signals, ignore_sigint)
    assert proc.returncode == 128 + signals[0]
    assert not _running(kernel)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == earlier
    assert not list(tmp_path.glob(".out-run-*"))
    name = signals[0].name
    assert f"interrupted by {name} after 1 of 3 notebooks; {out / 'report.md'} is from an earlier run" in stderr
    assert seconds < run.GRACE_S  # the cell stopped at the first signal, or its kernel was killed at the second


def test_the_sweep_command_finds_claims_by_id_or_prefix(registry, measured, capsys):
    assert [c.id for c in sweep.matching(["suite."])] == ["suite.shard_bytes", SWEPT.id]
    assert [c.id for c in sweep.matching([SWEPT.id, "suite.test"])] == [SWEPT.id]
    with pytest.raises(ValueError, match="no declared claim id starts with 'tictac.nothing'"):
        sweep.matching(["tictac.nothing"])
    assert sweep.main([SWEPT.id]) == 0
    out = capsys.readouterr().out
    assert f"{SWEPT.id}: reproduced" in out and "workers: reproduced for 2-4; not reproduced at 8" in out
    assert "flips: not reproduced at workers = 8 (default 4)" in out
