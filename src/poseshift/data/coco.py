"""COCO keypoints json in and out of a DeepLabCut project, losslessly.

Export: one image entry per labeled frame (with its group), one annotation per image that has
any label (visibility 2 for labeled keypoints, 0 with zero coordinates for unlabeled), bbox
from the keypoints, and a category carrying bodypart names and the skeleton.
Import: the reverse, copying images into ``labeled-data/<group>/`` (through
``formats.imported.write_imported``, the one project writer for every import).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from poseshift.data.coco_file import read_coco
from poseshift.data.formats.imported import ImportedFrame, ImportedLabels, write_imported
from poseshift.data.images import image_size
from poseshift.data.project import PoseDataset
from poseshift.errors import PoseshiftError
from poseshift.fsutil import safe_child, write_json_atomic


def to_coco(dataset: PoseDataset) -> dict:
    """The COCO-keypoints dictionary of a project."""
    parts = dataset.bodyparts
    category = {
        "id": 1,
        "name": dataset.task,
        "supercategory": "animal",
        "keypoints": parts,
        "skeleton": [[parts.index(a) + 1, parts.index(b) + 1] for a, b in dataset.skeleton],
    }
    images: list[dict] = []
    annotations: list[dict] = []
    for i, name in enumerate(dataset.images):
        width, height = (int(v) for v in dataset.image_sizes[i])
        images.append(
            {
                "id": i + 1,
                "file_name": name,
                "width": width,
                "height": height,
                "group": dataset.groups[i],
            }
        )
        points = dataset.keypoints[i]
        labeled = ~np.isnan(points).any(axis=1)  # x or y missing: unlabeled, never NaN in JSON
        if labeled.any():
            annotations.append(_annotation(len(annotations) + 1, i + 1, points, labeled))
    return {
        "info": {"description": f"{dataset.task} exported by poseshift", "scorer": dataset.scorer},
        "images": images,
        "annotations": annotations,
        "categories": [category],
    }


def _annotation(ann_id: int, image_id: int, points: np.ndarray, labeled: np.ndarray) -> dict:
    flat = []
    for (x, y), ok in zip(points.tolist(), labeled.tolist(), strict=True):
        flat += [x, y, 2] if ok else [0, 0, 0]
    lo, hi = points[labeled].min(axis=0), points[labeled].max(axis=0)
    width, height = (float(v) for v in hi - lo)
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "keypoints": flat,
        "num_keypoints": int(labeled.sum()),
        "bbox": [float(lo[0]), float(lo[1]), width, height],
        "area": width * height,
        "iscrowd": 0,
    }


def export_coco(dataset: PoseDataset, out_json: str | Path) -> Path:
    return write_json_atomic(out_json, to_coco(dataset))


# ----------------------------------------------------------------------------- import


def _destination(image: dict, path: Path, labeled: Path, group: str | None) -> tuple[str, str]:
    """(group, file name) of an image in the new project's ``labeled`` folder.

    Both names come from the JSON: each must be one plain name so that the copy lands in
    ``labeled-data/<group>/`` and nowhere else (no '..', absolute paths or backslashes).
    """
    file_name = image.get("file_name")
    if not file_name or not isinstance(file_name, str):
        raise PoseshiftError(f"COCO file {path}: image id {image.get('id')} has no file_name")
    parts = re.split(r"[\\/]", file_name)  # Windows-made files use backslashes
    group = group or image.get("group") or (parts[-2] if len(parts) > 1 else "coco")
    where = f"COCO file {path}: image id {image.get('id')}"
    folder = safe_child(labeled, group, f"{where} group")
    safe_child(folder, parts[-1], f"{where} file name")
    return str(group), parts[-1]


def _source_image(image: dict, name: str, coco_json: Path, images_dir: Path) -> Path:
    """The image file, checked to be the size the keypoints were placed on.

    Only the exact file_name path is used: falling back to its bare name would take another
    folder's same-named frame (``img000.png`` of every video) when --images is one level off.
    """
    file_name = image["file_name"]
    source = images_dir / file_name.replace("\\", "/")
    if not source.is_file():
        hint = ""
        if name != file_name and (images_dir / name).is_file():
            hint = f" ({images_dir} holds a {name!r}: is --images one folder too deep?)"
        raise PoseshiftError(
            f"COCO file {coco_json}: image {file_name!r} not found in "
            f"{images_dir}; pass the folder the file_name paths are relative to (--images)" + hint
        )
    size = image_size(source)
    recorded = (image.get("width", size[0]), image.get("height", size[1]))
    if recorded != size:
        raise PoseshiftError(
            f"COCO file {coco_json}: image id {image['id']!r} is recorded as "
            f"{recorded[0]}x{recorded[1]} but {source} is {size[0]}x{size[1]}; "
            "the keypoints belong to another version of the image"
        )
    return source


def read_coco_import(
    coco_json: Path,
    images_dir: Path,
    *,
    categories: list[str] | None = None,
    skeleton_base: int | None = None,
) -> ImportedLabels:
    """COCO keypoints as labels to import: every image of the file, labeled or not.

    With several categories merged, a frame's group is its category (species), so that
    out-of-domain means species the network never saw.
    """
    coco = read_coco(coco_json, categories=categories, skeleton_base=skeleton_base)
    merged = len(set(coco.category_of.values())) > 1
    unlabeled = np.full((len(coco.bodyparts), 2), np.nan, dtype=np.float32)
    labeled = Path("labeled-data")
    frames = []
    for image in coco.images:
        if merged and image["id"] not in coco.category_of:
            continue  # an image of a category that was not chosen
        category = coco.category_of.get(image["id"]) if merged else None
        group, name = _destination(image, coco_json, labeled, category)
        source = _source_image(image, name, coco_json, images_dir)
        points = coco.keypoints.get(image["id"], unlabeled)
        frames.append(ImportedFrame(group, name, points, copy_from=source))
    return ImportedLabels(
        source=coco_json,
        scorer=str(coco.scorer or "coco"),
        bodyparts=coco.bodyparts,
        frames=frames,
        skeleton=coco.skeleton,
        task=coco.task,
        scorer_key="info.scorer",
    )


def import_coco(
    coco_json: str | Path,
    images_dir: str | Path,
    out_project: str | Path,
    *,
    categories: list[str] | None = None,
    skeleton_base: int | None = None,
) -> PoseDataset:
    """Build a DeepLabCut project from COCO keypoints; nothing is left if it fails."""
    labels = read_coco_import(
        Path(coco_json), Path(images_dir), categories=categories, skeleton_base=skeleton_base
    )
    return write_imported(labels, out_project)
