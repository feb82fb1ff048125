"""A DeepLabCut project's ``config.yaml``: read it with every key poseshift uses checked.

Checked: the file exists and is a YAML mapping; ``scorer`` is a plain name (it names the
CollectedData files); ``bodyparts`` is a non-empty list of distinct names; ``skeleton``
pairs name bodyparts; ``TrainingFraction`` is a list of numbers strictly between 0 and 1;
``pcutoff`` (where set) is a likelihood from 0 to 1 and ``dotsize`` a whole number of pixels,
so that evaluation and labeled videos read one checked value. A
single number (``TrainingFraction: 0.95``) is read as the list ``[0.95]``: it can only mean
that, and hand-written configs often have it (DeepLabCut itself would fail on it later).
"""

from __future__ import annotations

import datetime
import math
import numbers
from collections.abc import Sequence
from pathlib import Path

import yaml

from poseshift.errors import PoseshiftError
from poseshift.fsutil import safe_child, write_text_atomic


def read_config(project: Path) -> dict:
    """The checked config.yaml of ``project``; ``project_path`` is set to the folder itself."""
    config_path = project / "config.yaml"
    if not project.is_dir():
        raise PoseshiftError(f"project folder {project} does not exist")
    if not config_path.is_file():
        raise PoseshiftError(
            f"no config.yaml in {project}: point to a DeepLabCut project folder "
            "(the one holding config.yaml and labeled-data/); labels of another tool "
            "(Lightning Pose, SLEAP, NWB, COCO, ...) become one with "
            "'poseshift data import SOURCE NEW_PROJECT'"
        )
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        first_line = str(exc).splitlines()[0]
        raise PoseshiftError(f"{config_path} is not valid YAML: {first_line}") from None
    except UnicodeDecodeError:
        raise PoseshiftError(f"{config_path} is not a text (UTF-8) file: restore it") from None
    if not isinstance(config, dict):
        raise PoseshiftError(f"{config_path} must be a YAML mapping with keys scorer, bodyparts")
    if config.get("multianimalproject"):
        raise PoseshiftError(
            f"{config_path}: multi-animal projects are not supported yet; "
            "use a single-animal DeepLabCut project"
        )
    _check_scorer(config, config_path)
    _check_bodyparts(config, config_path)
    if "TrainingFraction" in config:
        config["TrainingFraction"] = _training_fractions(config["TrainingFraction"], config_path)
    _check_drawing(config, config_path)
    # DeepLabCut's examples ship a placeholder project_path: the folder itself is the truth.
    config["project_path"] = str(project.resolve())
    return config


def _check_scorer(config: dict, config_path: Path) -> None:
    scorer = config.get("scorer")
    if scorer is None or scorer == "":
        raise PoseshiftError(f"{config_path}: key 'scorer' is missing or empty")
    if not isinstance(scorer, str | int) or isinstance(scorer, bool):
        raise PoseshiftError(f"{config_path}: 'scorer' must be a name, got {scorer!r}")
    # It names labeled-data/<video>/CollectedData_<scorer>.h5: one plain file name.
    safe_child(config_path.parent, f"CollectedData_{scorer}", f"{config_path}: scorer")


def _check_bodyparts(config: dict, config_path: Path) -> None:
    bodyparts = config.get("bodyparts")
    if not bodyparts:
        raise PoseshiftError(f"{config_path}: key 'bodyparts' is missing or empty")
    if not isinstance(bodyparts, list):
        raise PoseshiftError(
            f"{config_path}: 'bodyparts' must be a list of names, got {bodyparts!r}"
        )
    for name in bodyparts:
        if not isinstance(name, str | int) or isinstance(name, bool) or name == "":
            raise PoseshiftError(
                f"{config_path}: bodypart {name!r} is not a name; list one name per bodypart"
            )
    names = [str(name) for name in bodyparts]
    repeated = [name for i, name in enumerate(names) if name in names[:i]]
    if repeated:
        raise PoseshiftError(
            f"{config_path}: bodypart {repeated[0]!r} is listed twice in 'bodyparts'; "
            "each bodypart needs its own name"
        )


