"""Bad COCO keypoints files for ``import_coco`` / ``poseshift data import``.

Each is refused in one line naming the file and the entry, before anything is written: no
output project, no hidden staging folder. A 0-based skeleton (ATRW) is mapped correctly.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from refusals import cli_refuses, one_line_error

from conftest import make_project
from poseshift.data.coco import import_coco, to_coco
from poseshift.data.project import load_project
from poseshift.data.project_config import dlc_date
from poseshift.errors import PoseshiftError


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A project whose images the COCO files point at (3 bodyparts, 2 groups x 2 frames)."""
    make_project(tmp_path / "src", groups=2, frames=2)
    return tmp_path / "src"


def good_coco(source: Path) -> dict:
    return to_coco(load_project(source))


def refused(tmp_path: Path, source: Path, data: object, match: str) -> str:
    """import_coco must refuse ``data`` with ``match``, naming the file, leaving nothing."""
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    out = tmp_path / "out" / "new"
    with pytest.raises(PoseshiftError, match=match) as excinfo:
        import_coco(path, source, out)
    message = one_line_error(excinfo)
    assert str(path) in message
    assert not (tmp_path / "out").exists()  # not even the parent or a staging folder
    return message


def edited(data: dict, edit) -> dict:
    copy = json.loads(json.dumps(data))
    edit(copy)
    return copy


def test_top_level_list_is_not_coco(tmp_path: Path, source: Path) -> None:
    mpii_style = [{"image": "a.png", "joints": [[1, 2]]}]
    refused(tmp_path, source, mpii_style, r"top level is a JSON list, not an object")


def test_missing_keys_and_non_object_entries(tmp_path: Path, source: Path) -> None:
    refused(tmp_path, source, {"images": [], "categories": []}, "key 'annotations' is missing")
    data = edited(good_coco(source), lambda d: d["images"].append("x.png"))
    refused(tmp_path, source, data, r"images\[4\] is not an object")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d["images"][2].pop("id"), r"images\[2\] has no valid 'id'"),
        (lambda d: d["images"][0].update(id=True), r"images\[0\] has no valid 'id'"),
        (lambda d: d["annotations"][1].pop("image_id"), r"annotations\[1\] has no valid 'image_id"),
        (lambda d: d["annotations"][0].pop("category_id"), r"no valid 'category_id'"),
        (lambda d: d["categories"][0].pop("id"), r"categories\[0\] has no valid 'id'"),
    ],
)
def test_missing_ids(tmp_path: Path, source: Path, edit, match: str) -> None:
    refused(tmp_path, source, edited(good_coco(source), edit), match)


def test_duplicate_image_ids(tmp_path: Path, source: Path) -> None:
    """Today image 2 silently got image 1's labels."""
    data = edited(good_coco(source), lambda d: d["images"][1].update(id=1))
    refused(tmp_path, source, data, r"image id 1 is used by images\[0\] and images\[1\]")


def test_annotations_with_unknown_ids_are_not_dropped(tmp_path: Path, source: Path) -> None:
    def unknown_images(d: dict) -> None:
        d["annotations"][1]["image_id"] = 77
        d["annotations"][3]["image_id"] = 78

    message = refused(tmp_path, source, edited(good_coco(source), unknown_images), "2 annot")
    assert "image_id that is not in 'images', the first 77" in message
    data = edited(good_coco(source), lambda d: d["annotations"][2].update(category_id=5))
    refused(tmp_path, source, data, r"1 annotation\(s\) have a category_id .* the first 5")


@pytest.mark.parametrize(
    ("keypoints", "match"),
    [
        ([1, 2], r"annotations\[0\] \(id 1\) needs 9 keypoint values .* got 2"),
        ("1,2,2", r"needs 9 keypoint values .* got str"),
        (["10", "5", 2] * 3, r"keypoint value '10' is not a finite number"),
        ([10, 5, True] * 3, r"keypoint value True is not a finite number"),
        ([10, 5, 3] * 3, r"visibility must be 0, 1 or 2"),
        ([float("nan"), 5, 2] * 3, r"keypoint value nan is not a finite number"),
    ],
)
def test_bad_keypoints(tmp_path: Path, source: Path, keypoints, match: str) -> None:
    data = edited(good_coco(source), lambda d: d["annotations"][0].update(keypoints=keypoints))
    refused(tmp_path, source, data, match)


@pytest.mark.parametrize(
    ("skeleton", "match"),
    [
        ([[1, 4]], r"skeleton pair \[1, 4\] is out of range: keypoints are numbered 1 to 3"),
        ([[0, 3]], r"skeleton pair \[0, 3\] is out of range: keypoints are numbered 0 to 2"),
        ([[-1, 2]], r"pair \[-1, 2\] is out of range"),
        ([[1, 2, 3]], r"skeleton must be a list of \[a, b\] pairs"),
        ([["Nose", "Eye"]], r"skeleton must be a list of \[a, b\] pairs"),
    ],
)
def test_bad_skeleton(tmp_path: Path, source: Path, skeleton, match: str) -> None:
    data = edited(good_coco(source), lambda d: d["categories"][0].update(skeleton=skeleton))
    refused(tmp_path, source, data, match)


