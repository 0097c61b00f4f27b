"""The reproduction report: notebooks record the claims they checked; `make reproduce` collects them.

In a notebook, `record(...)` returns the `Claim` (shown as a one-row table) and, when the notebook
runs under `make reproduce`, appends it to the JSON-lines file named by $MLSYS_REPORT_PATH. Running
`python -m mlsys_core.report notebooks --out build` executes every notebook headless, writes the
executed copies and `build/report.md`, and exits non-zero if any notebook failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import time

ENV_REPORT_PATH = "MLSYS_REPORT_PATH"
VERDICTS = ("reproduced", "partly reproduced", "not reproduced", "not comparable")


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim checked: what the paper reports against what we measured, and a verdict."""

    paper: str
    claim: str
    paper_value: str
    measured: str
    unit: str
    verdict: str

    def _repr_markdown_(self) -> str:
        return _table([self])


def record(paper: str, claim: str, paper_value, measured, unit: str = "", verdict: str = "reproduced") -> Claim:
    """Record a checked claim. `paper_value` and `measured` may be numbers or short strings.

    `verdict` is one of `VERDICTS`. Appends to $MLSYS_REPORT_PATH when set (under `make reproduce`).
    """
    for name, value in (("paper", paper), ("claim", claim)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    entry = Claim(paper, claim, _fmt(paper_value), _fmt(measured), unit, verdict)
    path = os.environ.get(ENV_REPORT_PATH)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(dataclasses.asdict(entry)) + "\n")
    return entry


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(claims) -> str:
    rows = ["| claim | paper reports | we measure | verdict |", "|---|---|---|---|"]
    for c in claims:
        unit = f" {c.unit}" if c.unit else ""
        rows.append(
            f"| {_cell(c.claim)} | {_cell(c.paper_value)}{unit} | {_cell(c.measured)}{unit} | {c.verdict} |"
        )
    return "\n".join(rows)


def load_claims(path: pathlib.Path) -> list[Claim]:
    if not path.exists():
        return []
    return [Claim(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


def render(claims: list[Claim], backend: str, failures: dict[str, str], seconds: dict[str, float]) -> str:
    """The report as Markdown: backend, notebooks run, then one table of claims per paper."""
    lines = ["# Reproduction report", "", f"Backend: {backend}", "", "## Notebooks", ""]
    for name, secs in seconds.items():
        status = f"FAILED: {failures[name]}" if name in failures else "ok"
        lines.append(f"- `{name}` ({secs:.0f} s): {status}")
    papers: dict[str, list[Claim]] = {}
    for c in claims:
        papers.setdefault(c.paper, []).append(c)
    for paper, rows in papers.items():
        lines += ["", f"## {paper}", "", _table(rows)]
    return "\n".join(lines) + "\n"


def execute(notebook: pathlib.Path, out_dir: pathlib.Path, timeout_s: int) -> str | None:
    """Run one notebook headless with nbclient; write the executed copy; return an error or None."""
    import nbclient
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=timeout_s, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}}
    )
    error = None
    try:
        client.execute()
    except Exception as e:  # a failing cell: name it in the report, keep going
        error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
    nbformat.write(nb, out_dir / notebook.name)
    return error


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
    failures, seconds = {}, {}
    for path in (bar := tqdm(paths, unit="notebook")):
        bar.set_description(path.name)
        start = time.perf_counter()
        error = execute(path, args.out, args.timeout)
        seconds[path.name] = time.perf_counter() - start
        if error:
            failures[path.name] = error
    backend.setup()
    claims = load_claims(claims_path)
    (args.out / "report.md").write_text(render(claims, str(backend.info()), failures, seconds), encoding="utf-8")
    print(f"wrote {args.out / 'report.md'}: {len(claims)} claims, {len(failures)} failed notebook(s)")
    for name, error in failures.items():
        print(f"FAILED {name}: {error}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
