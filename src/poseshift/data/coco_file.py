"""Read a COCO keypoints json and check all of it before anything is imported.

Refused in one line naming the entry: a top level that is not an object (MPII-style lists),
entries that are not objects, missing or duplicate ids, annotations pointing at unknown
image or category ids, keypoints of the wrong length or that are not finite numbers,
visibility other than 0/1/2, skeleton indices out of range, no annotation at all.

COCO skeletons are 1-based. Some datasets (ATRW: ``[0, 2]``) write them 0-based; an index 0
can only be 0-based, so such a skeleton is read 0-based, with a warning. A 0-based skeleton
that never uses keypoint 0 cannot be told apart and is read 1-based, as COCO specifies.
"""

from __future__ import annotations

import json
import math
import numbers
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poseshift.errors import PoseshiftError

ImageId = int | str


@dataclass
class CocoKeypoints:
    """The checked content of a single-species COCO keypoints file."""

    bodyparts: list[str]
    skeleton: list[tuple[str, str]]
    images: list[dict]  # each has an ImageId "id" (unique) and a "file_name"
    keypoints: dict[ImageId, np.ndarray]  # (K, 2) float32 per annotated image, NaN = unlabeled
    task: str
    scorer: str | None  # info.scorer, as poseshift's export writes it


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_id(value: object) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _is_index(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PoseshiftError(f"COCO file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise PoseshiftError(f"COCO file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PoseshiftError(
            f"COCO file {path}: the top level is a JSON {type(data).__name__}, not an object "
            "with images, annotations and categories; this is not COCO keypoints "
            "(MPII-style lists need converting to COCO first)"
        )
    for key in ("images", "annotations", "categories"):
        entries = data.get(key)
        if not isinstance(entries, list):
            raise PoseshiftError(f"COCO file {path}: key {key!r} is missing or not a list")
        bad = next((i for i, entry in enumerate(entries) if not isinstance(entry, dict)), None)
        if bad is not None:
            raise PoseshiftError(f"COCO file {path}: {key}[{bad}] is not an object")
    return data


def _category(data: dict, path: Path) -> dict:
    for index, category in enumerate(data["categories"]):
        if not _is_id(category.get("id")):
            raise PoseshiftError(f"COCO file {path}: categories[{index}] has no valid 'id'")
    with_keypoints = [c for c in data["categories"] if c.get("keypoints")]
    if len(with_keypoints) != 1:
        raise PoseshiftError(
            f"COCO file {path}: expected exactly one category with 'keypoints', found "
            f"{len(with_keypoints)}; several animal species are not supported yet"
        )
    category = with_keypoints[0]
    names = category["keypoints"]
    where = f"COCO file {path}: category id {category['id']!r}"
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise PoseshiftError(f"{where}: 'keypoints' must be a list of keypoint names")
    repeated = [name for i, name in enumerate(names) if name in names[:i]]
    if repeated:
        raise PoseshiftError(f"{where}: keypoint name {repeated[0]!r} is listed twice")
    return category


def _images(data: dict, path: Path) -> list[dict]:
    seen: dict[ImageId, int] = {}
    for index, image in enumerate(data["images"]):
        image_id = image.get("id")
        if not _is_id(image_id):
            raise PoseshiftError(
                f"COCO file {path}: images[{index}] has no valid 'id' (got {image_id!r})"
            )
        if image_id in seen:
            raise PoseshiftError(
                f"COCO file {path}: image id {image_id!r} is used by images[{seen[image_id]}] "
                f"and images[{index}]; each image needs its own id"
            )
        seen[image_id] = index
        for key in ("width", "height"):
            if key in image and not (isinstance(image[key], int) and image[key] > 0):
                raise PoseshiftError(
                    f"COCO file {path}: image id {image_id!r} has {key} {image[key]!r}, "
                    "not a positive whole number"
                )
    return data["images"]


def _refuse_unknown(annotations: list[dict], key: str, known: set, listed: str, path: Path) -> None:
    """Annotations whose ``key`` is no id in the ``listed`` entries would be lost silently."""
    unknown = [ann[key] for ann in annotations if ann[key] not in known]
    if unknown:
        raise PoseshiftError(
            f"COCO file {path}: {len(unknown)} annotation(s) have a {key} that is not in "
            f"'{listed}', the first {unknown[0]!r}; fix the ids or remove those annotations"
        )


def _points(ann: dict, index: int, n_parts: int, path: Path) -> np.ndarray:
    where = f"COCO file {path}: annotations[{index}] (id {ann.get('id')!r})"
    flat = ann.get("keypoints")
    if not isinstance(flat, list) or len(flat) != 3 * n_parts:
        raise PoseshiftError(
            f"{where} needs {3 * n_parts} keypoint values (x, y, v for {n_parts} keypoints), "
            f"got {len(flat) if isinstance(flat, list) else type(flat).__name__}"
        )
    bad = next((v for v in flat if not _is_number(v) or not math.isfinite(v)), None)
    if bad is not None:
        raise PoseshiftError(f"{where}: keypoint value {bad!r} is not a finite number")
    triples = np.asarray(flat, dtype=np.float64).reshape(n_parts, 3)
    if not np.isin(triples[:, 2], (0, 1, 2)).all():
        raise PoseshiftError(f"{where}: visibility must be 0, 1 or 2 (every third value)")
    points = triples[:, :2].astype(np.float32)
    points[triples[:, 2] == 0] = np.nan  # visibility 0: not labeled
    return points


def _keypoints_by_image(
    data: dict, category: dict, images: list[dict], path: Path
) -> dict[ImageId, np.ndarray]:
    annotations = data["annotations"]
    _refuse_unknown(
        annotations, "category_id", {c["id"] for c in data["categories"]}, "categories", path
    )
    ours = [(i, a) for i, a in enumerate(annotations) if a["category_id"] == category["id"]]
    if not ours:
        raise PoseshiftError(
            f"COCO file {path} has no annotation of category {category['id']!r}: "
            "there are no keypoints to import"
        )
    _refuse_unknown([a for _, a in ours], "image_id", {im["id"] for im in images}, "images", path)
    by_image: dict[ImageId, np.ndarray] = {}
    for index, ann in ours:
        if ann["image_id"] in by_image:
            raise PoseshiftError(
                f"COCO file {path}: image id {ann['image_id']!r} has several annotations; "
                "multi-animal data is not supported yet"
            )
        by_image[ann["image_id"]] = _points(ann, index, len(category["keypoints"]), path)
    return by_image


def _skeleton(category: dict, bodyparts: list[str], path: Path) -> list[tuple[str, str]]:
    pairs = category.get("skeleton") or []
    where = f"COCO file {path}: skeleton"
    if not isinstance(pairs, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(_is_index(i) for i in p) for p in pairs
    ):
        raise PoseshiftError(f"{where} must be a list of [a, b] pairs of keypoint numbers")
    first = 0 if any(0 in pair for pair in pairs) else 1
    if first == 0:
        warnings.warn(
            f"{where} uses index 0, so it is read as 0-based (COCO specifies 1-based)",
            stacklevel=3,
        )
    for pair in pairs:
        if not all(first <= i < first + len(bodyparts) for i in pair):
            raise PoseshiftError(
                f"{where} pair {pair} is out of range: keypoints are numbered {first} to "
                f"{first + len(bodyparts) - 1}"
            )
    return [(bodyparts[a - first], bodyparts[b - first]) for a, b in pairs]


def read_coco(path: Path) -> CocoKeypoints:
    """The checked content of a COCO keypoints file; every problem is a one-line error."""
    data = _load_json(path)
    category = _category(data, path)
    for index, ann in enumerate(data["annotations"]):
        for key in ("image_id", "category_id"):
            if not _is_id(ann.get(key)):
                raise PoseshiftError(
                    f"COCO file {path}: annotations[{index}] has no valid {key!r} "
                    f"(got {ann.get(key)!r})"
                )
    images = _images(data, path)
    bodyparts = list(category["keypoints"])
    info = data.get("info")
    scorer = info.get("scorer") if isinstance(info, dict) else None
    return CocoKeypoints(
        bodyparts=bodyparts,
        skeleton=_skeleton(category, bodyparts, path),
        images=images,
        keypoints=_keypoints_by_image(data, category, images, path),
        task=str(category.get("name") or "coco"),
        scorer=scorer,
    )
