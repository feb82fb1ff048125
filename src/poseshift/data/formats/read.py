"""``poseshift data import``: read any supported source into ``ImportedLabels``, then write it.

Groups, per format (a group is what group-aware splits keep together):

* Lightning Pose: the session folder under ``labeled-data/``, or one group for a flat folder;
* SLEAP .slp / NWB: the video (or image folder) each frame comes from;
* Label Studio: the folder of each task's image;
* YOLO: the split the image is in (``train``, ``val``...): a group split can reproduce it;
* COCO: the image's ``group`` (poseshift's export) or its folder; merged categories: the
  category (species), so out-of-domain means unseen species.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from poseshift.data.formats.detect import check_format, detect_format
from poseshift.data.formats.imported import ImportedLabels, write_imported
from poseshift.data.formats.lightning_pose import read_lightning_pose
from poseshift.data.formats.sleap_labels import from_sleap
from poseshift.data.project import PoseDataset
from poseshift.errors import PoseshiftError


@dataclass
class ImportOptions:
    format: str | None = None  # None: detected
    individual: str | None = None  # the track to keep in multi-animal sources
    predictions: bool = False  # also predicted instances (SLEAP, NWB)
    images: Path | None = None  # COCO, Label Studio: the folder holding the images
    categories: list[str] | None = None  # COCO: categories to import (merged)
    skeleton_base: int | None = None  # COCO: 0 or 1 (None: detected)
    yolo_splits: tuple[str, ...] = ("train", "val", "test")


def read_source(source: Path, options: ImportOptions) -> ImportedLabels:
    name = check_format(options.format) if options.format else detect_format(source)
    if name == "lightning-pose":
        return read_lightning_pose(source)
    if name == "coco":
        from poseshift.data.coco import read_coco_import

        return read_coco_import(
            source,
            options.images or source.parent,
            categories=options.categories,
            skeleton_base=options.skeleton_base,
        )
    from poseshift.data.formats import sleap_sources

    if name == "slp":
        labels = sleap_sources.load_slp(source)
    elif name == "nwb":
        labels = sleap_sources.load_nwb(source)
    elif name == "labelstudio":
        labels = sleap_sources.load_labelstudio(source, options.images or source.parent)
    else:
        return _read_yolo(source, options)
    return from_sleap(
        labels, source, individual=options.individual, predictions=options.predictions
    )


def _yolo_splits(root: Path, names: tuple[str, ...]) -> list[str]:
    """The splits data.yaml lists (``train: train/images``...) whose images are there."""
    try:
        config = yaml.safe_load((root / "data.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PoseshiftError(f"{root / 'data.yaml'} cannot be read: {exc}") from None
    if not isinstance(config, dict):
        raise PoseshiftError(
            f"{root / 'data.yaml'} is not a YAML mapping (train:, val:, kpt_shape:)"
        )
    return [n for n in names if isinstance(config.get(n), str) and (root / config[n]).is_dir()]


def _read_yolo(source: Path, options: ImportOptions) -> ImportedLabels:
    from poseshift.data.formats import sleap_sources

    root = source.parent if source.is_file() else source
    splits = _yolo_splits(root, options.yolo_splits)
    if not splits:
        raise PoseshiftError(
            f"{root / 'data.yaml'} names no image folder of the splits "
            f"{', '.join(options.yolo_splits)} that exists"
        )
    parts = []
    for split in splits:
        imported = from_sleap(
            sleap_sources.load_yolo(root, split),
            root,
            individual=options.individual,
            task=root.name,
        )
        for frame in imported.frames:
            frame.group = split
        parts.append(imported)
    merged = parts[0]
    for part in parts[1:]:
        merged.frames.extend(part.frames)
    return merged


def import_labels(
    source: str | Path, out_project: str | Path, options: ImportOptions
) -> PoseDataset:
    """Create the DeepLabCut project ``out_project`` from ``source``; nothing left on failure."""
    return write_imported(read_source(Path(source), options), out_project)
