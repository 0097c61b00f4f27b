"""Unit tests run on 8 simulated CPU devices (also on a GPU machine: JAX_PLATFORMS=cpu)."""

from mlsys_core import backend

backend.setup(cpu_devices=8)


def pytest_terminal_summary(terminalreporter):
    """One line saying how many calls the input fuzzer made (tests/test_fuzz_inputs.py), over how many entry points."""
    calls, entries = 0, set()
    for reports in terminalreporter.stats.values():
        for report in reports:
            for key, value in getattr(report, "user_properties", ()):
                if key == "fuzz_calls" and report.when == "teardown":  # recorded after the test body
                    calls += value
                    entries.add(report.nodeid.split("[", 1)[-1].rstrip("]"))
    if calls:
        terminalreporter.write_line(f"input fuzzing: {calls} calls over {len(entries)} public entry points")
