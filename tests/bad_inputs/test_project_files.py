"""Bad ``config.yaml`` files, and projects with nothing to learn from.

Each is one PoseshiftError line naming config.yaml (or the project) and the key. A single
``TrainingFraction: 0.95`` is accepted as ``[0.95]``: it can only mean that.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from refusals import cli_refuses, one_line_error

from conftest import make_project
from poseshift.data.project import load_project, write_project
from poseshift.data.splits import default_split
from poseshift.errors import PoseshiftError


@pytest.fixture
def project(tmp_path: Path) -> Path:
    make_project(tmp_path / "proj", groups=2, frames=3)
    return tmp_path / "proj"


def with_config(project: Path, change) -> Path:
    config = yaml.safe_load((project / "config.yaml").read_text())
    change(config)
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    return project


def refused(project: Path, match: str) -> str:
    with pytest.raises(PoseshiftError, match=match) as excinfo:
        load_project(project)
    message = one_line_error(excinfo)
    assert str(project) in message
    return message


def test_missing_project_or_config(tmp_path: Path) -> None:
    refused(tmp_path / "nowhere", "project folder .* does not exist")
    refused(tmp_path, r"no config.yaml in .*DeepLabCut project folder")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("bodyparts: [Nose\n", "is not valid YAML"),
        ("- Nose\n- Eye\n", "must be a YAML mapping"),
        ("", "must be a YAML mapping"),
        ("!!python/object/apply:os.system ['true']\n", "is not valid YAML"),
    ],
)
def test_config_that_is_no_mapping(project: Path, text: str, match: str) -> None:
    (project / "config.yaml").write_text(text)
    refused(project, match)


def test_binary_config(project: Path) -> None:
    (project / "config.yaml").write_bytes(b"\xff\xfe\x00\x01garbage")
    refused(project, r"config.yaml is not a text \(UTF-8\) file")


@pytest.mark.parametrize(
    ("bodyparts", "match"),
    [
        (None, "key 'bodyparts' is missing or empty"),
        ([], "key 'bodyparts' is missing or empty"),
        ("Nose, Eye, Tail", "'bodyparts' must be a list of names"),
        (["Nose", "Eye", "Tail", "Nose"], "bodypart 'Nose' is listed twice"),
        (["Nose", {"Eye": 1}, "Tail"], "bodypart {'Eye': 1} is not a name"),
        (["Nose", None, "Tail"], "bodypart None is not a name"),
    ],
)
def test_bad_bodyparts(project: Path, bodyparts, match: str) -> None:
    refused(with_config(project, lambda c: c.update(bodyparts=bodyparts)), match)


def test_training_fraction_as_a_number_is_a_list_of_one(project: Path) -> None:
    """DeepLabCut configs written by hand often say 0.95; today that was a TypeError."""
    dataset = load_project(with_config(project, lambda c: c.update(TrainingFraction=0.95)))
    assert dataset.config["TrainingFraction"] == [0.95]
    assert default_split(dataset).fractions == [0.95]


@pytest.mark.parametrize("fractions", [[1.5], [0], [0.5, 1.0], [-0.1], ["0.9"], [True], [], "0.9"])
def test_training_fractions_outside_zero_one(project: Path, fractions) -> None:
    with_config(project, lambda c: c.update(TrainingFraction=fractions))
    refused(project, "TrainingFraction")


@pytest.mark.parametrize(
    ("scorer", "match"),
    [
        (None, "key 'scorer' is missing or empty"),
        ("", "key 'scorer' is missing or empty"),
        (["me"], r"'scorer' must be a name, got \['me'\]"),
        ("../../elsewhere", r"scorer 'CollectedData_\.\./\.\./elsewhere' contains"),
    ],
)
def test_bad_scorer(project: Path, scorer, match: str) -> None:
    refused(with_config(project, lambda c: c.update(scorer=scorer)), match)


def test_scorer_without_label_files(project: Path) -> None:
    refused(with_config(project, lambda c: c.update(scorer="other")), "CollectedData_other")


def test_multi_animal_not_supported(project: Path) -> None:
    refused(with_config(project, lambda c: c.update(multianimalproject=True)), "multi-animal")


def unlabel_everything(project: Path) -> None:
    for path in project.glob("labeled-data/*/CollectedData_tester.h5"):
        frame = pd.read_hdf(path)
        frame.iloc[:, :] = float("nan")
        frame.to_hdf(path, key="df_with_missing", mode="w")
        path.with_suffix(".csv").unlink()


def test_no_labeled_frame_at_all(project: Path) -> None:
    """Today this trained to loss 0."""
    unlabel_everything(project)
    refused(project, "none of the 6 frames has a labeled keypoint .* nothing to train")


def test_every_label_outside_its_image_is_no_label_either(project: Path) -> None:
    for path in project.glob("labeled-data/*/CollectedData_tester.h5"):
        frame = pd.read_hdf(path) + 1000
        frame.to_hdf(path, key="df_with_missing", mode="w")
    with pytest.warns(UserWarning, match="lie outside their image"):
        refused(project, "none of the 6 frames has a labeled keypoint")


def test_marks_on_the_last_pixel_row_or_column_are_inside(tmp_path: Path) -> None:
    """Feet of a horse walking out of frame sit on the edge pixels: they count."""
    dataset = make_project(tmp_path / "edge", groups=1, frames=2, size=(48, 32))
    dataset.keypoints[0, 0] = (47.4, 10.0)  # last column (its pixel spans 46.5-47.5)
    dataset.keypoints[0, 1] = (-0.4, 31.3)  # first column, last row
    dataset.keypoints[1, 0] = (47.6, 10.0)  # beyond the image
    write_project(dataset)
    with pytest.warns(UserWarning, match=r"1 label\(s\) lie outside their image, e.g. Nose"):
        loaded = load_project(tmp_path / "edge")
    np.testing.assert_allclose(loaded.keypoints[0, :2], [[47.4, 10.0], [-0.4, 31.3]], rtol=1e-6)
    assert np.isnan(loaded.keypoints[1, 0]).all()


def test_train_refuses_a_project_without_labels_before_writing(project: Path) -> None:
    unlabel_everything(project)
    out = project.parent / "run"
    args = ["train", project, "--backbone", "mobilenetv2_035", "--out", out, "--device", "cpu"]
    assert "none of the 6 frames" in cli_refuses(args, project)
    assert not out.exists()


def test_data_info_names_the_config(project: Path) -> None:
    with_config(project, lambda c: c.update(bodyparts=["Nose", "Nose"]))
    cli_refuses(["data", "info", project], project / "config.yaml")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=st.binary(max_size=200) | st.text(max_size=200))
def test_random_config_is_a_one_line_error(project: Path, content: bytes | str) -> None:
    data = content.encode() if isinstance(content, str) else content
    (project / "config.yaml").write_bytes(data)
    with pytest.raises(PoseshiftError) as excinfo:
        load_project(project)
    one_line_error(excinfo)
