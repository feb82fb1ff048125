"""Training curves: ``log.jsonl`` (what tools read) and TensorBoard event files (what people watch).

Event files go to ``<run dir>/tensorboard``, so ``tensorboard --logdir STUDY_DIR`` shows every
run of a study side by side, named by run id: losses, learning rate and images/s while it
trains, and the evaluation metrics of each snapshot once it is evaluated.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from poseshift.fsutil import write_text_atomic

BOARD_DIR = "tensorboard"
EVAL_METRICS = ("error_px", "normalized_error", "pck")


def _writer(run_dir: Path, purge_step: int | None = None):
    from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when used

    return SummaryWriter(str(Path(run_dir) / BOARD_DIR), purge_step=purge_step, flush_secs=30)


def trim_log(path: Path, iteration: int) -> None:
    """Drop log lines written after the checkpoint we resume from (they will be redone)."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text().splitlines()
        if line and json.loads(line)["iteration"] <= iteration
    ]
    write_text_atomic(path, "".join(line + "\n" for line in kept))


class TrainingLog:
    """Appends one record per logged iteration to log.jsonl and to TensorBoard.

    Opened at iteration ``start``: later log lines are dropped and TensorBoard is told to
    forget its later points (``purge_step``), so a resumed run draws one clean curve.
    """

    def __init__(self, run_dir: Path, start: int, batch_size: int) -> None:
        path = Path(run_dir) / "log.jsonl"
        trim_log(path, start)
        self.file = path.open("a")
        self.board = _writer(run_dir, purge_step=start + 1)
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


def log_evaluation(run_dir: str | Path, metrics: dict) -> None:
    """A snapshot's metrics per partition, as ``eval/<partition>/<metric>`` at its iteration."""
    with _writer(Path(run_dir)) as board:
        for partition, values in metrics["partitions"].items():
            for name in EVAL_METRICS:
                if values.get(name) is not None:
                    board.add_scalar(f"eval/{partition}/{name}", values[name], metrics["snapshot"])
