"""The wing contract (CONTRIBUTING.md), checked on the code: file sizes, the import graph, `__init__` files, and
one convention for results. Read from the source with `ast`, so nothing here imports JAX."""

import ast
import dataclasses
import importlib
import inspect
import pathlib
import typing

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "mlsys_core"
WINGS = ("sharding", "bandana", "fl", "tictac", "synergy")
PAPER_WINGS = WINGS[:-1]
MAX_LINES = 500
FILES = sorted(ROOT.rglob("*.py"))


def _module(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path) -> set[str]:
    """The mlsys_core modules `path` imports, at any depth of the file (lazy imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            out |= {f"{base}.{a.name}" for a in node.names} | {base}
    return {name for name in out if name.startswith("mlsys_core")}


def _wing(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in WINGS else None


def test_no_file_is_longer_than_a_reader_holds_in_their_head():
    lines = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in FILES}
    long = {name: n for name, n in lines.items() if n > MAX_LINES}
    assert not long, f"files over {MAX_LINES} lines: {long}"


def test_a_paper_wing_imports_no_other_wing_and_synergy_no_experiments_or_plots():
    for path in FILES:
        mine = _wing(_module(path))
        for name in _imports(path):
            theirs = _wing(name)
            if mine is None or theirs in (None, mine):
                continue
            assert mine == "synergy", f"{_module(path)} imports {name}: only synergy combines wings"
            leaf = name.split(".")[2] if len(name.split(".")) > 2 else ""
            assert leaf not in ("experiments", "plots"), f"{_module(path)} imports {name}, another wing's {leaf}"


def test_the_import_graph_has_no_circle():
    modules = {_module(p): p for p in FILES}
    edges = {m: {i for i in _imports(p) if i in modules and i != m} for m, p in modules.items()}
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for n in edges[m]:
            if n.startswith(m + "."):  # a package importing its own submodules is not a circle
                continue
            assert state.get(n) != 1, f"import circle: {' -> '.join(trail + [m, n])}"
            if n not in state:
                visit(n, trail + [m])
        state[m] = 2

    for m in modules:
        if m not in state:
            visit(m, [])


@pytest.mark.parametrize("wing", WINGS)
def test_a_wing_init_is_a_docstring_only(wing):
    tree = ast.parse((ROOT / wing / "__init__.py").read_text(encoding="utf-8"))
    body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    assert ast.get_docstring(tree) and not body, f"mlsys_core/{wing}/__init__.py holds more than its docstring"


def _classes(wing: str):
    """Every class defined in the wing's modules, imported (the wings' imports start no JAX computation)."""
    for path in sorted((ROOT / wing).rglob("*.py")):
        module = importlib.import_module(_module(path))
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__:
                yield cls


def _is_named_tuple(cls) -> bool:
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


@pytest.mark.parametrize("wing", WINGS)
def test_results_are_frozen_dataclasses_and_named_tuples_only_carry_loop_state(wing):
    """Every public dataclass is frozen; a NamedTuple is state threaded through numba or jax.lax and says so.
    (A private class may hold a run's mutable bookkeeping.)"""
    for cls in _classes(wing):
        if cls.__name__.startswith("_"):
            continue
        if dataclasses.is_dataclass(cls):
            assert cls.__dataclass_params__.frozen, f"{cls.__module__}.{cls.__qualname__} is not frozen"
        elif _is_named_tuple(cls):
            doc = (cls.__doc__ or "").lower()
            assert "numba" in doc or "lax" in doc, (
                f"{cls.__module__}.{cls.__qualname__} is a NamedTuple; results are frozen dataclasses "
                "(a NamedTuple only for state threaded through numba or jax.lax, named so in its docstring)")


@pytest.mark.parametrize("wing", WINGS)
def test_every_experiment_says_what_it_returns(wing):
    """The public functions of a wing's experiments (all of synergy's modules but its plots) carry a return
    type, so a reader knows the result's shape without running them."""
    parts = ("experiments",) if wing != "synergy" else ()
    for path in sorted((ROOT / wing).rglob("*.py")):
        if (parts and not (set(parts) & set(path.with_suffix("").parts))) or path.stem in ("__init__", "plots"):
            continue
        module = importlib.import_module(_module(path))
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if not name.startswith("_") and fn.__module__ == module.__name__:
                assert "return" in typing.get_type_hints(fn), f"{module.__name__}.{name} has no return type"
