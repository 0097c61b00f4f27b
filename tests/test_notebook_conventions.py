"""Every notebook keeps the suite's conventions (DESIGN.md): Colab cell first, backend before JAX,
committed executed, at least one checked output, small, and no machine-specific paths."""

import pathlib
import re

import nbformat
import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_the_notebooks_are_there():
    names = {p.stem for p in NOTEBOOKS}
    assert "00_start_here" in names


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.name)
def notebook(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_first_cells_are_badge_colab_install_then_backend(notebook):
    path, nb = notebook
    first_md = next(c for c in nb.cells if c.cell_type == "markdown")
    assert f"blob/main/notebooks/{path.name}" in first_md.source, "Colab badge must point at this notebook"
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert 'if "google.colab" in sys.modules:' in code[0]
    assert '"jax=={jax.__version__}"' in code[0], "the Colab cell must keep Colab's own jax"
    assert "import jaxlib" in code[0], "the Colab cell's %pip line reads jaxlib's version"
    assert "backend.setup(" in code[1]


def test_every_notebook_has_the_same_colab_cell():
    cells = {p.name: next(c.source for c in nbformat.read(p, as_version=4).cells if c.cell_type == "code")
             for p in NOTEBOOKS}
    assert len(set(cells.values())) == 1, "copy notebook 00's Colab cell into every notebook"


def test_committed_executed_with_checked_outputs(notebook):
    path, nb = notebook
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert all(c.execution_count is not None for c in code), f"{path.name} has cells that were not run"
    checked = [c for c in code if c.source.startswith("# NBVAL_CHECK_OUTPUT")]
    assert checked and all(c.outputs for c in checked)


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
