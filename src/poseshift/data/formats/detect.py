"""Which tool a label source comes from, told from the file itself (``--format`` overrides)."""

from __future__ import annotations

import json
from pathlib import Path

from poseshift.errors import PoseshiftError

FORMATS = ("lightning-pose", "slp", "nwb", "coco", "labelstudio", "yolo")


def check_format(name: str) -> str:
    if name not in FORMATS:
        raise PoseshiftError(f"--format {name!r} is not one of {', '.join(FORMATS)}")
    return name


def _json_format(path: Path) -> str:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PoseshiftError(
            f"{path} is not valid JSON ({str(exc)[:120]}): it is truncated or foreign"
        ) from None
    if isinstance(data, dict) and "annotations" in data and "images" in data:
        return "coco"
    if (
        isinstance(data, list)
        and data
        and all(isinstance(t, dict) and ("annotations" in t or "completions" in t) for t in data)
    ):
        return "labelstudio"
    raise PoseshiftError(
        f"{path} is neither COCO keypoints (an object with images and annotations) nor a "
        "Label Studio export (a list of tasks with annotations); pass --format if it is one"
    )


def detect_format(source: Path) -> str:
    """One of ``FORMATS``; a source that fits none is a one-line error."""
    if not source.exists():
        raise PoseshiftError(f"{source} does not exist")
    if source.is_dir():
        if (source / "data.yaml").is_file():
            return "yolo"
        if list(source.glob("CollectedData*.csv")):
            return "lightning-pose"
        if (source / "config.yaml").is_file():
            raise PoseshiftError(f"{source} is a DeepLabCut project already: use it directly")
    else:
        suffix = source.suffix.lower()
        if suffix in (".slp", ".nwb"):
            return suffix[1:]
        if suffix == ".csv":
            return "lightning-pose"
        if source.name == "data.yaml":
            return "yolo"
        if suffix == ".json":
            return _json_format(source)
    raise PoseshiftError(
        f"cannot tell which tool {source} comes from; pass --format, one of {', '.join(FORMATS)}"
    )
