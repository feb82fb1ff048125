"""Which run a run directory holds: comparing stored run.yaml with a request, validating one.

A finished run, a study's "done" run or an analysis output counts as the answer to a request
only when it provably comes from the same inputs and options; these helpers say whether it
does, and check a request's names before a run directory is claimed for it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from poseshift.config import from_dict, to_dict
from poseshift.errors import PoseshiftError

if TYPE_CHECKING:
    from poseshift.train.trainer import RunSpec

# Keys of run.yaml that do not change what a run computes: it trains the same on any
# number of processes (see ``poseshift.train.distributed``).
NEUTRAL_KEYS = ("devices",)
INITS = ("imagenet", "scratch")


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


def spec_difference(run_dir: str | Path, spec: RunSpec) -> str | None:
    """How ``run_dir``'s run.yaml differs from ``spec`` ("key: stored vs wanted"), or None.

    None as well when there is no run.yaml yet. The one comparison behind every decision
    to resume, skip or refuse a run directory.
    """
    path = Path(run_dir) / "run.yaml"
    if not path.is_file():
        return None
    stored = yaml.safe_load(path.read_text()) or {}
    wanted = to_dict(spec)
    for key in NEUTRAL_KEYS:
        stored.pop(key, None)
        wanted.pop(key, None)
    found = _first_difference(stored, wanted, "")
    return None if found is None else f"{found[0]}: {found[1]!r} vs {found[2]!r}"


def check_same_run(run_dir: str | Path, spec: RunSpec) -> None:
    """Refuse ``run_dir`` when its run.yaml asks for something else than ``spec``."""
    difference = spec_difference(run_dir, spec)
    if difference:
        raise PoseshiftError(
            f"{run_dir} holds a run with different settings ({difference}); use a new --out"
        )


def run_hash(spec: RunSpec) -> str:
    """A short hash of what the run trains (run.yaml without neutral keys): names outputs."""
    values = {k: v for k, v in to_dict(spec).items() if k not in NEUTRAL_KEYS}
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def validate_spec(spec: RunSpec) -> None:
    """Refuse typos in names and values before a run directory is created for them.

    ImageNet weights are only located when the network is built; here just the spelling.
    """
    from poseshift.models.backbones import get_backbone
    from poseshift.train.config import TrainConfig

    get_backbone(spec.backbone)
    if spec.init not in INITS and not Path(spec.init).is_file():
        raise PoseshiftError(
            f"--init {spec.init!r}: choose imagenet, scratch or an existing weights file"
        )
    where = f"preset {spec.preset}"
    config = from_dict(TrainConfig, to_dict(spec.train), where)  # literals, types, keys
    for key in ("iterations", "batch_size", "checkpoint_every", "log_every"):
        if getattr(config, key) < 1:
            raise PoseshiftError(f"{where}: {key} must be at least 1, got {getattr(config, key)}")
    try:
        config.lr_at(0, spec.init)  # a "steps" schedule needs entries for this init kind
    except PoseshiftError as exc:
        raise PoseshiftError(f"{where}: {exc}") from None
