"""Every notebook keeps the suite's conventions (DESIGN.md): generated badges and install cell first,
backend before JAX, committed executed, at least one checked output, small, and no machine-specific paths."""

import importlib.util
import pathlib
import re

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_the_notebooks_are_there():
    names = {p.stem for p in NOTEBOOKS}
    assert "00_start_here" in names


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.name)
def notebook(request):
    return request.param, nbformat.read(request.param, as_version=4)


def _header_script():
    spec = importlib.util.spec_from_file_location("notebook_header", ROOT / "scripts" / "notebook_header.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HEADER = _header_script()
REPOSITORY = HEADER.repository_url()


def test_first_cells_are_the_generated_badges_and_install_cell_then_backend(notebook):
    path, nb = notebook
    first_md = next(c for c in nb.cells if c.cell_type == "markdown")
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    markdown, install = HEADER.header_cells(nb, path.name, REPOSITORY)
    assert first_md.source == markdown, f"run `python scripts/notebook_header.py notebooks/{path.name}`"
    assert code[0] == install, f"run `python scripts/notebook_header.py notebooks/{path.name}`"
    assert "backend.setup(" in code[1]


def test_opens_unmodified_in_lab(notebook):
    """JupyterLab rewrites a kernelspec that differs from the running kernel's and marks the notebook modified."""
    path, nb = notebook
    assert dict(nb.metadata.get("kernelspec", {})) == HEADER.KERNELSPEC, (
        f"run `python scripts/notebook_header.py notebooks/{path.name}`")
    assert (nb.nbformat, nb.nbformat_minor) >= (4, 5), "cell ids (nbformat 4.5), as Lab saves them"


def test_the_header_kernelspec_is_the_one_ipykernel_installs():
    from ipykernel.kernelspec import get_kernel_dict

    installed = get_kernel_dict()
    assert {k: installed[k] for k in ("display_name", "language")} == {
        k: HEADER.KERNELSPEC[k] for k in ("display_name", "language")}


def test_the_header_script_sets_the_kernelspec_and_touches_nothing_else(tmp_path):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"display_name": "Python 3", "language": "python",
                                                           "name": "python3"}, "custom": 1})
    nb.cells = [nbformat.v4.new_markdown_cell("# T"), nbformat.v4.new_code_cell("old"),
                nbformat.v4.new_code_cell("x = 1")]
    path = tmp_path / "t.ipynb"
    nbformat.write(nb, path)
    assert HEADER.apply(path, REPOSITORY)
    again = nbformat.read(path, as_version=4)
    assert dict(again.metadata.kernelspec) == HEADER.KERNELSPEC and again.metadata.custom == 1
    assert [c.source for c in again.cells][2:] == ["x = 1"]
    assert not HEADER.apply(path, REPOSITORY), "idempotent"


def test_the_badges_point_at_this_notebook_on_colab_and_kaggle():
    line = HEADER.badge_line("04_tictac.ipynb", "https://github.com/someone/fork")
    assert "colab.research.google.com/github/someone/fork/blob/main/notebooks/04_tictac.ipynb" in line
    assert "kaggle.com/kernels/welcome?src=https://github.com/someone/fork/blob/main/notebooks/04_tictac.ipynb" in line


def test_the_header_script_is_idempotent_and_adds_missing_badges():
    once = HEADER.with_badges("# Title\n\nText.", "x.ipynb", REPOSITORY)
    assert once.split("\n")[:3] == ["# Title", "", HEADER.badge_line("x.ipynb", REPOSITORY)]
    assert HEADER.with_badges(once, "x.ipynb", REPOSITORY) == once
    moved = HEADER.with_badges(once, "x.ipynb", "https://github.com/someone/fork")
    assert REPOSITORY not in moved and moved.count("[![Open In") == 2


def test_the_install_cell_takes_the_address_from_a_form_field():
    cell = HEADER.install_cell("https://example.org/fork")
    assert 'repository = "https://example.org/fork"  # @param {type:"string"}' in cell
    assert cell.count("https://example.org/fork") == 1, "everything else in the cell reads the form field"