def foreign(data: dict, skeleton: list) -> dict:
    """``data`` as another tool writes it: no poseshift info, the given skeleton."""

    def edit(d: dict) -> None:
        d.pop("info")
        d["categories"][0]["skeleton"] = skeleton

    return edited(data, edit)


def test_zero_based_skeleton_is_detected_and_mapped(tmp_path: Path, source: Path) -> None:
    """ATRW writes [0, 2]: index 0 can only be 0-based; it once became (Tail, Eye)."""
    (tmp_path / "atrw.json").write_text(json.dumps(foreign(good_coco(source), [[0, 2]])))
    dataset = import_coco(tmp_path / "atrw.json", source, tmp_path / "new")
    assert dataset.skeleton == [("Nose", "Tail")]
    assert load_project(tmp_path / "new").skeleton == [("Nose", "Tail")]


def test_ambiguous_skeleton_base_must_be_stated(tmp_path: Path, source: Path) -> None:
    """[1, 2] of 3 keypoints fits both numberings: refused until --skeleton-base says which."""
    data = foreign(good_coco(source), [[1, 2]])
    refused(tmp_path, source, data, r"fit both 0-based and 1-based numbering; pass --skeleton-base")
    (tmp_path / "f.json").write_text(json.dumps(data))
    zero = import_coco(tmp_path / "f.json", source, tmp_path / "zero", skeleton_base=0)
    one = import_coco(tmp_path / "f.json", source, tmp_path / "one", skeleton_base=1)
    assert zero.skeleton == [("Eye", "Tail")] and one.skeleton == [("Nose", "Eye")]
    line = cli_refuses(["data", "import", tmp_path / "f.json", tmp_path / "cli"], "f.json")
    assert "--skeleton-base" in line and not (tmp_path / "cli").exists()


def two_species(source: Path) -> dict:
    """AP-10K style: the images of group 0 are cats, of group 1 dogs, one keypoint list."""

    def edit(d: dict) -> None:
        cat = dict(d["categories"][0], id=1, name="cat")
        d["categories"] = [cat, dict(cat, id=2, name="dog")]
        groups = {im["id"]: im.pop("group") for im in d["images"]}
        first = groups[1]
        for ann in d["annotations"]:
            ann["category_id"] = 1 if groups[ann["image_id"]] == first else 2

    return edited(good_coco(source), edit)


def test_several_species_are_chosen_or_merged(tmp_path: Path, source: Path) -> None:
    data = two_species(source)
    refused(tmp_path, source, data, r"2 categories with keypoints \(cat, dog\); choose with")
    (tmp_path / "ap10k.json").write_text(json.dumps(data))
    cats = import_coco(tmp_path / "ap10k.json", source, tmp_path / "cats", categories=["cat"])
    assert len(cats) == 4 and cats.task == "cat"  # the dogs' images come along unlabeled
    both = import_coco(tmp_path / "ap10k.json", source, tmp_path / "both", categories=["all"])
    assert sorted(set(both.groups)) == ["cat", "dog"]  # out of domain = an unseen species
    assert load_project(tmp_path / "both").group_names == ["cat", "dog"]
    with pytest.raises(PoseshiftError, match=r"no category 'horse' with keypoints; it has cat"):
        import_coco(tmp_path / "ap10k.json", source, tmp_path / "no", categories=["horse"])


def test_config_names_today_and_no_missing_video(tmp_path: Path, source: Path) -> None:
    """DeepLabCut names training sets after 'date'; video_sets entries must exist: a folder
    without its video is listed by its own path (check_labels finds folders by those names)."""
    (tmp_path / "c.json").write_text(json.dumps(good_coco(source)))
    import_coco(tmp_path / "c.json", source, tmp_path / "new")
    config = yaml.safe_load((tmp_path / "new" / "config.yaml").read_text())
    assert config["date"] == dlc_date(datetime.date.today())
    folders = sorted((tmp_path / "new" / "labeled-data").iterdir())
    assert list(config["video_sets"]) == [str(f.resolve()) for f in folders]
    assert dlc_date(datetime.date(2018, 10, 30)) == "Oct30"  # openfield-Pranav-2018-10-30


def test_no_annotations_at_all(tmp_path: Path, source: Path) -> None:
    data = edited(good_coco(source), lambda d: d.update(annotations=[]))
    refused(tmp_path, source, data, r"has no annotation of category 1: there are no keypoints")


