import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402

from mlsys_core import claims, report  # noqa: E402
from mlsys_core.claims import rules  # noqa: E402
from mlsys_core.claims.registry import Claim, Sweep  # noqa: E402

SWEPT = Claim(
    id="suite.test_swept", paper="Suite check", statement="gain over bandwidth", paper_value="up to 1.377x",
    source="abstract", unit="x", rule=rules.at_least(1.2, partly=1.05, exceeds=1.377),
    assumptions=("10 GFLOP/s per worker",), sweep=Sweep("link bandwidth", "Gbit/s", (1.0, 10.0), default=1.0),
)


@pytest.fixture
def registry(monkeypatch):
    """The real suite claim plus a swept one, as the whole registry."""
    fake = {"suite.shard_bytes": claims.get("suite.shard_bytes"), SWEPT.id: SWEPT}
    monkeypatch.setattr(claims, "REGISTRY", fake)
    return fake


def test_check_returns_the_rules_verdict_and_appends_when_asked(tmp_path, monkeypatch):
    path = tmp_path / "claims.jsonl"
    monkeypatch.setenv(report.ENV_REPORT_PATH, str(path))
    monkeypatch.setenv(report.ENV_NOTEBOOK, "00_start_here.ipynb")
    good = report.check("suite.shard_bytes", 0.125, details="8 devices")
    bad = report.check("suite.shard_bytes", 0.5)
    assert good.evaluation.verdict == "reproduced" and bad.evaluation.verdict == "not reproduced"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["verdict"] for r in rows] == ["reproduced", "not reproduced"]
    assert rows[0]["notebook"] == "00_start_here.ipynb" and rows[0]["details"] == "8 devices"
    assert rows[0]["rule"] == claims.get("suite.shard_bytes").rule.text and rows[0]["source"].startswith("suite")
    md = good._repr_markdown_()
    assert "| 0.125 of the array |" in md and md.rstrip().endswith("8 devices")


def test_check_without_env_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(report.ENV_REPORT_PATH, raising=False)
    monkeypatch.chdir(tmp_path)
    report.check("suite.shard_bytes", 0.125)
    assert list(tmp_path.iterdir()) == []


def test_check_embeds_a_figure_as_png(registry):
    fig, ax = plt.subplots()
    ax.plot([1, 2], [1.0, 1.5])
    r = report.check(SWEPT.id, sweep=[1.5, 1.1], figure=fig)
    plt.close(fig)
    assert r.figure_png and r.row()["figure_png"].startswith("iVBOR")  # base64 of a PNG header
    assert r.row()["holds_over"] == "link bandwidth: exceeds paper at 1 Gbit/s; partly reproduced at 10 Gbit/s"


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [(("no.claim", 1.0), {}, ValueError, "claim_id must be a declared claim"),
     (("suite.shard_bytes", 1.0), {"details": 3}, TypeError, "details must be a string"),
     (("suite.shard_bytes", "1/8"), {}, ValueError, "could not convert|measured")],
)
def test_check_refuses_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        report.check(*args, **kwargs)


def _jsonl(path: pathlib.Path, *results: report.Result) -> pathlib.Path:
    path.write_text("".join(json.dumps(r.row()) + "\n" for r in results))
    return path


def test_collect_marks_unchecked_and_double_checked_claims(registry, tmp_path):
    once = report.check("suite.shard_bytes", 0.125)
    rows, problems = report.collect(_jsonl(tmp_path / "a.jsonl", once))
    assert [r["verdict"] for r in rows] == ["reproduced", report.NOT_CHECKED]
    assert rows[1].keys() == rows[0].keys()  # claims.json has one shape, checked or not
    assert problems == [f"{SWEPT.id} was not checked by any notebook"]
    stray = json.loads(json.dumps(once.row()) .replace("suite.shard_bytes", "suite.gone"))
    path = _jsonl(tmp_path / "b.jsonl", once, once, report.check(SWEPT.id, sweep=[1.3, 1.3]))
    path.write_text(path.read_text() + json.dumps(stray) + "\n")
    _, problems = report.collect(path)
    assert problems[0].startswith("suite.shard_bytes was checked 2 times")
    assert problems[1] == "suite.gone is not a declared claim"


def test_markdown_and_html_show_summary_sensitivity_and_figures(registry, tmp_path):
    fig, _ = plt.subplots()
    path = _jsonl(tmp_path / "c.jsonl", report.check("suite.shard_bytes", 0.25),
                  report.check(SWEPT.id, sweep=[[1.3, 1.31, 1.29], 1.0], figure=fig))
    plt.close(fig)
    rows, problems = report.collect(path)
    assert report.summary(rows)["Suite check"]["not reproduced"] == 1
    assert report.summary(rows)["Suite check"]["reproduced"] == 1
    notebooks = {"00_start_here.ipynb": "ok (3 s)"}
    md = report.render_markdown(rows, "cpu: 8 x cpu", problems, notebooks)
    assert "Backend: cpu: 8 x cpu" in md and "Machine: " in md
    assert "| Suite check | 1 | 0 | 0 | 1 | 0 | 0 |" in md  # reproduced, exceeds, partly, not, n/c, not checked
    assert "### Sensitivity" in md and "  - 10 Gbit/s: 1 x → not reproduced" in md
    assert "- `00_start_here.ipynb`: ok (3 s)" in md and "## Problems" not in md
    page = report.render_html(rows, "cpu: 8 x cpu", problems, notebooks)
    assert page.count("data:image/png;base64,") == 1 and "http" not in page.replace("charset", "")
    assert "<td class='v-reproduced'>reproduced</td>" in page and "<td class='v-not'>not reproduced</td>" in page


def _notebook(path: pathlib.Path, source: str) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_main_writes_three_reports_and_fails_on_unchecked_claims_and_broken_notebooks(registry, tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "a.ipynb", "from mlsys_core import report\nreport.check('suite.shard_bytes', 1 / 8)")
    out = tmp_path / "out"
    assert report.main([str(nbs), "--out", str(out), "--timeout", "120"]) == 1  # SWEPT was never checked
    data = json.loads((out / "claims.json").read_text())
    assert [(r["id"], r["verdict"], r["notebook"], r["cell"]) for r in data] == [
        ("suite.shard_bytes", "reproduced", "a.ipynb", 1), (SWEPT.id, report.NOT_CHECKED, "", None)]
    assert f"{SWEPT.id} was not checked by any notebook" in (out / "report.md").read_text()
    assert (out / "report.html").read_text().startswith("<!doctype html>")

    declare = (  # the kernel has the real registry: declare the test's swept claim there too
        "from mlsys_core import claims, report\nfrom mlsys_core.claims import rules\n"
        "from mlsys_core.claims.registry import Claim, Sweep\n"
        f"claims.REGISTRY[{SWEPT.id!r}] = Claim({SWEPT.id!r}, 'Suite check', 's', 'v', 'abstract', 'x', "
        "rules.at_least(1.2, partly=1.05), sweep=Sweep('link bandwidth', 'Gbit/s', (1.0, 10.0), 1.0))\n"
    )
    _notebook(nbs / "b.ipynb", declare + f"report.check({SWEPT.id!r}, sweep=[1.3, 1.0])")
    assert report.main([str(nbs), "--out", str(out), "--timeout", "120"]) == 0
    _notebook(nbs / "c.ipynb", "raise ValueError('broken on purpose')")
    assert report.main([str(nbs), "--out", str(out), "--timeout", "120"]) == 1
    md = (out / "report.md").read_text()
    assert "`c.ipynb`: FAILED: " in md and "broken on purpose" in md and (out / "c.ipynb").exists()
