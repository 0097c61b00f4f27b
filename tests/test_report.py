import json
import pathlib
import sys

import nbformat
import pytest

from mlsys_core import report


def test_record_returns_claim_and_appends_when_asked(tmp_path, monkeypatch):
    path = tmp_path / "claims.jsonl"
    monkeypatch.setenv(report.ENV_REPORT_PATH, str(path))
    c = report.record("Paper 1", "WUS bytes", 0.125, 0.12500001, "x", "reproduced")
    assert c.measured == "0.125" and c.paper_value == "0.125"
    report.record("Paper 2", "bandwidth gain", "2-3x", "2.4x", verdict="partly reproduced")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["paper"] for r in rows] == ["Paper 1", "Paper 2"]
    assert "| WUS bytes | 0.125 x | 0.125 x | reproduced |" in c._repr_markdown_()


def test_record_without_env_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(report.ENV_REPORT_PATH, raising=False)
    monkeypatch.chdir(tmp_path)
    report.record("P", "c", 1, 2)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"verdict": "great"}, "verdict must be one of"),
        ({"paper": ""}, "paper must be"),
        ({"claim": 3}, "claim must be"),
    ],
)
def test_record_rejects_bad_input(kwargs, match):
    args = {"paper": "P", "claim": "c", "paper_value": 1, "measured": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        report.record(**args)


def test_render_groups_by_paper_and_names_failures():
    claims = [
        report.Claim("Paper 1", "a|b", "1", "2", "s", "reproduced"),
        report.Claim("Paper 2", "c", "3", "4", "", "not reproduced"),
    ]
    md = report.render(claims, "cpu: 8 x cpu", {"x.ipynb": "CellExecutionError: boom"}, {"x.ipynb": 3.0, "y.ipynb": 1})
    assert "Backend: cpu: 8 x cpu" in md
    assert "## Paper 1" in md and "## Paper 2" in md
    assert "a\\|b" in md
    assert "`x.ipynb` (3 s): FAILED: CellExecutionError: boom" in md
    assert "`y.ipynb` (1 s): ok" in md


def _notebook(path: pathlib.Path, source: str) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_main_runs_notebooks_collects_claims_and_fails_loudly(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "a.ipynb", "from mlsys_core import report\nreport.record('Paper X', 'works', 1, 1)")
    _notebook(nbs / "b.ipynb", "raise ValueError('broken on purpose')")
    out = tmp_path / "out"
    assert report.main([str(nbs), "--out", str(out), "--timeout", "120"]) == 1
    md = (out / "report.md").read_text()
    assert "| works | 1 | 1 | reproduced |" in md
    assert "`b.ipynb`" in md and "broken on purpose" in md
    assert (out / "a.ipynb").exists() and (out / "b.ipynb").exists()
