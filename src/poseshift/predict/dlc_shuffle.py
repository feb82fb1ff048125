"""The name DeepLabCut gives a poseshift run's outputs, and the model folder it derives it from.

DeepLabCut's video tools (``filterpredictions``, ``plot_trajectories``, ``analyzeskeleton``,
``create_labeled_video``) take no file name: ``auxiliaryfunctions.get_scorer_name`` derives a
scorer from a shuffle's model folder and they open ``<video><scorer>.h5``. For a shuffle of
DeepLabCut's TensorFlow engine (DeepLabCut 2's networks, which poseshift's are) the name is
``DLC_<net>_<Task><date>shuffle<N>_<iteration>``: ``<net>`` abbreviates ``net_type`` of
``train/pose_cfg.yaml`` (``mobnet_35``, ``resnet50``, ``effnet_b0``) and ``<iteration>`` is
the last ``snapshot-<iteration>.index`` in ``train/`` (read by name, never opened).

poseshift names its outputs that way and writes that folder inside the run directory, one per
analyzed snapshot (``RunDir.dlc_model_prefix``)::

    <prefix>/dlc-models/iteration-<i>/<Task><date>-trainset<pct>shuffle<N>/train/
        pose_cfg.yaml          net_type and bodyparts
        snapshot-<it>.index    a marker naming the poseshift snapshot (not a TensorFlow file)

so that ``deeplabcut.filterpredictions(config, videos, shuffle=N, modelprefix=<prefix>)`` and
the others find the poses as written: DeepLabCut joins an absolute ``modelprefix`` onto the
project path as pathlib does, and finds the engine from the folder (a project whose own
``training-datasets/metadata.yaml`` lists shuffle N for PyTorch also needs
``engine=deeplabcut.Engine.TF``). ``Task``, ``date``, ``iteration`` and ``TrainingFraction``
come from the project's config.yaml, as for DeepLabCut's own shuffles.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from poseshift.errors import PoseshiftError
from poseshift.fsutil import safe_child, write_text_atomic
from poseshift.spec import RunSpec

ENGINE_FOLDER = "dlc-models"  # DeepLabCut's Engine.TF.model_folder_name


def dlc_net_type(backbone: str) -> str:
    """DeepLabCut 2's ``net_type`` for a poseshift backbone (``mobilenet_v2_0.35``, ...)."""
    if backbone.startswith("mobilenetv2_"):
        width = int(backbone.removeprefix("mobilenetv2_")) / 100
        return f"mobilenet_v2_{width:g}" if width < 1 else "mobilenet_v2_1.0"
    if backbone.startswith("resnet"):
        return f"resnet_{backbone.removeprefix('resnet')}"
    if backbone.startswith("efficientnet_"):
        return f"efficientnet-{backbone.removeprefix('efficientnet_')}"
    raise PoseshiftError(f"backbone {backbone!r} has no DeepLabCut net_type; give --scorer NAME")


def dlc_net_name(net_type: str) -> str:
    """DeepLabCut's abbreviation of ``net_type`` in scorer names (its get_scorer_name)."""
    if "resnet" in net_type:
        return net_type.replace("_", "")
    if "mobilenet" in net_type:
        return "mobnet_" + str(int(float(net_type.split("_")[-1]) * 100))
    return "effnet_" + net_type.split("-")[1]


def project_naming(project: str | Path) -> dict:
    """Task, date, iteration and TrainingFraction of the run's project, which name outputs."""
    path = Path(project) / "config.yaml"
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PoseshiftError(
            f"{path} cannot be read ({type(exc).__name__}): outputs are named from its Task and "
            "date as DeepLabCut names them; restore the project or give --scorer NAME"
        ) from None
    if not isinstance(config, dict) or not config.get("Task"):
        raise PoseshiftError(
            f"{path} has no 'Task': outputs are named from Task and date as DeepLabCut names "
            "them; add it or give --scorer NAME"
        )
    fractions = config.get("TrainingFraction") or [0.95]
    return {
        "Task": str(config["Task"]),
        "date": str(config.get("date") or ""),
        "iteration": int(config.get("iteration") or 0),
        "TrainingFraction": [float(f) for f in (fractions if isinstance(fractions, list) else [])]
        or [0.95],
    }


def dlc_scorer(spec: RunSpec, iteration: int, naming: dict, adapted: str = "") -> str:
    """``DLC_<net>_<Task><date>shuffle<N>_<iteration>``, as DeepLabCut derives it.

    An adapted run (``adapted``: its ``RunDir.adaptation_tag``) puts its tag before
    ``shuffle``, so its poses never take its source's file: DeepLabCut then finds them by
    ``init_weights`` (the name after ``DLC_``), not through a shuffle.
    """
    net = dlc_net_name(dlc_net_type(spec.backbone))
    project = f"{naming['Task']}{naming['date']}"
    return f"DLC_{net}_{project}{adapted}shuffle{spec.shuffle}_{iteration}"


def write_model_folder(
    prefix: Path,
    *,
    spec: RunSpec,
    iteration: int,
    naming: dict,
    bodyparts: Sequence[str],
    snapshot: Path,
) -> list[Path]:
    """The shuffle folders (one per TrainingFraction) DeepLabCut derives the scorer from."""
    written = []
    for fraction in naming["TrainingFraction"]:
        project_id = f"{naming['Task']}{naming['date']}"
        name = f"{project_id}-trainset{int(fraction * 100)}shuffle{spec.shuffle}"
        parent = prefix / ENGINE_FOLDER / f"iteration-{naming['iteration']}"
        folder = safe_child(parent, name, "config.yaml's Task and date make the folder") / "train"
        pose_cfg = {
            "net_type": dlc_net_type(spec.backbone),
            "all_joints_names": list(bodyparts),
            "all_joints": [[i] for i in range(len(bodyparts))],
            "num_joints": len(bodyparts),
            "poseshift_snapshot": str(snapshot.resolve()),
        }
        write_text_atomic(folder / "pose_cfg.yaml", yaml.safe_dump(pose_cfg, sort_keys=False))
        marker = f"poseshift snapshot {snapshot.resolve()} (a name for DeepLabCut, no weights)\n"
        write_text_atomic(folder / f"snapshot-{iteration}.index", marker)
        written.append(folder)
    return written
