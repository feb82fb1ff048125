"""COCO keypoints json in and out of a DeepLabCut project, losslessly.

Export: one image entry per labeled frame (with its group), one annotation per image that has
any label (visibility 2 for labeled keypoints, 0 with zero coordinates for unlabeled), bbox
from the keypoints, and a category carrying bodypart names and the skeleton.
Import: the reverse, copying images into ``labeled-data/<group>/``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from poseshift.data.coco_file import CocoKeypoints, read_coco
from poseshift.data.images import image_size
from poseshift.data.project import PoseDataset, write_project
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
        labeled = ~np.isnan(points[:, 0])
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


def _destination(image: dict, path: Path, labeled: Path) -> tuple[str, str]:
    """(group, file name) of an image in the new project's ``labeled`` folder.

    Both names come from the JSON: each must be one plain name so that the copy lands in
    ``labeled-data/<group>/`` and nowhere else (no '..', absolute paths or backslashes).
    """
    file_name = image.get("file_name")
    if not file_name or not isinstance(file_name, str):
        raise PoseshiftError(f"COCO file {path}: image id {image.get('id')} has no file_name")
    parts = re.split(r"[\\/]", file_name)  # Windows-made files use backslashes
    group = image.get("group") or (parts[-2] if len(parts) > 1 else "coco")
    where = f"COCO file {path}: image id {image.get('id')}"
    folder = safe_child(labeled, group, f"{where} group")
    safe_child(folder, parts[-1], f"{where} file name")
    return str(group), parts[-1]


def _plan_copies(
    coco: CocoKeypoints, coco_json: Path, images_dir: Path, labeled: Path
) -> list[tuple[Path, str, tuple[int, int]]]:
    """(source file, name in the project, size) of every image, all checked before copying."""
    plan, taken = [], set()
    for image in coco.images:
        group, name = _destination(image, coco_json, labeled)
        source = images_dir / image["file_name"]
        if not source.is_file():
            source = images_dir / name
        if not source.is_file():
            raise PoseshiftError(
                f"COCO file {coco_json}: image {image['file_name']!r} not found in "
                f"{images_dir}; pass the folder the file_name paths are relative to"
            )
        relative = f"labeled-data/{group}/{name}"
        if relative in taken:
            raise PoseshiftError(f"COCO file {coco_json}: two images map to {relative}")
        taken.add(relative)
        size = image_size(source)
        recorded = (image.get("width", size[0]), image.get("height", size[1]))
        if recorded != size:
            # Keypoints were placed on a picture of the recorded size: they would be wrong.
            raise PoseshiftError(
                f"COCO file {coco_json}: image id {image['id']!r} is recorded as "
                f"{recorded[0]}x{recorded[1]} but {source} is {size[0]}x{size[1]}; "
                "the keypoints belong to another version of the image"
            )
        plan.append((source, relative, size))
    return plan


def import_coco(
    coco_json: str | Path, images_dir: str | Path, out_project: str | Path, scorer: str = "coco"
) -> PoseDataset:
    """Build a DeepLabCut project from COCO keypoints; nothing is left if it fails."""
    coco_json, images_dir, out_project = Path(coco_json), Path(images_dir), Path(out_project)
    if out_project.exists() and any(out_project.iterdir()):
        raise PoseshiftError(f"{out_project} exists and is not empty; choose a new folder")
    coco = read_coco(coco_json)
    scorer = coco.scorer or scorer
    # The scorer names the CollectedData_<scorer>.h5 files: check it before anything is written.
    safe_child(out_project, f"CollectedData_{scorer}", f"COCO file {coco_json}: info.scorer")
    plan = _plan_copies(coco, coco_json, images_dir, out_project / "labeled-data")
    unlabeled = np.full((len(coco.bodyparts), 2), np.nan, dtype=np.float32)
    out_project.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_project.name}.", dir=out_project.parent))
    try:
        for source, relative, _ in plan:
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, staging / relative)
        dataset = PoseDataset(
            root=staging,
            scorer=str(scorer),
            bodyparts=coco.bodyparts,
            images=[relative for _, relative, _ in plan],
            keypoints=np.stack([coco.keypoints.get(im["id"], unlabeled) for im in coco.images]),
            groups=[relative.split("/")[1] for _, relative, _ in plan],
            image_sizes=np.array([size for _, _, size in plan], dtype=np.int64),
            skeleton=coco.skeleton,
            task=coco.task,
        )
        write_project(dataset, project_path=out_project)
        if out_project.exists():
            out_project.rmdir()
        staging.rename(out_project)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    dataset.root = out_project
    return dataset
