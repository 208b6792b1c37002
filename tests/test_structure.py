"""The package's shape: one import name, no import cycles, small modules and functions."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Package folder -> import name (pyproject.toml's package-dir).
PACKAGES = {"ferlite": "ferlite", "edge": "ferlite.edge", "trainer": "ferlite.trainer",
            "converters": "ferlite.converters"}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, Path]:
    """Import name -> file, for every module of the package."""
    found = {}
    for folder, name in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([name, *parts])] = path
    return found


def _type_checking(node: ast.If) -> bool:
    return isinstance(node.test, (ast.Name, ast.Attribute)) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package modules ``path`` imports, at module level or inside functions (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _type_checking(node)
            for child in node.body for n in ast.walk(child)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                found.add(target if target in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in known}


def test_the_wheel_installs_one_top_level_name(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                        "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("ferlite-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["ferlite"]
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"ferlite"}
    assert "ferlite/edge/models/ferlite_cnn48_w_ferplus_int8.tflite" in names
    assert "ferlite/edge/data/default.toml" in names


def test_python_m_ferlite_and_the_script_are_the_same_command():
    r = subprocess.run([sys.executable, "-m", "ferlite", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("ferlite ")


def test_no_import_cycles():
    known = modules()
    graph = {name: imports_of(path, set(known)) - {name} for name, path in known.items()}
    cycles = []

    def visit(name: str, stack: list[str], done: set[str]) -> None:
        for target in graph[name]:
            if target in stack:
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in done:
                visit(target, [*stack, target], done)
        done.add(name)

    done: set[str] = set()
    for name in graph:
        if name not in done:
            visit(name, [name], done)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_and_functions_stay_small(name):
    path = modules()[name]
    text = path.read_text()
    assert text.count("\n") <= MAX_MODULE_LINES, f"{path}: {text.count(chr(10))} lines"
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path}: {', '.join(long)}"