def _check_drawing(config: dict, config_path: Path) -> None:
    """``pcutoff`` as a float in 0..1 and ``dotsize`` as an int >= 1, where they are set."""
    pcutoff, dotsize = config.get("pcutoff"), config.get("dotsize")
    if pcutoff not in (None, ""):
        if not _is_number(pcutoff) or not 0 <= pcutoff <= 1:
            raise PoseshiftError(
                f"{config_path}: pcutoff {pcutoff!r} is not a likelihood; "
                "set it to a number from 0 to 1"
            )
        config["pcutoff"] = float(pcutoff)
    if dotsize not in (None, ""):
        if not _is_number(dotsize) or dotsize != int(dotsize) or dotsize < 1:
            raise PoseshiftError(
                f"{config_path}: dotsize {dotsize!r} must be a whole number of pixels >= 1"
            )
        config["dotsize"] = int(dotsize)


def _is_number(value: object) -> bool:
    """A finite real number (YAML's .nan and .inf are not, nor are true / false)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _training_fractions(value: object, config_path: Path) -> list[float]:
    """``TrainingFraction`` as a checked list of floats."""
    fractions = [value] if isinstance(value, numbers.Real) else value
    if not isinstance(fractions, list) or not fractions:
        raise PoseshiftError(
            f"{config_path}: 'TrainingFraction' must be a list of fractions like [0.95], "
            f"got {value!r}"
        )
    for fraction in fractions:
        if not _is_number(fraction) or not 0 < float(fraction) < 1:
            raise PoseshiftError(
                f"{config_path}: TrainingFraction {fraction!r} must be a number strictly "
                "between 0 and 1 (0.95 trains on 95 % of the frames)"
            )
    return [float(fraction) for fraction in fractions]


def read_skeleton(config: dict, bodyparts: list[str], config_path: Path) -> list[tuple[str, str]]:
    """config.yaml's ``skeleton`` as bodypart-name pairs; unknown names are refused."""
    pairs = []
    for pair in config.get("skeleton") or []:
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            raise PoseshiftError(f"{config_path}: skeleton entry {pair!r} must be a pair of names")
        unknown = [name for name in pair if name not in bodyparts]
        if unknown:
            raise PoseshiftError(
                f"{config_path}: skeleton entry {pair!r} names unknown bodypart {unknown[0]!r}"
            )
        pairs.append((str(pair[0]), str(pair[1])))
    return pairs


def write_config(
    root: Path,
    scorer: str,
    bodyparts: Sequence[str],
    *,
    videos: Sequence[tuple[str, tuple[int, int]]] = (),
    skeleton: Sequence[tuple[str, str]] = (),
    task: str = "poseshift",
    extra: dict | None = None,
) -> Path:
    """A config.yaml with the keys DeepLabCut needs for a single-animal project.

    ``videos`` are (path, (width, height)) of video files that exist: ``video_sets`` lists
    only those (DeepLabCut opens each entry). ``date`` is today's, as DeepLabCut writes it
    (``Dec3``): DeepLabCut names training sets ``<Task><date>-trainset95shuffle1`` from it.
    """
    config = {
        "Task": task,
        "scorer": scorer,
        "date": dlc_date(datetime.date.today()),
        "multianimalproject": False,
        "identity": None,
        "project_path": str(Path(root).resolve()),
        "video_sets": {path: {"crop": f"0, {w}, 0, {h}"} for path, (w, h) in videos},
        "bodyparts": list(bodyparts),
        "start": 0,
        "stop": 1,
        "numframes2pick": 20,
        "skeleton": [list(pair) for pair in skeleton],
        "skeleton_color": "black",
        "pcutoff": 0.6,
        "dotsize": 8,
        "alphavalue": 0.7,
        "colormap": "rainbow",
        "TrainingFraction": [0.95],
        "iteration": 0,
        "default_net_type": "resnet_50",
        "snapshotindex": -1,
        "batch_size": 8,
        **(extra or {}),
    }
    return write_text_atomic(Path(root) / "config.yaml", yaml.safe_dump(config, sort_keys=False))


def dlc_date(day: datetime.date) -> str:
    """DeepLabCut's ``date`` key: the month's first three letters and the day (``Dec3``)."""
    return f"{day.strftime('%B')[:3]}{day.day}"
