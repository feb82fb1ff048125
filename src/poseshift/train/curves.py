"""Training curves: ``log.jsonl`` (what tools read) and TensorBoard (what people watch).

Both live in the run directory (``RunDir.log_file``, ``RunDir.board_writer``): losses,
learning rate and images/s while a run trains; evaluation adds its metrics to the same board.
"""

from __future__ import annotations

import json
import time

from poseshift.fsutil import write_text_atomic
from poseshift.run import RunDir


def trim_log(run: RunDir, iteration: int) -> None:
    """Drop log lines written after the checkpoint we resume from (they will be redone)."""
    if not run.log_file.exists():
        return
    kept = [r for r in run.log_records() if r["iteration"] <= iteration]
    write_text_atomic(run.log_file, "".join(json.dumps(r) + "\n" for r in kept))


class TrainingLog:
    """Appends one record per logged iteration to log.jsonl and to TensorBoard.

    Opened at iteration ``start``: later log lines are dropped and TensorBoard is told to
    forget its later points (``purge_step``), so a resumed run draws one clean curve.
    """

    def __init__(self, run: RunDir, start: int, batch_size: int) -> None:
        trim_log(run, start)
        self.file = run.log_file.open("a")
        self.board = run.board_writer(purge_step=start + 1)
        self.batch_size = batch_size
        self.tick, self.logged = time.perf_counter(), start

    def __enter__(self) -> TrainingLog:
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()
        self.board.close()

    def write(self, iteration: int, lr: float, losses: dict[str, float]) -> None:
        """Log losses, LR and the images/s (global batch) since the previous record."""
        elapsed = time.perf_counter() - self.tick
        rate = self.batch_size * (iteration - self.logged) / max(elapsed, 1e-9)
        self.tick, self.logged = time.perf_counter(), iteration
        record = {"iteration": iteration, "lr": lr, **losses, "images_per_s": round(rate, 3)}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        for name, value in losses.items():
            self.board.add_scalar(f"loss/{name}", value, iteration)
        self.board.add_scalar("train/lr", lr, iteration)
        self.board.add_scalar("train/images_per_s", rate, iteration)
