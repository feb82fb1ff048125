"""ScoremapCodec: hand-checked targets and the encode -> decode round trip."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from poseshift.models.codec import ScoremapCodec

# Small numbers that make hand computation easy: centres at 2, 6, 10, 14, 18 px.
SMALL = ScoremapCodec(stride=4, pos_dist_thresh=5.0, locref_stdev=2.0)


def _keypoints(*xy: tuple[float, float]) -> torch.Tensor:
    return torch.tensor([list(xy)], dtype=torch.float32)  # (1, K, 2)


def _ideal_output(codec: ScoremapCodec, keypoints: torch.Tensor, map_size: tuple[int, int]):
    """Logits and locref a perfect network would emit: strict peak at the nearest cell."""
    targets = codec.encode(keypoints, map_size)
    logits = 10 * targets["scoremap"] - 5
    h, w = map_size
    col = (keypoints[..., 0] / codec.stride).floor().long().clamp(0, w - 1)
    row = (keypoints[..., 1] / codec.stride).floor().long().clamp(0, h - 1)
    b, k = keypoints.shape[:2]
    logits[torch.arange(b)[:, None], torch.arange(k), row, col] += 1
    return logits, targets["locref"]


def test_cell_centers_follow_deeplabcut_convention() -> None:
    xs, ys = ScoremapCodec().cell_centers((2, 3), "cpu")
    assert xs.tolist() == [4.0, 12.0, 20.0]
    assert ys.tolist() == [4.0, 12.0]


def test_encode_positive_cells_include_the_boundary() -> None:
    # Keypoint (7, 10): offsets (5, 0) and (-3, +-4) lie exactly at distance 5.
    targets = SMALL.encode(_keypoints((7.0, 10.0)), (5, 5))
    positive = {tuple(ij) for ij in targets["scoremap"][0, 0].nonzero().tolist()}
    assert positive == {(1, 1), (1, 2), (2, 0), (2, 1), (2, 2), (3, 1), (3, 2)}
    assert torch.equal(targets["locref_weight"][0, 0], targets["scoremap"][0, 0])
    assert torch.equal(targets["locref_weight"][0, 1], targets["scoremap"][0, 0])
    assert torch.all(targets["scoremap_weight"] == 1)


def test_encode_locref_is_offset_over_stdev_inside_the_disc_only() -> None:
    locref = SMALL.encode(_keypoints((7.0, 10.0)), (5, 5))["locref"][0]
    # cell (2, 0) centre (2, 10): offset (5, 0) / 2; cell (1, 2) centre (10, 6): (-3, 4) / 2
    assert locref[:, 2, 0].tolist() == [2.5, 0.0]
    assert locref[:, 1, 2].tolist() == [-1.5, 2.0]
    assert locref[:, 0, 0].tolist() == [0.0, 0.0]  # outside the disc


def test_encode_channel_order_is_dx_dy_per_keypoint() -> None:
    locref = SMALL.encode(_keypoints((6.0, 6.0), (7.0, 5.0)), (3, 3))["locref"][0]
    assert locref.shape == (4, 3, 3)
    assert locref[:, 1, 1].tolist() == [0.0, 0.0, 0.5, -0.5]


def test_unlabeled_keypoint_has_zero_targets_and_weights() -> None:
    targets = SMALL.encode(_keypoints((float("nan"), float("nan")), (6.0, 6.0)), (4, 4))
    for name in ("scoremap", "scoremap_weight", "locref", "locref_weight"):
        first = targets[name][0, : 2 if name.startswith("locref") else 1]
        assert torch.count_nonzero(first) == 0, name
    assert targets["scoremap_weight"][0, 1].min() == 1


def test_encode_shapes_and_dtypes() -> None:
    targets = ScoremapCodec().encode(torch.zeros(2, 3, 2, dtype=torch.float64), (5, 7))
    assert targets["scoremap"].shape == targets["scoremap_weight"].shape == (2, 3, 5, 7)
    assert targets["locref"].shape == targets["locref_weight"].shape == (2, 6, 5, 7)
    assert all(t.dtype == torch.float32 for t in targets.values())


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 6).map(lambda n: 2 * n + 1),
    w=st.integers(1, 6).map(lambda n: 2 * n + 1),
    fractions=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.floats(0, 1, exclude_max=True)),
        min_size=1,
        max_size=4,
    ),
)
def test_round_trip_recovers_subpixel_keypoints(
    h: int, w: int, fractions: list[tuple[float, float]]
) -> None:
    codec = ScoremapCodec()
    size = torch.tensor([w * codec.stride, h * codec.stride], dtype=torch.float32)
    keypoints = (torch.tensor(fractions, dtype=torch.float32) * size)[None]
    keypoints = keypoints.minimum(size - 1e-3)  # float32 rounding may land on the edge
    decoded = codec.decode(*_ideal_output(codec, keypoints, (h, w)))
    torch.testing.assert_close(decoded[..., :2], keypoints, rtol=0, atol=1e-3)


def test_confidence_is_sigmoid_of_peak_logit() -> None:
    logits = torch.full((1, 2, 3, 4), -3.0)
    logits[0, 0, 2, 1] = 0.7
    logits[0, 1, 0, 3] = -1.2
    decoded = ScoremapCodec().decode(logits, torch.zeros(1, 4, 3, 4))
    assert decoded[0, :, 2].tolist() == pytest.approx(
        [1 / (1 + math.exp(-0.7)), 1 / (1 + math.exp(1.2))]
    )
    assert decoded[0, 0, :2].tolist() == [12.0, 20.0]
    assert decoded[0, 1, :2].tolist() == [28.0, 4.0]


def test_decode_under_autocast_returns_float32() -> None:
    codec = ScoremapCodec()
    keypoints = torch.tensor([[[33.0, 17.0]]])
    logits, locref = _ideal_output(codec, keypoints, (5, 7))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        targets = codec.encode(keypoints, (5, 7))
        decoded = codec.decode(logits.bfloat16(), locref.bfloat16())
    assert targets["locref"].dtype == torch.float32
    assert decoded.dtype == torch.float32
    torch.testing.assert_close(decoded[..., :2], keypoints, rtol=0, atol=0.1)


def test_radius_scale_shrinks_the_disc_per_sample() -> None:
    codec = ScoremapCodec(stride=8, pos_dist_thresh=17.0)
    keypoints = torch.tensor([[[36.0, 36.0]], [[36.0, 36.0]]])
    targets = codec.encode(keypoints, (10, 10), radius_scale=torch.tensor([1.0, 0.5]))
    full, small = targets["scoremap"].sum(dim=(1, 2, 3))
    assert full == codec.encode(keypoints[:1], (10, 10))["scoremap"].sum()
    # 17 * 0.5 = 8.5 px around (36, 36): its own cell and the four 8 px away, no corners
    assert small == 5 and full > small
    assert (targets["locref_weight"][1].sum(dim=(1, 2)) == small).all()
