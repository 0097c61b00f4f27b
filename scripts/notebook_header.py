"""Write each notebook's header from the one repository address in pyproject.toml.

The header is the Colab and Kaggle badge line of the first markdown cell and the whole first code cell (the
install cell). Both are generated here, so they cannot drift from `[project.urls] Repository`. The notebook's
`metadata.kernelspec` is set to the one JupyterLab writes when it starts ipykernel's `python3` kernel, so a
freshly opened notebook is not marked modified (a differing display name, e.g. "Python 3" instead of
"Python 3 (ipykernel)", made Lab rewrite it, ask to save on close, and saving made a git diff):

    python scripts/notebook_header.py notebooks/*.ipynb     # rewrite those notebooks (idempotent)
    python scripts/notebook_header.py --check notebooks/*.ipynb   # exit 1 if one differs

Only those two cells are touched; their outputs, execution counts and every other cell stay as they are.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import nbformat
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
BADGE_PREFIXES = ("[![Open In Colab]", "[![Open In Kaggle]")
# What JupyterLab stores on starting ipykernel's kernel (ipykernel.kernelspec.get_kernel_dict()).
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def repository_url(pyproject: pathlib.Path = ROOT / "pyproject.toml") -> str:
    """The `Repository` entry of pyproject's `[project.urls]`, without a trailing slash or `.git`."""
    urls = tomllib.loads(pyproject.read_text())["project"]["urls"]
    return urls["Repository"].rstrip("/").removesuffix(".git")


def badge_line(notebook_name: str, repository: str) -> str:
    """One markdown line: an "Open In Colab" and an "Open In Kaggle" badge for notebooks/<notebook_name>."""
    github_path = repository.removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{github_path}/blob/main/notebooks/{notebook_name}"
    kaggle = f"https://kaggle.com/kernels/welcome?src={repository}/blob/main/notebooks/{notebook_name}"
    return (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) "
        f"[![Open In Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)]({kaggle})"
    )


INSTALL_CELL = '''\
# Colab and Kaggle only: fetch the suite and install it around the runtime's own jax/jaxlib
# (they carry the TPU/GPU support). On your own machine this cell does nothing.
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

repository = "{repository}"  # @param {{type:"string"}}

on_colab = "google.colab" in sys.modules
on_kaggle = "KAGGLE_KERNEL_RUN_TYPE" in os.environ or Path("/kaggle/working").is_dir()


def run_or_stop(command, what_failed, what_to_do):
    """Run a command; if it fails, stop here with one message instead of a cascade of errors."""
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        last_lines = "\\n".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"{{what_failed}}: {{last_lines}}\\n{{what_to_do}}")


if on_colab or on_kaggle:
    checkout = Path.cwd() / "mlsys-notebooks"  # /content on Colab, /kaggle/working on Kaggle
    if not checkout.is_dir():
        run_or_stop(
            ["git", "clone", "--quiet", "--depth", "1", repository, str(checkout)],
            f"Could not clone {{repository}}",
            "Check the address in the form field above"
            + (" and turn on Internet in the notebook's settings (Kaggle)." if on_kaggle else "."),
        )
    runtime_jax = []  # keep the runtime's own jax and jaxlib: pip must not replace them
    for name in ("jax", "jaxlib"):
        try:
            runtime_jax.append(f"{{name}}=={{metadata.version(name)}}")
        except metadata.PackageNotFoundError:
            pass
    run_or_stop(
        [sys.executable, "-m", "pip", "install", "--quiet", "-e", str(checkout), *runtime_jax],
        f"Could not install the suite from {{checkout}}",
        f"Delete {{checkout}} and run this cell again; if it fails again, report it at {{repository}}",
    )
    sys.path.insert(0, str(checkout))
    print("Installed mlsys_core from", checkout, "keeping", " ".join(runtime_jax) or "no jax")
'''


def install_cell(repository: str) -> str:
    """The first code cell of every notebook, with `repository` as the form field's default."""
    return INSTALL_CELL.format(repository=repository).rstrip("\n")


def with_badges(markdown: str, notebook_name: str, repository: str) -> str:
    """`markdown` with its badge line replaced (or, if it has none, added after its title line)."""
    lines = markdown.split("\n")
    badge = badge_line(notebook_name, repository)
    kept = [line for line in lines if not line.startswith(BADGE_PREFIXES)]
    at = next((i for i, line in enumerate(lines) if line.startswith(BADGE_PREFIXES)), None)
    if at is None:
        title = next((i for i, line in enumerate(lines) if line.startswith("#")), -1)
        kept[title + 1 : title + 1] = ["", badge] if title >= 0 else [badge, ""]
    else:
        kept.insert(at, badge)
    return "\n".join(kept)


def header_cells(nb, notebook_name: str, repository: str) -> tuple[str, str]:
    """What the first markdown cell and the first code cell of `nb` should hold."""
    first_markdown = next(c for c in nb.cells if c.cell_type == "markdown")
    return with_badges(first_markdown.source, notebook_name, repository), install_cell(repository)


def is_current(nb, notebook_name: str, repository: str) -> bool:
    """True if `nb` already has the generated header cells and kernelspec."""
    first_markdown = next(c for c in nb.cells if c.cell_type == "markdown")
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    return ((first_markdown.source, first_code.source) == header_cells(nb, notebook_name, repository)
            and dict(nb.metadata.get("kernelspec", {})) == KERNELSPEC)


def apply(path: pathlib.Path, repository: str) -> bool:
    """Rewrite the header and kernelspec of the notebook at `path`; return True if the file changed."""
    nb = nbformat.read(path, as_version=4)
    if is_current(nb, path.name, repository):
        return False
    markdown, code = header_cells(nb, path.name, repository)
    first_markdown = next(c for c in nb.cells if c.cell_type == "markdown")
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    first_markdown.source, first_code.source = markdown, code
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nbformat.write(nb, path)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=pathlib.Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a header or kernelspec differs")
    args = parser.parse_args(argv)
    repository = repository_url()
    stale = []
    for path in args.notebooks:
        if args.check:
            if not is_current(nbformat.read(path, as_version=4), path.name, repository):
                stale.append(path)
        elif apply(path, repository):
            print(f"rewrote the header of {path}")
    for path in stale:
        print(f"{path}: header or kernelspec differs from `python scripts/notebook_header.py {path}`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