def test_the_repository_address_is_written_only_in_pyproject():
    """Generated copies in the notebooks' header cells aside, nothing else spells the address out."""
    owner_and_name = REPOSITORY.removeprefix("https://github.com/")
    skip = {".git", ".venv", "build", "__pycache__", ".ipynb_checkpoints", ".hypothesis", ".pytest_cache"}
    found = []
    for path in ROOT.rglob("*"):
        parts = set(path.relative_to(ROOT).parts)
        if not path.is_file() or skip & parts or any(p.endswith(".egg-info") for p in parts):
            continue
        if path.suffix == ".ipynb":
            cells = nbformat.read(path, as_version=4).cells
            header = {id(next(c for c in cells if c.cell_type == kind)) for kind in ("markdown", "code")}
            text = "".join(c.source for c in cells if id(c) not in header)
            text += "".join(str(c.get("outputs", "")) for c in cells)
        else:
            try:
                text = path.read_text()
            except (UnicodeDecodeError, OSError):
                continue
        if owner_and_name in text:
            found.append(str(path.relative_to(ROOT)))
    assert sorted(found) == ["pyproject.toml"]


def test_every_notebook_has_the_same_colab_cell():
    cells = {p.name: next(c.source for c in nbformat.read(p, as_version=4).cells if c.cell_type == "code")
             for p in NOTEBOOKS}
    assert len(set(cells.values())) == 1, "run `python scripts/notebook_header.py notebooks/*.ipynb`"


def test_committed_executed_with_checked_outputs(notebook):
    path, nb = notebook
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert all(c.execution_count is not None for c in code), f"{path.name} has cells that were not run"
    checked = [c for c in code if "nbval-check-output" in c.metadata.get("tags", [])]
    assert checked and all(c.outputs for c in checked)


def test_what_a_student_reads_fits_and_carries_no_test_markers(notebook):
    """Test markers live in cell tags, code lines fit a 100-character Lab column, every control is labelled."""
    path, nb = notebook
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert "NBVAL" not in cell.source, f"{path.name} cell {i}: use the nbval-check-output tag, not a comment"
        wide = [line for line in cell.source.splitlines() if len(line) > 100]
        assert not wide, f"{path.name} cell {i} has lines over 100 characters: {wide[:2]}"
        if "widgets.explore(" in cell.source:
            assert "labels=" in cell.source, f"{path.name} cell {i}: give widgets.explore labels with units"


def test_small_and_free_of_machine_paths(notebook):
    path, _ = notebook
    text = path.read_text()
    assert path.stat().st_size < 2_000_000
    assert not re.search(r"/(work|root|home|tmp)/", text)


CHECK_CALL = re.compile(r"""report\.check\(\s*["']([a-z0-9_.]+)["']""")


def _code(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def test_no_notebook_chooses_a_verdict(notebook):
    path, nb = notebook
    code = _code(nb)
    assert "report.record(" not in code, f"{path.name} records a claim by hand; use report.check"
    assert not re.search(r"verdict\s*=", code), f"{path.name} passes a verdict; the claim's rule decides"
    for verdict in ("reproduced", "not comparable"):
        assert not re.search(rf"""["'](partly |not )?{verdict}["']""", code), f"{path.name} spells out a verdict"


def test_every_declared_claim_is_checked_by_exactly_one_cell():
    from mlsys_core import claims

    where: dict[str, list[str]] = {}
    for path in NOTEBOOKS:
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "code":
                for claim_id in CHECK_CALL.findall(cell.source):
                    where.setdefault(claim_id, []).append(f"{path.name} cell {i}")
    assert set(where) == set(claims.REGISTRY), {
        "checked but not declared": sorted(set(where) - set(claims.REGISTRY)),
        "declared but never checked": sorted(set(claims.REGISTRY) - set(where)),
    }
    assert {k: v for k, v in where.items() if len(v) > 1} == {}
