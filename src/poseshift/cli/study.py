"""``poseshift study``: plan, run and report a robustness study."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from poseshift.cli._app import group
from poseshift.cli.study_report import report
from poseshift.memory_policy import use_memory_policy

app = group("Grids of runs (the paper's study or your own): plan, run, report.")
app.command("report")(report)
console = Console()

PLAN = typer.Argument(..., help="Plan YAML file, or a shipped plan: paper, wacv, cpu, demo.")
PROJECT = typer.Option(None, "--project", help="Use this project instead of the plan's.")


@app.command("plan")
def plan_(
    plan: str = PLAN,
    project: Path | None = PROJECT,
    measure: bool = typer.Option(True, help="Time a few training steps per backbone here."),
    device: str = typer.Option("auto"),
) -> None:
    """Print the runs of a plan and the compute they need on this machine."""
    from poseshift.device import pick_device
    from poseshift.study.estimate import estimate, plan_frame_size
    from poseshift.study.plan import expand, load_plan

    loaded = load_plan(plan, project)
    runs = expand(loaded)
    table = Table(
        "run",
        "backbone",
        "init",
        "shuffle",
        "fraction",
        "preset",
        "iterations",
        title=f"plan {loaded.name}: {len(runs)} runs on {loaded.project}",
    )
    for run in runs:
        s = run.spec
        table.add_row(
            run.run_id,
            s.backbone,
            s.init,
            str(s.shuffle),
            f"{s.fraction:g}",
            s.preset,
            str(s.train.iterations),
        )
    console.print(table)
    target = pick_device(device)
    rows = estimate(runs, target, measure, plan_frame_size(loaded))
    cost = Table(
        "backbone",
        "preset",
        "runs",
        "iterations",
        "batch",
        "input",
        "s/iteration",
        "time",
        title=f"compute on {target.type} (measured here)",
    )
    for r in rows:
        cost.add_row(
            r["backbone"],
            r["preset"],
            str(r["runs"]),
            str(r["iterations"]),
            str(r["batch"]),
            r["input"],
            "-" if r["s_per_iteration"] is None else f"{r['s_per_iteration']:.3f}",
            _duration(r["hours"]),
        )
    console.print(cost)
    if measure:
        total = sum(r["hours"] for r in rows)
        console.print(f"total: {_duration(total)} of {target.type} time, one run at a time")


def _duration(hours: float | None) -> str:
    if hours is None:
        return "-"
    return f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.1f} min"


@app.command("run")
def run(
    plan: str = PLAN,
    out: Path = typer.Option(..., "--out", help="Study directory (created or resumed)."),
    project: Path | None = PROJECT,
    backend: str = typer.Option("local", help="local or ray."),
    address: str | None = typer.Option(None, help="Ray cluster address (HEAD:6379 or auto)."),
    cpus_per_run: float = typer.Option(1, help="CPUs Ray reserves per run."),
    gpus_per_run: float = typer.Option(
        0, help="GPUs per run: Ray reserves them, and a run with 2+ trains with DDP."
    ),
    max_parallel: int | None = typer.Option(None, help="Runs in flight at once (Ray)."),
    retry_failed: bool = typer.Option(False, help="Run failed runs again."),
) -> None:
    """Train and evaluate every run; finished runs are skipped, interrupted ones resume."""
    use_memory_policy(huge_pages=False)  # before torch loads (the local backend trains here)
    from poseshift.study.plan import load_plan
    from poseshift.study.runner import run_study

    result = run_study(
        load_plan(plan, project),
        out,
        backend=backend,
        address=address,
        cpus_per_run=cpus_per_run,
        gpus_per_run=gpus_per_run,
        max_parallel=max_parallel,
        retry_failed=retry_failed,
    )
    console.print(
        f"{len(result.done)} runs done now, {len(result.skipped)} already done or skipped, "
        f"{len(result.failed)} failed; results in {out / 'results.csv'}"
    )
    if result.failed:  # a study with failed runs is not a success (scripts and CI see it)
        console.print(f"failed runs (see {out}/status.csv): {', '.join(result.failed)}")
        raise typer.Exit(1)
