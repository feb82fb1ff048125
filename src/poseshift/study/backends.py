"""Where a study's runs execute: the interface, one run's work, and the local backend.

A backend gets the runs still to do and must leave each run directory with a final
``status.json`` (done / failed / interrupted); ``run_one`` is that unit of work wherever it
executes. ``poseshift.study.ray_backend`` places the same unit on a Ray cluster.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from poseshift.fsutil import write_text_atomic
from poseshift.run import RunDir
from poseshift.study.plan import EvalSpec, PlannedRun
from poseshift.study.progress import StudyProgress


class Backend(Protocol):
    def run(
        self,
        todo: list[PlannedRun],
        out_dir: Path,
        evaluation: EvalSpec,
        progress: StudyProgress,
    ) -> None: ...


def evaluate_planned(run_dir: str | Path, evaluation: EvalSpec) -> None:
    """The plan's evaluation of a trained run (each result is reused when its inputs and
    options are the same, so a finished run is cheap to bring up to a changed plan)."""
    from poseshift.evaluate.adapted import evaluate_adapted
    from poseshift.evaluate.evaluate import evaluate_run

    pair, file = evaluation.scale_pair, evaluation.scale_file
    evaluate_run(
        run_dir,
        snapshots=evaluation.snapshots,
        plot=evaluation.plot,
        scale_pair=pair,
        scale_file=file,
    )
    if evaluation.adapted:
        evaluate_adapted(run_dir, scale_pair=pair, scale_file=file)


def run_one(
    planned: PlannedRun,
    run_dir: str | Path,
    evaluation: EvalSpec,
    *,
    on_iteration: Callable[[int, dict], None] | None = None,
    devices: int | None = None,
) -> dict:
    """Train + evaluate one run; any error is caught and recorded so the study goes on.

    ``devices``: the processes the backend gives each run (None: the plan's own setting).
    """
    from poseshift.train.trainer import train

    run = RunDir(run_dir)
    run.path.mkdir(parents=True, exist_ok=True)
    run.set_status("running")
    try:
        spec = planned.spec
        if devices is not None:  # devices > 1: DDP
            execution = dataclasses.replace(spec.execution, devices=devices)
            spec = dataclasses.replace(spec, execution=execution)
        result = train(spec, run.path, on_iteration=on_iteration, show_progress=False)
        if not result.finished:
            run.set_status("interrupted")
            raise KeyboardInterrupt
        evaluate_planned(run.path, evaluation)
        status = {"status": "done"}
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # one failed run must not stop the study; keep its reason
        message = " ".join(str(exc).split()) or type(exc).__name__
        status = {"status": "failed", "error": f"{type(exc).__name__}: {message}"}
        write_text_atomic(run.path / "error.txt", traceback.format_exc())
    run.set_status(**status)
    return {"run_id": planned.run_id, **status}


@dataclass
class LocalBackend:
    """The runs one after another in this process (each on ``devices`` processes, or on
    what its plan says when None)."""

    devices: int | None = None

    def run(
        self,
        todo: list[PlannedRun],
        out_dir: Path,
        evaluation: EvalSpec,
        progress: StudyProgress,
    ) -> None:
        for planned in todo:
            progress.started(planned.run_id)
            outcome = run_one(
                planned,
                out_dir / "runs" / planned.run_id,
                evaluation,
                on_iteration=progress.iteration_callback(planned.run_id),
                devices=self.devices,
            )
            progress.finished(planned.run_id, outcome["status"])
