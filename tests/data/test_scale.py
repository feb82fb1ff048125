"""Per-group normalization scale (median nose-eye distance) and the official file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_splits import fake_dataset

from conftest import HORSE10
from poseshift.data.scale import group_scales, image_scales, read_official_scale
from poseshift.errors import PoseshiftError


def test_median_distance_per_group() -> None:
    dataset = fake_dataset({"a": 3, "b": 2, "c": 1})
    dataset.keypoints[:, 1, 0] = [3, 4, 10, 6, 8, np.nan]  # Eye x; Nose at origin
    with pytest.warns(UserWarning, match="group 'c' has no frame with both scale bodyparts"):
        scales = group_scales(dataset)
    assert scales["a"] == 4.0 and scales["b"] == 7.0
    assert scales["c"] == pytest.approx(5.5)  # median of the other groups' scales
    with pytest.warns(UserWarning):
        assert image_scales(dataset)[3] == 7.0


def test_pair_must_exist() -> None:
    with pytest.raises(PoseshiftError, match=r"scale pair \['Nose', 'Tail'\] is not two bodyparts"):
        group_scales(fake_dataset({"a": 1}), ("Nose", "Tail"))


def test_official_scale_file() -> None:
    if not (HORSE10 / "Horsescale.h5").exists():
        pytest.skip("../shared/data/horse10 is not available")
    table = read_official_scale(HORSE10 / "Horsescale.h5")
    assert len(table) == 8114
    assert table.min() == pytest.approx(10.0440, abs=1e-4)
    assert table.max() == pytest.approx(35.5535, abs=1e-4)
    dataset = fake_dataset({"x": 1})
    dataset.images = ["labeled-data/BrownHorseintoshadow/0144.png"]
    assert image_scales(dataset, official=HORSE10 / "Horsescale.h5")[0] == table.iloc[0]


@pytest.mark.parametrize(
    ("scales", "index", "match"),
    [
        ([10.0, 11.0, 20.0], [0, 0, 1], r"image 'labeled-data/x/0000.png' has more than one row"),
        ([10.0, 0.0, 20.0], [0, 1, 2], r"image 'labeled-data/x/0001.png' has scale 0.0"),
        ([10.0, 11.0, -5.0], [0, 1, 2], r"image 'labeled-data/x/0002.png' has scale -5.0"),
        ([np.nan, 11.0, 20.0], [0, 1, 2], r"image 'labeled-data/x/0000.png' has scale nan"),
    ],
)
def test_official_scale_file_with_a_repeated_or_unusable_row_is_refused(
    tmp_path, scales: list[float], index: list[int], match: str
) -> None:
    """A repeated image would shift every later image's scale; errors are divided by it."""
    dataset = fake_dataset({"x": 3})
    path = tmp_path / "scale.h5"
    table = pd.DataFrame({"scale": scales}, index=[dataset.images[i] for i in index])
    table.to_hdf(path, key="df_with_missing", mode="w")
    with pytest.raises(PoseshiftError, match=match) as excinfo:
        image_scales(dataset, official=path)
    assert str(path) in str(excinfo.value)
