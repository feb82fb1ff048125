"""COCO keypoints: export layout and the lossless round trip project -> json -> project.

Bad COCO files are in tests/bad_inputs/test_coco.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_project
from poseshift.data.coco import export_coco, import_coco, to_coco
from poseshift.data.project import load_project


def test_export_layout(tiny_project: Path) -> None:
    coco = to_coco(load_project(tiny_project))
    category = coco["categories"][0]
    assert category["keypoints"] == ["Nose", "Eye", "Tail"]
    assert category["skeleton"] == [[1, 2]]
    ann = coco["annotations"][0]
    assert len(ann["keypoints"]) == 9 and ann["keypoints"][2] == 2
    x, y, w, h = ann["bbox"]
    xs, ys = ann["keypoints"][0::3], ann["keypoints"][1::3]
    assert (x, y, x + w, y + h) == pytest.approx((min(xs), min(ys), max(xs), max(ys)))
    assert coco["images"][0]["group"] == "video0"


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mask=st.lists(st.booleans(), min_size=36, max_size=36), seed=st.integers(0, 99))
@pytest.mark.filterwarnings("ignore:.*have no labels")
def test_round_trip_is_lossless(tmp_path_factory, mask: list[bool], seed: int) -> None:
    root = tmp_path_factory.mktemp("coco")
    original = make_project(root / "src", seed=seed)
    original.keypoints[np.array(mask).reshape(12, 3)] = np.nan  # unlabeled <-> visibility 0
    from poseshift.data.project import write_project

    write_project(original)
    export_coco(load_project(root / "src"), root / "labels.json")
    back = import_coco(root / "labels.json", root / "src", root / "dst")
    loaded = load_project(root / "dst")
    assert loaded.images == original.images
    assert loaded.groups == original.groups
    assert loaded.bodyparts == original.bodyparts and loaded.skeleton == original.skeleton
    assert loaded.scorer == original.scorer
    np.testing.assert_array_equal(loaded.keypoints, original.keypoints)
    assert back.root == root / "dst"
    for name in original.images:
        assert (root / "dst" / name).read_bytes() == (root / "src" / name).read_bytes()
