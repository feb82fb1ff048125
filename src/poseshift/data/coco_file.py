"""Read a COCO keypoints json and check all of it before anything is imported.

Refused in one line naming the entry: a top level that is not an object (MPII-style lists),
entries that are not objects, missing or duplicate ids, annotations pointing at unknown
image or category ids, keypoints of the wrong length or that are not finite numbers,
visibility other than 0/1/2, skeleton indices out of range, no annotation at all.

Several categories with keypoints (AP-10K: 54 species) are refused unless ``categories``
chooses some (names or ids, or ``all``); the chosen ones must share one keypoint list and are
merged, each image remembering its category (the group of its frames on import).

COCO skeletons are 1-based. Some datasets (ATRW: ``[0, 2]``) write them 0-based. The base is
read from the indices when they tell: an index 0 can only be 0-based, an index equal to the
number of keypoints only 1-based. Otherwise it must be stated (``skeleton_base``), except in
files poseshift exported (1-based, as COCO specifies).
"""

from __future__ import annotations

import json
import math
import numbers
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
    category_of: dict[ImageId, str]  # the category name of each annotated image


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


def _name(category: dict) -> str:
    return str(category.get("name") or category["id"])


def _categories(data: dict, path: Path, wanted: list[str] | None) -> list[dict]:
    """The chosen categories with keypoints; several must share one keypoint list."""
    for index, category in enumerate(data["categories"]):
        if not _is_id(category.get("id")):
            raise PoseshiftError(f"COCO file {path}: categories[{index}] has no valid 'id'")
    with_keypoints = [c for c in data["categories"] if c.get("keypoints")]
    if not with_keypoints:
        raise PoseshiftError(f"COCO file {path}: no category has 'keypoints': not COCO keypoints")
    listed = ", ".join(_name(c) for c in with_keypoints[:8])
    listed += ", ..." if len(with_keypoints) > 8 else ""
    if wanted is None and len(with_keypoints) > 1:
        raise PoseshiftError(
            f"COCO file {path} has {len(with_keypoints)} categories with keypoints ({listed}); "
            "choose with --categories NAME[,NAME...] or --categories all (categories that share "
            "one keypoint list are merged, one group per category)"
        )
    chosen = with_keypoints
    if wanted is not None and wanted != ["all"]:
        keys = {str(c["id"]): c for c in with_keypoints} | {_name(c): c for c in with_keypoints}
        unknown = [name for name in wanted if name not in keys]
        if unknown:
            raise PoseshiftError(
                f"COCO file {path} has no category {unknown[0]!r} with keypoints; it has {listed}"
            )
        chosen = list({id(keys[name]): keys[name] for name in wanted}.values())
    for category in chosen:
        _check_keypoint_names(category, path)
        if category["keypoints"] != chosen[0]["keypoints"]:
            raise PoseshiftError(
                f"COCO file {path}: categories {_name(chosen[0])!r} and {_name(category)!r} "
                "have different keypoint lists and cannot be merged; import them separately"
            )
    return chosen


def _check_keypoint_names(category: dict, path: Path) -> None:
    names = category["keypoints"]
    where = f"COCO file {path}: category id {category['id']!r}"
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise PoseshiftError(f"{where}: 'keypoints' must be a list of keypoint names")
    repeated = [name for i, name in enumerate(names) if name in names[:i]]
    if repeated:
        raise PoseshiftError(f"{where}: keypoint name {repeated[0]!r} is listed twice")


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
    data: dict, chosen: list[dict], images: list[dict], path: Path
) -> tuple[dict[ImageId, np.ndarray], dict[ImageId, str]]:
    annotations = data["annotations"]
    _refuse_unknown(
        annotations, "category_id", {c["id"] for c in data["categories"]}, "categories", path
    )
    names = {c["id"]: _name(c) for c in chosen}
    ours = [(i, a) for i, a in enumerate(annotations) if a["category_id"] in names]
    if not ours:
        raise PoseshiftError(
            f"COCO file {path} has no annotation of category "
            f"{', '.join(repr(c['id']) for c in chosen)}: there are no keypoints to import"
        )
    _refuse_unknown([a for _, a in ours], "image_id", {im["id"] for im in images}, "images", path)
    by_image: dict[ImageId, np.ndarray] = {}
    category_of: dict[ImageId, str] = {}
    n_parts = len(chosen[0]["keypoints"])
    for index, ann in ours:
        if ann["image_id"] in by_image:
            raise PoseshiftError(
                f"COCO file {path}: image id {ann['image_id']!r} has several annotations; "
                "multi-animal data is not supported yet"
            )
        by_image[ann["image_id"]] = _points(ann, index, n_parts, path)
        category_of[ann["image_id"]] = names[ann["category_id"]]
    return by_image, category_of


def _skeleton_base(
    indices: set[int], n_parts: int, where: str, stated: int | None, ours: bool
) -> int:
    if stated is not None:
        return stated
    if 0 in indices:
        return 0
    if not indices or max(indices) >= n_parts or ours:  # poseshift writes COCO's 1-based
        return 1
    raise PoseshiftError(
        f"{where} uses keypoint numbers {min(indices)} to {max(indices)} of {n_parts}, which "
        "fit both 0-based and 1-based numbering; pass --skeleton-base 0 or 1"
    )


def _skeleton(
    category: dict, bodyparts: list[str], path: Path, base: int | None, ours: bool
) -> list[tuple[str, str]]:
    pairs = category.get("skeleton") or []
    where = f"COCO file {path}: skeleton"
    if not isinstance(pairs, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(_is_index(i) for i in p) for p in pairs
    ):
        raise PoseshiftError(f"{where} must be a list of [a, b] pairs of keypoint numbers")
    indices = {i for pair in pairs for i in pair}
    first = _skeleton_base(indices, len(bodyparts), where, base, ours)
    for pair in pairs:
        if not all(first <= i < first + len(bodyparts) for i in pair):
            raise PoseshiftError(
                f"{where} pair {pair} is out of range: keypoints are numbered {first} to "
                f"{first + len(bodyparts) - 1}"
            )
    return [(bodyparts[a - first], bodyparts[b - first]) for a, b in pairs]


def read_coco(
    path: Path, *, categories: list[str] | None = None, skeleton_base: int | None = None
) -> CocoKeypoints:
    """The checked content of a COCO keypoints file; every problem is a one-line error.

    ``categories``: names or ids of the categories to import (``["all"]``: every one with
    keypoints); ``skeleton_base``: 0 or 1 when the skeleton's indices do not tell.
    """
    data = _load_json(path)
    chosen = _categories(data, path, categories)
    for index, ann in enumerate(data["annotations"]):
        for key in ("image_id", "category_id"):
            if not _is_id(ann.get(key)):
                raise PoseshiftError(
                    f"COCO file {path}: annotations[{index}] has no valid {key!r} "
                    f"(got {ann.get(key)!r})"
                )
    images = _images(data, path)
    bodyparts = list(chosen[0]["keypoints"])
    info = data.get("info")
    scorer = info.get("scorer") if isinstance(info, dict) else None
    ours = isinstance(info, dict) and str(info.get("description", "")).endswith("by poseshift")
    keypoints, category_of = _keypoints_by_image(data, chosen, images, path)
    return CocoKeypoints(
        bodyparts=bodyparts,
        skeleton=_skeleton(chosen[0], bodyparts, path, skeleton_base, ours),
        images=images,
        keypoints=keypoints,
        task=_name(chosen[0]) if len(chosen) == 1 else "coco",
        scorer=scorer,
        category_of=category_of,
    )
