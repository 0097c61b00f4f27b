"""With `setup(cpu_devices=1)` on a CPU machine, every mesh entry point says what it needs.

Runs in a subprocess (the test session has 8 devices, fixed when JAX started). Each entry point must
raise `ValueError` naming the counts and the call that fixes it before training anything, and the
single-device work of the same modules must still run.
"""

import json
import subprocess
import sys
import textwrap

import pytest

CHILD = """
import json
from mlsys_core import backend
backend.setup(cpu_devices=1)
from mlsys_core.synergy import fedsgd
from mlsys_core.sharding import experiments, models, spmd, strategies

calls = {
    "data_mesh": lambda: strategies.data_mesh(),
    "model_parallel_mesh": lambda: spmd.model_parallel_mesh(2, 4),
    "bn_mesh": lambda: spmd.bn_mesh(8, 2),
    "strategy_agreement": lambda: experiments.strategy_agreement(seeds=(0,), steps=1),
    "profile_with_cost_model": lambda: experiments.profile_with_cost_model(models.FFNStack(16, 64, 1)),
    "bf16_experiment": lambda: experiments.bf16_experiment(steps=1),
    "bn_group_experiment": lambda: experiments.bn_group_experiment(steps=1),
    "explore_config": lambda: experiments.explore_config(width=16, repeats=1),
    "data_parallel_vs_fedsgd": lambda: fedsgd.data_parallel_vs_fedsgd(steps=1),
}
out = {}
for name, call in calls.items():
    try:
        call()
        out[name] = "ran"
    except ValueError as e:
        out[name] = str(e)
one = experiments.calibrate_one_device(models.FFNStack(16, 64, 1), batch=4, repeats=1)
out["one_device_terms_positive"] = all(t > 0 for t in one)
out["one_device_mesh"] = strategies.data_mesh(1).size
out["info"] = str(backend.info())
print(json.dumps(out))
"""


def test_mesh_entry_points_on_one_cpu_device_name_what_they_need():
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    for name in ("data_mesh", "model_parallel_mesh", "bn_mesh", "strategy_agreement", "profile_with_cost_model",
                 "bf16_experiment", "bn_group_experiment", "explore_config", "data_parallel_vs_fedsgd"):
        message = out[name]
        assert message.startswith("a mesh of n=8 devices needs 8 devices: the default backend (cpu) has 1 "
                                  "and the CPU backend has 1"), (name, message)
        assert "setup(cpu_devices=8)" in message and "Restart the kernel" in message, (name, message)
    assert out["one_device_terms_positive"] is True and out["one_device_mesh"] == 1
    assert out["info"].startswith("cpu: 1 x cpu") and "no mesh of 8: 1 CPU device(s)" in out["info"]


def _notebook_until_first_mesh(path: str, marker: str):
    """The notebook's cells up to the first that builds a mesh (`marker`), set up with one CPU device."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code" and "backend.setup(cpu_devices=8)" in cell.source:
            cell.source = cell.source.replace("backend.setup(cpu_devices=8)", "backend.setup(cpu_devices=1)")
        cells.append(cell)
        if cell.cell_type == "code" and marker in cell.source:
            break
    nb.cells = cells
    return nb


@pytest.mark.parametrize("path, marker", [("notebooks/00_start_here.ipynb", "jax.make_mesh"),
                                          ("notebooks/01_tpu_concurrency.ipynb", "strategies.data_mesh")])
def test_notebook_on_one_cpu_device_stops_at_its_first_mesh_saying_what_it_needs(path, marker):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = _notebook_until_first_mesh(path, marker)
    with pytest.raises(CellExecutionError) as failure:
        NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    assert failure.value.ename == "ValueError"
    assert "a mesh of n=8 devices needs 8 devices: the default backend (cpu) has 1" in failure.value.evalue
    setup_out = "".join(o.get("text", "") for c in nb.cells if "cpu_devices=1" in c.source for o in c.outputs)
    assert "no mesh of 8: 1 CPU device(s), call setup(cpu_devices=8)" in setup_out
