"""A live table of a study's runs: queued / running (iteration, ETA) / done / failed."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from poseshift.run import RunDir
from poseshift.study.plan import PlannedRun

COLOURS = {
    "done": "green",
    "failed": "red",
    "running": "yellow",
    "queued": "dim",
    "interrupted": "magenta",
}


class StudyProgress:
    """Updated by the local loop (per iteration) or by polling run logs (Ray)."""

    def __init__(
        self, runs: list[PlannedRun], out_dir: Path, statuses: dict[str, str], enabled: bool = True
    ) -> None:
        self.runs = {r.run_id: r for r in runs}
        self.out_dir = out_dir
        self.status = dict(statuses)
        self.iteration: dict[str, int] = {}
        self.started_at: dict[str, tuple[float, int]] = {}
        self.enabled = enabled
        self.live = Live(console=Console(stderr=True), refresh_per_second=2, transient=False)
        self._last_refresh = 0.0

    def __enter__(self) -> StudyProgress:
        if self.enabled:
            self.live.__enter__()
            self.refresh(force=True)
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.refresh(force=True)
            self.live.__exit__(*exc)

    def started(self, run_id: str) -> None:
        self.status[run_id] = "running"
        self.started_at[run_id] = (time.monotonic(), self.iteration.get(run_id, 0))
        self.refresh(force=True)

    def finished(self, run_id: str, status: str) -> None:
        self.status[run_id] = status
        self.refresh(force=True)

    def iteration_callback(self, run_id: str) -> Callable[[int, dict], None]:
        def update(iteration: int, _losses: dict) -> None:
            if run_id not in self.started_at:
                self.started_at[run_id] = (time.monotonic(), iteration)
            self.iteration[run_id] = iteration
            self.refresh()

        return update

    def poll(self) -> None:
        """Read the latest logged iteration of running runs (used with Ray)."""
        for run_id, state in self.status.items():
            if state != "running":
                continue
            logged = RunDir(self.out_dir / "runs" / run_id).last_logged_iteration()
            if logged:
                self.iteration_callback(run_id)(logged, {})
        self.refresh(force=True)

    def _eta(self, run_id: str) -> str:
        if run_id not in self.started_at or run_id not in self.iteration:
            return ""
        t0, it0 = self.started_at[run_id]
        done = self.iteration[run_id] - it0
        if done <= 0:
            return ""
        left = self.runs[run_id].spec.train.iterations - self.iteration[run_id]
        return f"{left * (time.monotonic() - t0) / done:.0f} s"

    def table(self) -> Table:
        counts = {s: list(self.status.values()).count(s) for s in COLOURS}
        title = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        table = Table("run", "status", "iteration", "ETA", title=f"study: {title}")
        running = [r for r, s in self.status.items() if s in ("running", "failed")]
        shown = running + [r for r in self.status if r not in running][: max(0, 12 - len(running))]
        for run_id in shown:
            total = self.runs[run_id].spec.train.iterations
            state = self.status[run_id]
            iteration = self.iteration.get(run_id, total if state == "done" else 0)
            table.add_row(
                run_id,
                f"[{COLOURS.get(state, 'white')}]{state}",
                f"{iteration}/{total}",
                self._eta(run_id) if state == "running" else "",
            )
        return table

    def refresh(self, force: bool = False) -> None:
        if not self.enabled or (not force and time.monotonic() - self._last_refresh < 0.5):
            return
        self._last_refresh = time.monotonic()
        self.live.update(self.table())
