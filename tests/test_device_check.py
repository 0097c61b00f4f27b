"""scripts/device_check.sh, the one command for an accelerator machine: its quick benchmark section runs here."""

import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_bench_section_runs_the_fl_benchmark_and_repeats_its_result_line(tmp_path):
    out = subprocess.run(["bash", str(ROOT / "scripts" / "device_check.sh"), "--quick", "--out", str(tmp_path),
                          "bench"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    summary = out.stdout.split("=== summary")[-1]
    result = [line for line in summary.splitlines() if line.startswith("RESULT fl ")]
    assert len(result) == 1 and "day_20k_seconds=" in result[0] and "flower_speedup" not in result[0], summary
    assert (tmp_path / "bench-fl.log").read_text().count("one simulated day, goal 100") == 1


def test_unknown_sections_are_refused():
    out = subprocess.run(["bash", str(ROOT / "scripts" / "device_check.sh"), "benchmarks"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "unknown argument 'benchmarks'" in out.stderr
