"""The notebooks' install cell, run as Colab and Kaggle would run it, against the local checkout.

A fresh virtualenv (made from this interpreter with --system-site-packages, plus a .pth onto this environment's
site-packages, so jax and the rest need not download) plays the runtime; a stand-in `google.colab` module makes the
cell believe it is on Colab. The cell's form field is pointed at a `file://` URL of this repository, so the cell
clones the committed HEAD and pip-installs it; then `mlsys_core` must import from that clone and print
`backend.info()`. A bad URL must stop the cell with one message, not a cascade ending in ModuleNotFoundError.
"""

import os
import pathlib
import site
import subprocess
import sys
import tempfile

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CELL = next(c.source for c in nbformat.read(ROOT / "notebooks" / "00_start_here.ipynb", as_version=4).cells
            if c.cell_type == "code")
AFTER = """
from mlsys_core import backend

backend.setup(cpu_devices=8)
import mlsys_core

print("mlsys_core from", mlsys_core.__file__)
print(backend.info())
print("devices:", backend.info().platform, backend.info().device_count)
"""


def _repository_default() -> str:
    line = next(line for line in CELL.splitlines() if "# @param" in line)
    return line.split('"')[1]


def _script(tmp: pathlib.Path, repository: str) -> pathlib.Path:
    cell = CELL.replace(f'"{_repository_default()}"', f'"{repository}"')
    assert cell != CELL, "the install cell's form field was not found"
    path = tmp / "cell.py"
    path.write_text(cell + "\n" + AFTER)
    return path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KAGGLE_KERNEL_RUN_TYPE")}
    env.update(JAX_PLATFORMS="cpu", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


@pytest.fixture
def tmp_path():
    """A scratch directory removed after the test (the clone and the virtualenv are not kept)."""
    with tempfile.TemporaryDirectory(prefix="colab-cell-") as tmp:
        yield pathlib.Path(tmp)


@pytest.fixture
def runtime(tmp_path):
    """A fresh virtualenv that sees this environment's packages, and a stand-in `google.colab` module."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    pathlib.Path(purelib, "this_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    stand_in = tmp_path / "stand_in" / "google" / "colab"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text('"""Stand-in for Colab\'s module: its presence means "on Colab"."""\n')
    (stand_in / "output.py").write_text('"""jax imports google.colab.output when it sees google.colab."""\n')
    content = tmp_path / "content"  # Colab's working directory
    content.mkdir()
    return python, tmp_path / "stand_in", content


@pytest.mark.slow
def test_on_colab_the_cell_installs_the_checkout_and_mlsys_core_runs(runtime, tmp_path):
    python, stand_in, content = runtime
    script = _script(tmp_path, ROOT.as_uri())
    prelude = (f"import sys; sys.path.insert(0, {str(stand_in)!r}); import google.colab; "
               f"exec(open({str(script)!r}).read())")
    done = subprocess.run([python, "-c", prelude], cwd=content, env=_env(), capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    checkout = content / "mlsys-notebooks"
    assert (checkout / "mlsys_core" / "backend.py").is_file(), "the cell clones into the working directory"
    assert f"Installed mlsys_core from {checkout} keeping jax==" in done.stdout
    assert f"mlsys_core from {checkout / 'mlsys_core'}" in done.stdout, "mlsys_core must come from the clone"
    assert "devices: cpu 8" in done.stdout, done.stdout
    installed = subprocess.run([python, "-m", "pip", "show", "-f", "mlsys-notebooks"], env=_env(),
                               capture_output=True, text=True)
    assert "Location: " + str(python.parent.parent) in installed.stdout, "installed into the fresh runtime"


def test_on_kaggle_a_failed_clone_stops_with_one_message(tmp_path):
    bad = (tmp_path / "no-such-repository").as_uri()
    script = _script(tmp_path, bad)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          env=_env(KAGGLE_KERNEL_RUN_TYPE="Interactive"), timeout=60)
    assert done.returncode != 0
    assert done.stderr.count("Traceback") == 1 and "ModuleNotFoundError" not in done.stderr
    message = done.stderr.strip().splitlines()
    assert message[-1] == ("Check the address in the form field above "
                           "and turn on Internet in the notebook's settings (Kaggle).")
    assert any(line.startswith(f"RuntimeError: Could not clone {bad}: ") for line in message), done.stderr
    assert "mlsys_core from" not in done.stdout, "the cells after the install must not run"
    assert not (tmp_path / "mlsys-notebooks").exists()


def test_elsewhere_the_cell_does_nothing(tmp_path):
    script = tmp_path / "cell.py"
    script.write_text(CELL)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          env=_env(), timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cell.py"]
