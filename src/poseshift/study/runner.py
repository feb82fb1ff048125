"""Run a study: train and evaluate every run of a plan, locally or on a Ray cluster.

Layout of a study directory: ``plan.yaml`` (the resolved plan), ``runs/<run_id>/`` (one run
directory each, plus ``status.json``), and the tables the analysis reads: ``results.csv``
(one row per run x partition x snapshot), ``results_bodyparts.csv`` and ``status.csv``.
Finished runs are not trained again (a plan that changed a finished run's settings is
refused) but are brought up to the plan's ``evaluate:`` block; interrupted ones resume,
failed ones are recorded and skipped until ``retry_failed``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from poseshift.config import to_dict
from poseshift.errors import PoseshiftError
from poseshift.fsutil import check_output_dir, write_atomic, write_text_atomic
from poseshift.models.backbones import BACKBONES
from poseshift.run import RunDir
from poseshift.spec import init_label
from poseshift.study.backends import Backend, LocalBackend, evaluate_planned
from poseshift.study.plan import EvalSpec, Plan, PlannedRun, expand
from poseshift.study.progress import StudyProgress
from poseshift.study.ray_backend import RayBackend

KEY_COLUMNS = [
    "run_id",
    "backbone",
    "init",
    "imagenet_top1",
    "shuffle",
    "fraction",
    "preset",
    "iteration",
    "partition",
]
METRIC_COLUMNS = ["n_images", "error_px", "normalized_error", "pck", "pck_threshold"]


@dataclass
class StudyResult:
    out_dir: Path
    done: list[str]
    failed: list[str]
    skipped: list[str]
    results: pd.DataFrame


def prepare_study(plan: Plan, out_dir: Path) -> list[PlannedRun]:
    """Make the data and split the plan needs (once) and record the plan; list its runs."""
    from poseshift.data.project import load_project
    from poseshift.data.scale import image_scales
    from poseshift.data.splits import (
        group_split,
        official_files,
        official_split,
        random_split,
        save_split,
        shuffle_number,
    )

    project = Path(plan.project)
    if plan.synth is not None and not (project / "config.yaml").exists():
        from poseshift.datasets.synthetic.generate import generate

        s = plan.synth
        generate(
            project,
            individuals=s.individuals,
            frames_per_individual=s.frames_per_individual,
            size=s.size,
            seed=s.seed,
            domain_shift=s.domain_shift,
        )
    dataset = load_project(project)
    if plan.evaluate.scale_file:  # every image needs its scale: refused now, not after training
        image_scales(dataset, None, plan.evaluate.scale_file)
    sp = plan.split
    if sp.from_files:
        files = official_files(sp.from_files, sp.shuffles)
        numbers = [shuffle_number(f) for f in files]
        if numbers != list(range(1, sp.shuffles + 1)):  # the plan's runs are shuffles 1..n
            raise PoseshiftError(
                f"split.from_files: {sp.from_files} holds TrainTestInfo_shuffle{numbers}.csv, "
                f"the plan needs shuffles 1 to {sp.shuffles}; set split.shuffles or add the files"
            )
        split = official_split(dataset, files, sp.fractions, sp.seed, sp.name)
    elif sp.scheme == "random":
        split = random_split(dataset, sp.shuffles, sp.fractions, sp.seed, sp.name)
    else:
        split = group_split(dataset, sp.train_groups, sp.shuffles, sp.fractions, sp.seed, sp.name)
    save_split(project, split)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "plan.yaml", yaml.safe_dump(to_dict(plan), sort_keys=False))
    return expand(plan)


def read_status(run_dir: Path) -> dict:
    return RunDir(run_dir).status()


def check_done_runs(runs: list[PlannedRun], out_dir: Path) -> None:
    """Refuse a plan whose "done" runs were trained with other settings (they would be skipped
    and reported as the plan's results)."""
    for planned in runs:
        run = RunDir(out_dir / "runs" / planned.run_id)
        if run.status()["status"] != "done":
            continue  # train() itself refuses an unfinished run of other settings
        difference = run.difference(planned.spec)
        if difference:
            raise PoseshiftError(
                f"{run.path} is done with other settings than this plan ({difference}), "
                "so the plan or its preset changed since; use a new --out, or run the plan "
                "with the poseshift version it was made with"
            )


def make_backend(
    name: str,
    *,
    address: str | None = None,
    cpus_per_run: float = 1,
    gpus_per_run: float = 0,
    max_parallel: int | None = None,
) -> Backend:
    """``local`` or ``ray``; a typo fails before any work."""
    if name == "local":
        # one process per GPU asked for; without GPUs each run keeps its plan's devices
        return LocalBackend(devices=int(gpus_per_run) or None)
    if name == "ray":
        return RayBackend(address, cpus_per_run, gpus_per_run, max_parallel)
    raise PoseshiftError(f"--backend must be 'local' or 'ray', got {name!r}")


def run_study(
    plan: Plan,
    out_dir: str | Path,
    *,
    backend: str = "local",
    address: str | None = None,
    cpus_per_run: float = 1,
    gpus_per_run: float = 0,
    max_parallel: int | None = None,
    retry_failed: bool = False,
    show_progress: bool = True,
) -> StudyResult:
    out_dir = check_output_dir(out_dir, "--out")
    executor = make_backend(
        backend,
        address=address,
        cpus_per_run=cpus_per_run,
        gpus_per_run=gpus_per_run,
        max_parallel=max_parallel,
    )
    check_done_runs(expand(plan), out_dir)  # before prepare_study rewrites plan.yaml
    runs = prepare_study(plan, out_dir)
    statuses = {r.run_id: read_status(out_dir / "runs" / r.run_id)["status"] for r in runs}
    todo = [
        r
        for r in runs
        if statuses[r.run_id] != "done" and (retry_failed or statuses[r.run_id] != "failed")
    ]
    skipped = [r.run_id for r in runs if r not in todo]
    progress = StudyProgress(runs, out_dir, statuses, enabled=show_progress)
    with progress:
        executor.run(todo, out_dir, plan.evaluate, progress)
    refresh_done_runs(plan, out_dir, skipped)
    results = collect_results(out_dir, runs, plan.evaluate)
    final = {r.run_id: read_status(out_dir / "runs" / r.run_id)["status"] for r in runs}
    return StudyResult(
        out_dir,
        done=[k for k, v in final.items() if v == "done" and k not in skipped],
        failed=[k for k, v in final.items() if v == "failed"],
        skipped=skipped,
        results=results,
    )


def refresh_done_runs(plan: Plan, out_dir: Path, run_ids: list[str]) -> None:
    """Bring runs that were already done up to this plan's ``evaluate:`` block (another
    snapshot choice, scale pair or the adapted arm); unchanged results are reused."""
    for run_id in run_ids:
        run_dir = out_dir / "runs" / run_id
        if read_status(run_dir)["status"] == "done":
            evaluate_planned(run_dir, plan.evaluate)


def run_top1(run_dir: Path, backbone: str) -> float:
    """The ImageNet top-1 of the weights a run started from (its network's origin)."""
    top1 = RunDir(run_dir).weights_origin().get("top1")
    return float(top1) if top1 is not None else BACKBONES[backbone].top1


def _rows(
    planned: PlannedRun, run_dir: Path, top1: dict[str, float], evaluation: EvalSpec
) -> tuple[list[dict], list[dict]]:
    spec = planned.spec
    key = {
        "run_id": planned.run_id,
        "backbone": spec.backbone,
        "init": init_label(spec.init),
        # a from-scratch twin sits at its pretrained twin's top-1 (the same network)
        "imagenet_top1": top1.get(spec.backbone) or run_top1(run_dir, spec.backbone),
        "shuffle": spec.shuffle,
        "fraction": spec.fraction,
        "preset": spec.preset,
    }
    rows, parts = [], []
    run = RunDir(run_dir)
    # what this plan evaluates, not what an earlier plan left in the run directory
    chosen = set(run.choose_snapshots(evaluation.snapshots))
    adapted = run.adapted_metrics_files() if evaluation.adapted else []
    for path in [*run.eval_metrics_files(), *adapted]:
        metrics = json.loads(path.read_text())
        if metrics["snapshot"] not in chosen:
            continue
        for partition, values in metrics["partitions"].items():
            base = {**key, "iteration": metrics["snapshot"], "partition": partition}
            rows.append(
                {
                    **base,
                    **{c: values.get(c) for c in METRIC_COLUMNS},
                    "run_dir": str(run_dir.relative_to(run_dir.parents[1])),
                }
            )
            for bodypart, values_k in values["per_bodypart"].items():
                parts.append(
                    {**base, "bodypart": bodypart, **{c: values_k.get(c) for c in METRIC_COLUMNS}}
                )
    return rows, parts


def collect_results(out_dir: Path, runs: list[PlannedRun], evaluation: EvalSpec) -> pd.DataFrame:
    """Rebuild the study tables from the run directories (the single source of truth).

    ``imagenet_top1`` is that of the weights the backbone's pretrained runs started from.
    """
    rows, parts, status = [], [], []
    done = [p for p in runs if read_status(out_dir / "runs" / p.run_id)["status"] == "done"]
    top1 = {
        p.spec.backbone: run_top1(out_dir / "runs" / p.run_id, p.spec.backbone)
        for p in done
        if p.spec.init == "imagenet"
    }
    for planned in runs:
        run_dir = out_dir / "runs" / planned.run_id
        state = read_status(run_dir)
        status.append(
            {"run_id": planned.run_id, "status": state["status"], "error": state.get("error", "")}
        )
        if state["status"] == "done":
            run_rows, run_parts = _rows(planned, run_dir, top1, evaluation)
            rows += run_rows
            parts += run_parts
    results = pd.DataFrame(rows, columns=[*KEY_COLUMNS, *METRIC_COLUMNS, "run_dir"])
    bodyparts = pd.DataFrame(parts, columns=[*KEY_COLUMNS, "bodypart", *METRIC_COLUMNS])
    write_atomic(out_dir / "results.csv", lambda tmp: results.to_csv(tmp, index=False))
    write_atomic(out_dir / "results_bodyparts.csv", lambda tmp: bodyparts.to_csv(tmp, index=False))
    write_atomic(out_dir / "status.csv", lambda tmp: pd.DataFrame(status).to_csv(tmp, index=False))
    return results
