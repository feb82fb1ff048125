"""The run directory: the one module that knows its layout.

::

    run.yaml            what was asked for, resolved (``RunSpec``: recipe + first execution)
    split.json          bodyparts in channel order and the images of each partition
    environment.json    versions, hardware and execution of each session; initial weights
    log.jsonl           one record per logged iteration (losses, lr, images/s)
    tensorboard/        the same curves plus evaluation metrics
    checkpoints/last.pt model, optimizer, RNG and iteration (resume)
    snapshots/snapshot-<iteration:07d>.pt   self-describing networks (``save_posenet``)
    done.json           written last by a finished training
    eval/snapshot-<iteration:07d>/          metrics.json, predictions.h5, plots/,
                                            metrics_adapted.json (a study's adapted arm)
    deeplabcut/snapshot-<iteration:07d>/    the model folder DeepLabCut names outputs from
    export/             ONNX / TorchScript files
    status.json         a study's view of the run (queued, running, done, failed)
    adaptation.json     only in an adapted run (``poseshift adapt``): the run, snapshot and
                        target frames it was adapted from, and how
    adapted/<key>/      adapted runs made by ``analyze --adapt``, one per target video

Training, evaluation, analysis, export and studies all ask a ``RunDir``; inference reads it
without importing any training code.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from poseshift.config import from_dict, to_dict
from poseshift.errors import PoseshiftError
from poseshift.fsutil import write_json_atomic, write_text_atomic
from poseshift.spec import EXECUTION_KEYS, RunSpec, init_label, recipe_dict, run_hash

SNAPSHOT_DIGITS = 7


@dataclass(frozen=True)
class RunDir:
    """A run directory, existing or to be created."""

    path: Path

    def __init__(self, path: str | Path) -> None:
        object.__setattr__(self, "path", Path(path))

    def __str__(self) -> str:
        return str(self.path)

    # ------------------------------------------------------------------ layout

    @property
    def spec_file(self) -> Path:
        return self.path / "run.yaml"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoints" / "last.pt"

    @property
    def log_file(self) -> Path:
        return self.path / "log.jsonl"

    @property
    def board_dir(self) -> Path:
        return self.path / "tensorboard"

    @property
    def done_file(self) -> Path:
        return self.path / "done.json"

    @property
    def export_dir(self) -> Path:
        return self.path / "export"

    @property
    def adaptation_file(self) -> Path:
        return self.path / "adaptation.json"

    def adapted_dir(self, key: str) -> Path:
        """Where ``analyze --adapt`` keeps the run adapted on one target (``key``: its name)."""
        return self.path / "adapted" / key

    def snapshot_path(self, iteration: int) -> Path:
        return self.path / "snapshots" / f"snapshot-{iteration:0{SNAPSHOT_DIGITS}d}.pt"

    def eval_dir(self, iteration: int) -> Path:
        return self.path / "eval" / f"snapshot-{iteration:0{SNAPSHOT_DIGITS}d}"

    def dlc_model_prefix(self, iteration: int) -> Path:
        """DeepLabCut's ``modelprefix`` for a snapshot (``predict.dlc_shuffle`` fills it)."""
        return self.path / "deeplabcut" / f"snapshot-{iteration:0{SNAPSHOT_DIGITS}d}"

    def eval_metrics_files(self) -> list[Path]:
        """Every evaluated snapshot's metrics.json, in iteration order."""
        return sorted((self.path / "eval").glob("snapshot-*/metrics.json"))

    def adapted_metrics_file(self, iteration: int) -> Path:
        """The study's adapted arm for a snapshot (``evaluate.adapted``)."""
        return self.eval_dir(iteration) / "metrics_adapted.json"

    def adapted_metrics_files(self) -> list[Path]:
        return sorted((self.path / "eval").glob("snapshot-*/metrics_adapted.json"))

    # ------------------------------------------------------------------ spec and split

    def exists(self) -> bool:
        return self.spec_file.is_file()

    def spec(self) -> RunSpec:
        if not self.spec_file.is_file():
            raise PoseshiftError(f"{self.path} is not a poseshift run directory (no run.yaml)")
        try:
            data = yaml.safe_load(self.spec_file.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise PoseshiftError(f"{self.spec_file} cannot be read ({exc})") from None
        return from_dict(RunSpec, _with_execution_block(data), str(self.spec_file))

    def membership(self) -> dict:
        """split.json: bodyparts in channel order and the images of each partition."""
        path = self.path / "split.json"
        if not path.is_file():
            raise PoseshiftError(
                f"{self.path} has no split.json; it is not a complete training run"
            )
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:  # ValueError: bad JSON or bad UTF-8
            raise PoseshiftError(
                f"{path} cannot be read ({type(exc).__name__}); train the run again into a new "
                "--out"
            ) from None

    def bodyparts(self) -> list[str]:
        """Bodypart names in network-channel order, as stored at training time."""
        return list(self.membership()["bodyparts"])

    def create(self, spec: RunSpec, membership: dict) -> None:
        """Write split.json then run.yaml (run.yaml marks the directory as a run)."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path / "split.json", membership)
        write_text_atomic(self.spec_file, yaml.safe_dump(to_dict(spec), sort_keys=False))

    def difference(self, spec: RunSpec) -> str | None:
        """How run.yaml's recipe differs from ``spec``'s ("key: stored vs wanted"), or None.

        None as well when there is no run.yaml yet. The one comparison behind every decision
        to resume, skip or refuse a run directory; the execution never counts.
        """
        if not self.spec_file.is_file():
            return None
        stored = to_dict(self.spec())
        stored.pop("execution")
        found = _first_difference(stored, recipe_dict(spec), "")
        return None if found is None else f"{found[0]}: {found[1]!r} vs {found[2]!r}"

    def check_same_run(self, spec: RunSpec) -> None:
        """Refuse this directory when its run.yaml asks for something else than ``spec``."""
        difference = self.difference(spec)
        if difference:
            raise PoseshiftError(
                f"{self.path} holds a run with different settings ({difference}); use a new --out"
            )

    def check_same_inputs(self, inputs: dict) -> None:
        """Refuse this directory when the project now gives other images, bodyparts or
        training labels than split.json records (keys a run of an older poseshift lacks are
        not compared)."""
        stored = self.membership()
        for key, wanted in inputs.items():
            if key not in stored or stored[key] == wanted:
                continue
            if isinstance(wanted, list) and key != "bodyparts":
                added = sorted(set(wanted) - set(stored[key]))
                removed = sorted(set(stored[key]) - set(wanted))
                example = (added or removed or ["the order"])[0]
                what = f"{len(added)} {key} images added, {len(removed)} removed (e.g. {example})"
            else:
                what = f"{key}: {stored[key]!r} vs {wanted!r} now"
            raise PoseshiftError(
                f"{self.path} was trained on other data than the project gives now ({what}); "
                "use a new --out, or restore the project's labels and config.yaml"
            )

    def is_finished(self) -> bool:
        return self.done_file.is_file()

    # ------------------------------------------------------------------ snapshots

    def snapshots(self) -> list[int]:
        # "snapshot-*" leaves out ".snapshot-*.tmp.pt", the half-written file of a killed process.
        names = (self.path / "snapshots").glob("snapshot-*.pt")
        return sorted(int(p.stem.split("-")[1]) for p in names)

    def choose_snapshots(self, which: str | int) -> list[int]:
        """``"last"``, ``"all"`` or one iteration number, checked against what exists."""
        available = self.snapshots()
        if not available:
            raise PoseshiftError(
                f"{self.path} has no snapshots (no {self.path}/snapshots/*.pt): train it first"
            )
        if which == "all":
            return available
        if which == "last":
            return available[-1:]
        try:
            iteration = int(which)
        except ValueError:
            raise PoseshiftError(
                f"--snapshot {which!r}: give 'last', 'all' or an iteration of {available}"
            ) from None
        if iteration not in available:
            raise PoseshiftError(f"{self.path} has no snapshot {which}; available: {available}")
        return [iteration]

    def choose_snapshot(self, which: str | int = "last") -> int:
        """One snapshot: ``"last"`` or an iteration number."""
        if which == "all":
            raise PoseshiftError("--snapshot all: give 'last' or one iteration here")
        return self.choose_snapshots(which)[0]

    def scorer(self, iteration: int, spec: RunSpec | None = None) -> str:
        """DeepLabCut-style scorer (cf. ``DLC_resnet50_openfieldOct30shuffle1_100000``).

        The run's hash stands where DeepLabCut puts task and date: runs that differ only in
        fraction, seed or recipe get different names, so their outputs never collide.
        """
        spec = spec or self.spec()
        init = init_label(spec.init)
        tag = self.adaptation_tag()
        return (
            f"poseshift_{spec.backbone}_{init}_{run_hash(spec)}{tag}"
            f"shuffle{spec.shuffle}_{iteration}"
        )

    # ------------------------------------------------------------------ adaptation

    def adaptation(self) -> dict | None:
        """adaptation.json of an adapted run (what it was adapted from, and how), else None."""
        if not self.adaptation_file.is_file():
            return None
        return json.loads(self.adaptation_file.read_text())

    def adaptation_tag(self) -> str:
        """``adapted<hash>`` for an adapted run, so its outputs never take its source's names."""
        record = self.adaptation()
        if record is None:
            return ""
        digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
        return f"adapted{digest[:8]}"

    def create_adapted(
        self,
        source: RunDir,
        record: dict,
        write_snapshots: Callable[[RunDir], None],
    ) -> None:
        """This directory as ``source`` adapted (``record``: adaptation.json), all or nothing.

        run.yaml, split.json and environment.json come from ``source`` (the same recipe and
        split: evaluation, analysis and export use it like any run); ``write_snapshots``
        writes the adapted networks into a temporary run directory, which is then renamed to
        this one, so that a crash leaves no half-made run.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = RunDir(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        try:
            for name in ("run.yaml", "split.json", "environment.json"):
                if (source.path / name).is_file():
                    shutil.copy2(source.path / name, staging.path / name)
            write_snapshots(staging)
            write_json_atomic(staging.adaptation_file, record)
            write_json_atomic(
                staging.done_file,
                {"adapted_from": str(source.path), "snapshots": staging.snapshots()},
            )
            if self.path.exists():
                shutil.rmtree(self.path)
            staging.path.rename(self.path)
        finally:
            if staging.path.exists():
                shutil.rmtree(staging.path)

    # ------------------------------------------------------------------ environment

    def record_session(self, session: dict, resumed_at: int | None) -> None:
        """environment.json: the session that started the run, plus one entry per resume."""
        path = self.path / "environment.json"
        if resumed_at is None or not path.is_file():
            write_json_atomic(path, session)
            return
        record = json.loads(path.read_text())
        record.setdefault("resumed", []).append({**session, "at_iteration": resumed_at})
        write_json_atomic(path, record)

    def record_weights(self, origin: dict) -> None:
        """environment.json's "weights": where the network's initial weights came from."""
        path = self.path / "environment.json"
        record = json.loads(path.read_text())
        if record.get("weights") != origin:
            write_json_atomic(path, {**record, "weights": origin})

    def weights_origin(self) -> dict:
        """The origin ``record_weights`` stored ({} for runs of older versions)."""
        path = self.path / "environment.json"
        return json.loads(path.read_text()).get("weights", {}) if path.is_file() else {}

    # ------------------------------------------------------------------ log and status

    def log_records(self) -> list[dict]:
        """log.jsonl's complete lines (a line being written is left out)."""
        text = self.log_file.read_text() if self.log_file.exists() else ""
        return [json.loads(line) for line in text.split("\n")[:-1] if line]

    def last_logged_iteration(self) -> int:
        return max((r["iteration"] for r in self.log_records()), default=0)

    def board_writer(self, purge_step: int | None = None) -> Any:
        """A TensorBoard ``SummaryWriter`` on tensorboard/ (imports tensorboard: only when used).

        ``tensorboard --logdir STUDY_DIR`` then shows every run of a study side by side.
        """
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.board_dir), purge_step=purge_step, flush_secs=30)

    def status(self) -> dict:
        path = self.path / "status.json"
        return json.loads(path.read_text()) if path.exists() else {"status": "queued"}

    def set_status(self, status: str, **details: Any) -> None:
        write_json_atomic(self.path / "status.json", {"status": status, **details})


def _with_execution_block(data: Any) -> Any:
    """run.yaml of versions before the recipe/execution split: move execution keys over."""
    if not isinstance(data, dict) or "execution" in data:
        return data
    data = dict(data)
    train = dict(data.get("train") or {})
    execution = {k: data.pop(k) for k in ("device", "devices") if k in data}
    execution |= {k: train.pop(k) for k in EXECUTION_KEYS if k in train}
    return {**data, "train": train, "execution": execution}


def _first_difference(stored: Any, wanted: Any, where: str) -> tuple[str, Any, Any] | None:
    """The dotted key of the first differing leaf (e.g. ``train.iterations``), or None."""
    if isinstance(stored, dict) and isinstance(wanted, dict):
        for key in wanted:
            found = _first_difference(stored.get(key), wanted[key], f"{where}{key}.")
            if found:
                return found
        extra = [k for k in stored if k not in wanted]
        return (f"{where}{extra[0]}", stored[extra[0]], None) if extra else None
    return None if stored == wanted else (where.rstrip("."), stored, wanted)
