"""Runs as Ray tasks: each run asks for its CPUs/GPUs and Ray places it on the cluster.

Locally ``address=None`` starts a private Ray instance; on a cluster started with
``ray start --head`` (and ``ray start --address HEAD:6379`` on the workers), pass
``--address HEAD:6379`` or ``auto``. The study directory must be on a file system every
node sees (runs write their own directories; the driver only reads them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poseshift.errors import PoseshiftError
from poseshift.memory_policy import keep_freed_memory
from poseshift.run import RunDir
from poseshift.study.backends import run_one
from poseshift.study.plan import EvalSpec, PlannedRun
from poseshift.study.progress import StudyProgress


def _task(planned: PlannedRun, run_dir: str, evaluation: EvalSpec, devices: int | None) -> dict:
    keep_freed_memory()  # a Ray worker is a process of its own, started with glibc's defaults
    return run_one(planned, run_dir, evaluation, devices=devices)


@dataclass
class RayBackend:
    """Each run a Ray task asking for ``cpus_per_run`` / ``gpus_per_run``."""

    address: str | None = None
    cpus_per_run: float = 1
    gpus_per_run: float = 0
    max_parallel: int | None = None

    def run(
        self,
        todo: list[PlannedRun],
        out_dir: Path,
        evaluation: EvalSpec,
        progress: StudyProgress,
    ) -> None:
        _run_with_ray(self, todo, out_dir, evaluation, progress)


def _run_with_ray(
    backend: RayBackend,
    todo: list[PlannedRun],
    out_dir: Path,
    evaluation: EvalSpec,
    progress: StudyProgress,
) -> None:
    address, cpus_per_run, gpus_per_run = (
        backend.address,
        backend.cpus_per_run,
        backend.gpus_per_run,
    )
    max_parallel = backend.max_parallel
    try:
        import ray
    except ImportError:
        raise PoseshiftError("the Ray backend needs ray: pip install 'ray>=2.9'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=address, include_dashboard=False, log_to_driver=False, configure_logging=False
        )
    try:
        remote = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(_task)
        limit = max_parallel or len(todo) or 1
        queue, pending = list(todo), dict[Any, str]()
        while queue or pending:
            while queue and len(pending) < limit:
                planned = queue.pop(0)
                run_dir, devices = str(out_dir / "runs" / planned.run_id), int(gpus_per_run) or None
                ref = remote.remote(planned, run_dir, evaluation, devices)
                pending[ref] = planned.run_id
                progress.started(planned.run_id)
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=2.0)
            progress.poll()
            for ref in ready:
                run_id = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as exc:  # worker died: record, go on
                    outcome = {"status": "failed", "error": " ".join(str(exc).split())[:500]}
                    RunDir(out_dir / "runs" / run_id).set_status(**outcome)
                progress.finished(run_id, outcome["status"])
    finally:
        if started_here:
            ray.shutdown()
