"""The shape of the code, checked: which package may import which, and no cycles.

The graph is read from the source (every ``import``, also those inside functions), so a lazy
import cannot hide a dependency; a subprocess then checks what the inference commands really
load.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "poseshift"
# Inference and data handling never need the training stack (DESIGN: data flows one way).
NO_TRAINING = ("data", "datasets", "models", "evaluate", "predict", "run", "spec", "device")
INFERENCE_ENTRY_POINTS = (
    "poseshift.predict.video",
    "poseshift.predict.labeled_video",
    "poseshift.predict.export",
    "poseshift.evaluate.evaluate",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def graph() -> dict[str, dict[str, set[str]]]:
    """module -> {"top": imports at module level, "all": every import}, names as imported."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text(), str(path))
        top = {n for node in tree.body for n in imported(node, package)}
        every = {n for node in ast.walk(tree) for n in imported(node, package)}
        modules[name] = {"top": top, "all": every}
    return modules


def imported(node: ast.AST, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = ".".join([*base, node.module] if node.module else base)
        else:
            module = node.module or ""
        # "from poseshift.x import y" may import the module poseshift.x.y
        return [module] + [f"{module}.{alias.name}" for alias in node.names]
    return []


def internal(names: set[str]) -> set[str]:
    return {n for n in names if n in graph()}


def closure(start: str) -> set[str]:
    """Every name imported, directly or through poseshift modules, from ``start``."""
    seen, todo, names = set(), [start], set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        names |= graph()[module]["all"]
        todo += internal(graph()[module]["all"])
        parent = module.rsplit(".", 1)[0]  # importing a module runs its package __init__
        if parent in graph():
            todo.append(parent)
    return names | seen


def test_the_graph_sees_the_package() -> None:
    assert {"poseshift.train.trainer", "poseshift.run", "poseshift.predict.video"} <= set(graph())
    assert "poseshift.run" in graph()["poseshift.train.trainer"]["top"]


@pytest.mark.parametrize("area", NO_TRAINING)
def test_no_training_code_outside_train(area: str) -> None:
    offenders = {
        (module, name)
        for module, edges in graph().items()
        if module == f"poseshift.{area}" or module.startswith(f"poseshift.{area}.")
        for name in edges["all"]
        if name == "poseshift.train" or name.startswith("poseshift.train.")
    }
    assert not offenders, f"{area} imports training code: {sorted(offenders)}"


@pytest.mark.parametrize("entry", INFERENCE_ENTRY_POINTS)
def test_inference_never_reaches_training_or_augmentation(entry: str) -> None:
    names = closure(entry)
    assert not {n for n in names if n.startswith(("poseshift.train", "poseshift.study"))}
    assert not {n for n in names if n.split(".")[0] in ("albumentations", "ray")}


def test_no_import_cycles_at_module_level() -> None:
    """A cycle of module-level imports breaks as soon as someone imports the other end."""
    edges = {m: internal(e["top"]) - {m} for m, e in graph().items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for other in sorted(edges[module]):
            if state.get(other) == 1:
                cycle = [*stack[stack.index(other) :], other]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if other not in state:
                visit(other)
        stack.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)


def test_inference_commands_load_no_training_stack() -> None:
    code = (
        "import sys\n"
        f"for name in {(*INFERENCE_ENTRY_POINTS, 'poseshift.cli.analyze')!r}: __import__(name)\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('albumentations', 'poseshift.train',"
        " 'poseshift.study', 'ray')))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == ""


def test_importing_poseshift_has_no_side_effects() -> None:
    code = "import os, poseshift; print(os.environ.get('OMP_WAIT_POLICY', ''))"
    env = {k: v for k, v in __import__("os").environ.items() if k != "OMP_WAIT_POLICY"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.stdout.strip() == ""
