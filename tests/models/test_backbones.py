"""Every backbone in the table builds, runs on CPU and really has output stride 16."""

from __future__ import annotations

import math

import pytest
import torch

from poseshift.errors import PoseshiftError
from poseshift.models.backbones import BACKBONES, backbone_cost, create_backbone, get_backbone

PAPER_AND_EFFICIENTNETS = [
    "mobilenetv2_035",
    "mobilenetv2_050",
    "mobilenetv2_075",
    "mobilenetv2_100",
    "resnet50",
    "resnet101",
    *(f"efficientnet_b{i}" for i in range(7)),
    *(f"efficientnet_lite{i}" for i in range(3)),
]


def test_table_holds_the_paper_backbones_and_efficientnets():
    assert list(BACKBONES) == PAPER_AND_EFFICIENTNETS
    for entry in BACKBONES.values():
        assert 50 < entry.top1 < 90 and entry.top1_source and entry.weights_url.startswith("https")
    # The paper's two numbers (Methods 5.2) are kept next to the weights' own.
    assert BACKBONES["mobilenetv2_035"].paper_top1 == 60.3
    assert BACKBONES["mobilenetv2_100"].paper_top1 == 71.8
    # Accuracy rises along each family, as the paper's x axis assumes.
    for family in (
        PAPER_AND_EFFICIENTNETS[:4],
        PAPER_AND_EFFICIENTNETS[6:13],
        PAPER_AND_EFFICIENTNETS[13:],
    ):
        top1 = [BACKBONES[n].top1 for n in family]
        assert top1 == sorted(top1)


@pytest.mark.parametrize("name", PAPER_AND_EFFICIENTNETS)
def test_output_stride_is_16(name):
    """A real forward pass at the paper's 288x162, a square size and two odd sizes."""
    model = create_backbone(name).eval()
    assert model.feature_info.channels()[-1] == BACKBONES[name].channels
    assert model.feature_info.reduction()[-1] == 16
    with torch.no_grad():
        for h, w in [(162, 288), (320, 320), (161, 287), (97, 33)]:
            (features,) = model(torch.randn(1, 3, h, w))
            assert features.shape == (
                1,
                BACKBONES[name].channels,
                math.ceil(h / 16),
                math.ceil(w / 16),
            )


def test_unknown_backbone_lists_the_valid_names():
    with pytest.raises(PoseshiftError) as err:
        get_backbone("resnet18")
    message = str(err.value)
    assert "resnet18" in message and "\n" not in message
    assert all(name in message for name in BACKBONES)


def test_cost_is_counted_without_weights():
    params, gflops = backbone_cost("mobilenetv2_035")
    assert params == sum(p.numel() for p in create_backbone("mobilenetv2_035").parameters())
    assert 0.05 < gflops < 0.5
    assert backbone_cost("resnet50")[1] > 10 * gflops


@pytest.mark.parametrize("name", ["mobilenetv2_035", "efficientnet_lite0", "resnet50"])
def test_deeplabcut_features_are_stride_16_without_dilation(name):
    model = create_backbone(name, features="deeplabcut").eval()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    dilated = any(m.dilation != (1, 1) for m in convs)
    assert dilated == (name == "resnet50")  # slim's ResNet output_stride=16 dilates too
    channels = {"mobilenetv2_035": 1280}.get(name, BACKBONES[name].channels)
    assert model.feature_info.channels()[-1] == channels
    with torch.no_grad():
        for h, w in [(162, 288), (97, 33)]:
            (features,) = model(torch.randn(1, 3, h, w))
            assert features.shape == (1, channels, math.ceil(h / 16), math.ceil(w / 16))


def test_unknown_feature_network_is_one_line():
    with pytest.raises(PoseshiftError, match="features must be one of timm, deeplabcut"):
        create_backbone("mobilenetv2_035", features="dlc")
