"""pyproject.toml is the one source of dependencies; environment.yml only installs the package from it."""

import pathlib
import re

import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_environment_installs_the_package_with_all_extras():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = set(pyproject["project"]["optional-dependencies"])
    env = (ROOT / "environment.yml").read_text()
    m = re.search(r"^\s*- -e \.\[([\w,]+)\]\s*$", env, re.M)
    assert m, "environment.yml must install the package with `-e .[extras]` under pip:"
    assert set(m.group(1).split(",")) == extras


def test_environment_lists_no_other_package():
    env = (ROOT / "environment.yml").read_text().split("dependencies:", 1)[1]
    deps = re.findall(r"^\s*-\s+([A-Za-z][\w.-]*)", env, re.M)
    assert set(deps) <= {"python", "pip"}, deps


def test_python_versions_agree():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    low = pyproject["project"]["requires-python"].removeprefix(">=")
    env_py = re.search(r"python=(\d+\.\d+)", (ROOT / "environment.yml").read_text()).group(1)
    assert tuple(map(int, env_py.split("."))) >= tuple(map(int, low.split(".")))
