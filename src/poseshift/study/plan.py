"""Study plans: which runs a study trains and evaluates, as a validated YAML file.

A plan names a project (or a synthetic benchmark to generate), a split, and grids of
backbones x inits x shuffles x fractions with a preset and overrides (recipe and execution
keys, checked by ``poseshift.spec.resolve_settings`` like CLI options); ``extra`` grids add
runs such as the paper's 600k-iteration ResNet-50 runs. ``expand`` turns a plan into the
list of runs. A run id is readable (backbone, init, shuffle, fraction, preset) plus a short
hash of the recipe keys its overrides changed and of the paths of an init or preset file
(named by their stem), so two different runs never share a run directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from poseshift.config import from_dict, load_yaml
from poseshift.errors import PoseshiftError
from poseshift.models.backbones import BACKBONES
from poseshift.spec import (
    Execution,
    RunSpec,
    TrainConfig,
    recipe_changes,
    recipe_dict,
    resolve_settings,
)


@dataclass
class SynthSpec:
    """Generate the synthetic benchmark at ``project`` when it does not exist yet."""

    individuals: int = 30
    frames_per_individual: int = 40
    size: tuple[int, int] = (288, 162)
    domain_shift: float = 1.0
    seed: int = 0


@dataclass
class SplitSpec:
    name: str = "horse10-g10-s0"
    scheme: Literal["horse10", "random"] = "horse10"
    train_groups: int = 10
    shuffles: int = 3
    fractions: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.2, 0.5, 0.9])
    seed: int = 0
    from_files: str | None = None  # folder with the official TrainTestInfo_shuffle*.csv


@dataclass
class Grid:
    backbones: list[str]
    inits: list[str] = field(default_factory=lambda: ["imagenet", "scratch"])
    shuffles: list[int] | None = None  # None: every shuffle of the split
    fractions: list[float] | None = None  # None: every fraction of the split
    preset: str = "paper"
    overrides: dict = field(default_factory=dict)  # recipe or execution keys, e.g. iterations


@dataclass
class EvalSpec:
    snapshots: Literal["all", "last"] | int = "all"
    plot: int = 2
    scale_pair: list[str] | None = None
    scale_file: str | None = None
    adapted: bool = False  # also each OOD group after AdaBN on its own frames (ood_adapted)


@dataclass
class Plan:
    name: str
    project: str
    grid: Grid
    split: SplitSpec = field(default_factory=SplitSpec)
    extra: list[Grid] = field(default_factory=list)
    synth: SynthSpec | None = None
    evaluate: EvalSpec = field(default_factory=EvalSpec)
    device: str = "auto"  # the runs' execution.device unless an override sets it


@dataclass
class PlannedRun:
    run_id: str
    spec: RunSpec


def shipped_plans() -> list[str]:
    folder = resources.files("poseshift") / "plans"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def load_plan(name_or_path: str | Path, project: str | Path | None = None) -> Plan:
    """A shipped plan by name or a YAML file; ``project`` overrides the plan's project."""
    path = Path(name_or_path)
    if not path.exists() and not path.suffix:
        if str(name_or_path) not in shipped_plans():
            raise PoseshiftError(
                f"no plan file {path} and no shipped plan of that name ({shipped_plans()})"
            )
        path = Path(str(resources.files("poseshift") / "plans" / f"{name_or_path}.yaml"))
    plan = from_dict(Plan, load_yaml(path), str(path))
    if project is not None:
        plan = dataclasses.replace(plan, project=str(project))
    _validate(plan, path)
    return plan


def _validate(plan: Plan, path: Path) -> None:
    for where, grid in _grids(plan):
        unknown = [b for b in grid.backbones if b not in BACKBONES]
        if unknown:
            raise PoseshiftError(
                f"{path}: {where}.backbones: unknown backbone {unknown[0]!r} "
                f"(known: {', '.join(BACKBONES)})"
            )
        fractions = set(grid.fractions or []) - set(plan.split.fractions)
        if fractions:
            raise PoseshiftError(
                f"{path}: {where}.fractions {sorted(fractions)} are not in split.fractions"
            )
        grid_settings(grid, plan.device, f"{path}: {where}.overrides")


def grid_settings(grid: Grid, device: str, where: str) -> tuple[TrainConfig, Execution]:
    """The grid's preset with its overrides, checked like a preset file and CLI options."""
    return resolve_settings(grid.preset, {"device": device, **grid.overrides}, where=where)


def run_id(
    backbone: str, init: str, shuffle: int, fraction: float, preset: str, changes: dict
) -> str:
    """``<backbone>-<init>-s<shuffle>-f<fraction>-<preset>``, plus ``-<hash>`` of the recipe
    keys the overrides changed and of an init or preset file's path (none: no suffix)."""
    identity = dict(changes)
    init_name = init
    if init not in ("imagenet", "scratch"):
        init_name, identity["init_file"] = Path(init).stem, init
    if Path(preset).suffix:  # a YAML file, not a shipped preset's name
        identity["preset_file"] = preset
    name = f"{backbone}-{init_name}-s{shuffle}-f{fraction:g}-{Path(preset).stem}"
    if not identity:
        return name
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:6]}"


def expand(plan: Plan) -> list[PlannedRun]:
    """Every run of the plan, in a stable order (grid first, then extras)."""
    runs: dict[str, PlannedRun] = {}
    for where, grid in _grids(plan):
        train, execution = grid_settings(grid, plan.device, f"plan {plan.name}: {where}")
        changes = recipe_changes(train, grid.preset)
        shuffles = grid.shuffles or list(range(1, plan.split.shuffles + 1))
        for backbone in grid.backbones:
            for init in grid.inits:
                for shuffle in shuffles:
                    for fraction in grid.fractions or plan.split.fractions:
                        key = run_id(backbone, init, shuffle, fraction, grid.preset, changes)
                        spec = RunSpec(
                            project=str(Path(plan.project).resolve()),
                            backbone=backbone,
                            split=plan.split.name,
                            shuffle=shuffle,
                            fraction=fraction,
                            init=init,
                            preset=grid.preset,
                            train=train,
                            execution=execution,
                        )
                        if key in runs and recipe_dict(runs[key].spec) != recipe_dict(spec):
                            raise PoseshiftError(
                                f"plan {plan.name}: two different runs would share the id "
                                f"{key} ({where}); give one of them another preset or init file"
                            )
                        runs.setdefault(key, PlannedRun(key, spec))  # same run: listed once
    return list(runs.values())


def _grids(plan: Plan) -> list[tuple[str, Grid]]:
    return [("grid", plan.grid)] + [(f"extra[{i}]", g) for i, g in enumerate(plan.extra)]
