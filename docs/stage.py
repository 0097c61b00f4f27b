"""Stage the course site's sources in one folder: this folder's pages, the notebooks, the report.

    python docs/stage.py build/site-src

The reproduction report is build/report.md when `make reproduce` has written it; otherwise a page saying how
to make it. Nothing is executed.
"""

from __future__ import annotations

import pathlib
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
NO_REPORT = """# Reproduction report

No report has been built in this checkout yet. Run

```
make reproduce
```

which executes every notebook headless and writes `build/report.md`, then `make site` again to put it here.
"""


def stage(target: pathlib.Path) -> list[str]:
    """Fill `target` (emptied first) with the site's sources; return the notebooks' file names."""
    shutil.rmtree(target, ignore_errors=True)
    (target / "notebooks").mkdir(parents=True)
    for page in (ROOT / "docs").glob("*.md"):
        shutil.copy2(page, target / page.name)
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    for name in notebooks:
        shutil.copy2(ROOT / "notebooks" / name, target / "notebooks" / name)
    report = ROOT / "build" / "report.md"
    (target / "report.md").write_text(report.read_text() if report.is_file() else NO_REPORT)
    if report.is_file():
        for figure in report.parent.glob("sensitivity_*.png"):  # the report's tornado figures
            shutil.copy2(figure, target / figure.name)
    return notebooks


if __name__ == "__main__":
    names = stage(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "site-src")
    print(f"staged {len(names)} notebooks and the report")
