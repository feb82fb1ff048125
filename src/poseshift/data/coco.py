"""COCO keypoints json in and out of a DeepLabCut project, losslessly.

Export: one image entry per labeled frame (with its group), one annotation per image that has
any label (visibility 2 for labeled keypoints, 0 with zero coordinates for unlabeled), bbox
from the keypoints, and a category carrying bodypart names and the skeleton.
Import: the reverse, copying images into ``labeled-data/<group>/``.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from poseshift.data.project import PoseDataset, image_size, write_project
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
    images, annotations = [], []
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


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PoseshiftError(f"COCO file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PoseshiftError(f"COCO file {path} is not valid JSON: {exc}") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise PoseshiftError(f"COCO file {path}: key {key!r} is missing or not a list")
    return data


def _category(data: dict, path: Path) -> dict:
    with_keypoints = [c for c in data["categories"] if c.get("keypoints")]
    if len(with_keypoints) != 1:
        raise PoseshiftError(
            f"COCO file {path}: expected exactly one category with 'keypoints', found "
            f"{len(with_keypoints)}; several animal species are not supported yet"
        )
    return with_keypoints[0]


def _keypoints_by_image(data: dict, category: dict, path: Path) -> dict[int, np.ndarray]:
    n_parts = len(category["keypoints"])
    by_image: dict[int, np.ndarray] = {}
    for ann in data["annotations"]:
        if ann.get("category_id") != category["id"]:
            continue
        flat = ann.get("keypoints")
        if not isinstance(flat, list) or len(flat) != 3 * n_parts:
            raise PoseshiftError(
                f"COCO file {path}: annotation id {ann.get('id')} needs {3 * n_parts} keypoint "
                f"values (x, y, v for {n_parts} keypoints)"
            )
        if ann.get("image_id") in by_image:
            raise PoseshiftError(
                f"COCO file {path}: image id {ann.get('image_id')} has several annotations; "
                "multi-animal data is not supported yet"
            )
        triples = np.asarray(flat, dtype=np.float64).reshape(n_parts, 3)
        points = triples[:, :2].astype(np.float32)
        points[triples[:, 2] == 0] = np.nan  # visibility 0: not labeled
        by_image[ann["image_id"]] = points
    return by_image


def _destination(image: dict, path: Path, labeled: Path) -> tuple[str, str, Path]:
    """(group, file name, target path under ``labeled``) of an image in the new project.

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
    target = safe_child(folder, parts[-1], f"{where} file name")
    return str(group), parts[-1], target


def import_coco(
    coco_json: str | Path, images_dir: str | Path, out_project: str | Path, scorer: str = "coco"
) -> PoseDataset:
    """Build a DeepLabCut project from COCO keypoints; nothing is left if it fails."""
    coco_json, images_dir, out_project = Path(coco_json), Path(images_dir), Path(out_project)
    if out_project.exists() and any(out_project.iterdir()):
        raise PoseshiftError(f"{out_project} exists and is not empty; choose a new folder")
    data = _load_json(coco_json)
    category = _category(data, coco_json)
    by_image = _keypoints_by_image(data, category, coco_json)
    bodyparts = [str(name) for name in category["keypoints"]]
    skeleton = [(bodyparts[a - 1], bodyparts[b - 1]) for a, b in category.get("skeleton") or []]
    scorer = (data.get("info") or {}).get("scorer") or scorer
    # The scorer names the CollectedData_<scorer>.h5 files: check it before anything is written.
    safe_child(out_project, f"CollectedData_{scorer}", f"COCO file {coco_json}: info.scorer")
    out_project.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_project.name}.", dir=out_project.parent))
    try:
        images, keypoints, groups, sizes = [], [], [], []
        for image in data["images"]:
            group, name, target = _destination(image, coco_json, staging / "labeled-data")
            source = images_dir / image["file_name"]
            if not source.is_file():
                source = images_dir / name
            if not source.is_file():
                raise PoseshiftError(
                    f"COCO file {coco_json}: image {image['file_name']!r} not found in "
                    f"{images_dir}; pass the folder the file_name paths are relative to"
                )
            relative = f"labeled-data/{group}/{name}"
            if target.exists():
                raise PoseshiftError(f"COCO file {coco_json}: two images map to {relative}")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            images.append(relative)
            groups.append(group)
            sizes.append(image_size(target))
            empty = np.full((len(bodyparts), 2), np.nan, dtype=np.float32)
            keypoints.append(by_image.get(image.get("id"), empty))
        dataset = PoseDataset(
            root=staging,
            scorer=str(scorer),
            bodyparts=bodyparts,
            images=images,
            keypoints=np.stack(keypoints) if keypoints else np.zeros((0, len(bodyparts), 2)),
            groups=groups,
            image_sizes=np.array(sizes, dtype=np.int64),
            skeleton=skeleton,
            task=str(category.get("name") or "coco"),
        )
        write_project(dataset, project_path=out_project)
        if out_project.exists():
            out_project.rmdir()
        staging.rename(out_project)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    dataset.root = out_project
    return dataset