def test_keypoint_names_must_be_distinct_names(tmp_path: Path, source: Path) -> None:
    data = edited(good_coco(source), lambda d: d["categories"][0].update(keypoints=["a", "a", "b"]))
    refused(tmp_path, source, data, "keypoint name 'a' is listed twice")
    data = edited(good_coco(source), lambda d: d["categories"][0].update(keypoints=["a", 1, "b"]))
    refused(tmp_path, source, data, "'keypoints' must be a list of keypoint names")


def test_image_size_differs_from_the_recorded_one(tmp_path: Path, source: Path) -> None:
    coco = good_coco(source)
    cv2.imwrite(str(source / "labeled-data/video1/img000.png"), np.zeros((64, 96, 3), np.uint8))
    refused(tmp_path, source, coco, r"image id 3 is recorded as 48x32 but .* 96x64")
    data = edited(coco, lambda d: d["images"][0].update(width="48"))
    refused(tmp_path, source, data, "has width '48', not a positive whole number")


def test_info_that_is_not_an_object_is_ignored(tmp_path: Path, source: Path) -> None:
    data = edited(good_coco(source), lambda d: d.update(info="made by hand"))
    (tmp_path / "c.json").write_text(json.dumps(data))
    imported = import_coco(tmp_path / "c.json", source, tmp_path / "new", skeleton_base=1)
    assert imported.scorer == "coco"


def test_older_checks_still_hold(tmp_path: Path, source: Path) -> None:
    good = good_coco(source)
    two = edited(good, lambda d: d["annotations"].append({**d["annotations"][0], "id": 99}))
    refused(tmp_path, source, two, "image id 1 has several annotations")
    (tmp_path / "bad.json").write_text(json.dumps(good))
    with pytest.raises(PoseshiftError, match=r"image 'labeled-data/video0/img000.png' not found"):
        import_coco(tmp_path / "bad.json", tmp_path / "empty", tmp_path / "out" / "o")
    (tmp_path / "e.json").write_text("{not json")
    with pytest.raises(PoseshiftError, match="is not valid JSON"):
        import_coco(tmp_path / "e.json", source, tmp_path / "out" / "o")
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- names as paths


def coco_with(tmp_path: Path, **image_fields) -> Path:
    make_project(tmp_path / "src", groups=1, frames=2)
    coco = to_coco(load_project(tmp_path / "src"))
    coco["images"][0].update(image_fields)
    (tmp_path / "c.json").write_text(json.dumps(coco))
    return tmp_path / "c.json"


@pytest.mark.parametrize(
    ("fields", "what"),
    [
        ({"group": "../../escaped"}, r"group '\.\./\.\./escaped' contains '\.\.'"),
        ({"group": "/tmp/escaped"}, r"group '/tmp/escaped' is an absolute path"),
        ({"group": "..\\..\\escaped"}, r"group '.*escaped' contains a backslash"),
        ({"file_name": "labeled-data/video0/.."}, r"file name '\.\.' contains '\.\.'"),
    ],
)
def test_coco_names_cannot_write_outside_the_project(
    fields: dict, what: str, tmp_path: Path
) -> None:
    coco = coco_with(tmp_path, **fields)
    out = tmp_path / "deep" / "er" / "new"
    with pytest.raises(PoseshiftError, match="image id 1 " + what):
        import_coco(coco, tmp_path / "src", out)
    assert not (tmp_path / "deep").exists()  # nothing made, not even the parents
    assert not list(tmp_path.rglob("escaped")) and not list(Path("/tmp").glob("escaped"))


def test_coco_scorer_cannot_name_a_path(tmp_path: Path) -> None:
    coco = coco_with(tmp_path)
    data = json.loads(coco.read_text())
    data["info"]["scorer"] = "../../../evil"
    coco.write_text(json.dumps(data))
    with pytest.raises(PoseshiftError, match=r"info\.scorer"):
        import_coco(coco, tmp_path / "src", tmp_path / "new")
    assert not list(tmp_path.rglob("*evil*"))


def test_cli_refuses_in_one_line_and_writes_nothing(tmp_path: Path, source: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(edited(good_coco(source), lambda d: d["images"][1].update(id=1))))
    out = tmp_path / "new"
    line = cli_refuses(["data", "import", path, out, "--images", source], path)
    assert "image id 1 is used by" in line
    assert not out.exists() and not list(tmp_path.glob(".new.*"))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 5) | st.floats() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)
COCO_KEYS = st.fixed_dictionaries(
    {},
    optional={
        key: JSON_VALUES for key in ("images", "annotations", "categories", "info", "skeleton")
    },
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=JSON_VALUES | COCO_KEYS)
def test_random_json_is_always_a_one_line_error(tmp_path: Path, data: object) -> None:
    path = tmp_path / "random.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PoseshiftError) as excinfo:
        import_coco(path, tmp_path, tmp_path / "out" / "new")
    one_line_error(excinfo)
    assert not (tmp_path / "out").exists()
