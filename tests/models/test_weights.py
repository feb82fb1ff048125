"""Pretrained weights offline: the lookup order, the missing-weights line, and conversions.

Every weights file here is made by the test itself (random networks in the source's own
layout); nothing is downloaded.
"""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from poseshift.errors import PoseshiftError
from poseshift.models.backbones import create_backbone
from poseshift.models.posenet import build_posenet
from poseshift.models.weights import import_weights, load_backbone_weights, read_weights
from poseshift.models.weights_lookup import find_local_weights

IMAGE = torch.randn(1, 3, 96, 64)


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial running statistics, so that converting them is actually tested."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator))
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return model.eval()


def dilate_like_timm(model: nn.Module) -> nn.Module:
    """Output stride 16 the way timm builds it for MobileNetV2 / EfficientNet.

    The last stride-2 depthwise conv gets stride 1, every later depthwise conv dilation 2.
    """
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    last = max(i for i, m in enumerate(depthwise) if m.stride == (2, 2))
    depthwise[last].stride = (1, 1)
    for conv in depthwise[last + 1 :]:
        conv.dilation = (2, 2)
        conv.padding = (conv.kernel_size[0] - 1, conv.kernel_size[1] - 1)
    return model


def features(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(IMAGE)[-1]


def imported(tmp_path, state: dict, backbone: str) -> nn.Module:
    """``state`` written as a .pth, imported, and loaded back by init='imagenet'."""
    source = tmp_path / "source.pth"
    torch.save(state, source)
    path, _ = import_weights(source, backbone, tmp_path / "weights")
    assert path == tmp_path / "weights" / f"{backbone}.safetensors"
    weights = read_weights(path, backbone)
    assert weights.origin.padding == "symmetric"  # PyTorch-trained: built the PyTorch way
    model = create_backbone(backbone, weights.origin)
    load_backbone_weights(model, weights, backbone)
    return model


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No network, and empty weights folder, mirror, Hugging Face cache and torch hub cache."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # published files: unreachable
    monkeypatch.setenv("POSESHIFT_SHARED", str(tmp_path / "no-mirror"))
    monkeypatch.setenv("POSESHIFT_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def test_weights_dir_file_gives_timm_s_own_result(offline):
    """A random timm model saved in the weights folder; timm loading the same file agrees."""
    source = randomize_batchnorm(timm.create_model("mobilenetv2_050"))
    path = offline / "weights" / "mobilenetv2_050.pth"
    path.parent.mkdir()
    torch.save(source.state_dict(), path)
    assert find_local_weights("mobilenetv2_050") == path
    model = build_posenet("mobilenetv2_050", 4, init="imagenet")
    reference = timm.create_model(
        "mobilenetv2_050",
        pretrained=True,
        pretrained_cfg_overlay={"file": str(path)},
        features_only=True,
        out_indices=(-1,),
        output_stride=16,
    )
    assert torch.equal(features(model.backbone), features(reference))


def test_hugging_face_cache_is_read_offline(offline):
    """Step 3: timm's file already in the HF cache is found without the network."""
    snapshot = offline / "hf/hub/models--timm--mobilenetv2_050.lamb_in1k/snapshots/abc123"
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    source = randomize_batchnorm(timm.create_model("mobilenetv2_050"))
    save_file(source.state_dict(), snapshot / "model.safetensors")
    assert find_local_weights("mobilenetv2_050") == snapshot / "model.safetensors"
    model = build_posenet("mobilenetv2_050", 2, init="imagenet")
    assert torch.equal(model.backbone.conv_stem.weight, source.conv_stem.weight)


def test_offline_and_missing_is_one_line_that_says_what_to_do(offline):
    with pytest.raises(PoseshiftError) as err:
        build_posenet("resnet50", 3, init="imagenet")
    message = str(err.value)
    assert "\n" not in message
    assert "'resnet50'" in message and "resnet50.safetensors" in message
    assert str(offline / "weights") in message and "HF_HUB_OFFLINE=1" in message
    assert "poseshift weights import FILE --backbone resnet50" in message
    # Published TensorFlow files: the message names them and the folder to put them in.
    with pytest.raises(PoseshiftError) as err:
        build_posenet("mobilenetv2_035", 3, init="imagenet")
    message = str(err.value)
    assert "\n" not in message and "127.0.0.1:9 is unreachable" in message
    assert "put model.json, weights.bin from https://raw.githubusercontent.com/" in message
    assert str(offline / "weights" / "published" / "keras-mobilenetv2-035-tfjs") in message


def test_unreachable_hub_fails_at_once_instead_of_retrying(offline, monkeypatch):
    """Online mode with no route to the Hub: a quick probe, then the same one-line error."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    for proxy in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on "discard"
    with pytest.raises(PoseshiftError, match=r"127\.0\.0\.1:9 is unreachable.*weights import"):
        build_posenet("efficientnet_b0", 3, init="imagenet")


def test_explicit_file_comes_first(offline):
    source = randomize_batchnorm(timm.create_model("mobilenetv2_035"))
    path = offline / "anywhere.safetensors"
    save_file(source.state_dict(), path)
    model = build_posenet("mobilenetv2_035", 2, init="imagenet", weights=path)
    assert torch.equal(model.backbone.bn1.running_mean, source.bn1.running_mean)


def test_torchvision_resnet50_gives_identical_features(tmp_path):
    """torchvision dilating its last stage is exactly timm's output stride 16."""
    source = randomize_batchnorm(
        torchvision.models.resnet50(replace_stride_with_dilation=[False, False, True])
    )
    model = imported(tmp_path, source.state_dict(), "resnet50")
    trunk = nn.Sequential(*list(source.children())[:-2])  # drop avgpool and fc
    torch.testing.assert_close(features(model), trunk(IMAGE), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("width, backbone", [(0.35, "mobilenetv2_035"), (1.0, "mobilenetv2_100")])
def test_torchvision_mobilenetv2_gives_identical_features(tmp_path, width, backbone):
    source = randomize_batchnorm(torchvision.models.mobilenet_v2(width_mult=width))
    model = imported(tmp_path, source.state_dict(), backbone)
    trunk = dilate_like_timm(source.features[:-1])  # without the final 1x1 conv
    torch.testing.assert_close(features(model), trunk(IMAGE), rtol=1e-5, atol=1e-5)


def test_torchvision_efficientnet_gives_identical_features(tmp_path):
    source = randomize_batchnorm(torchvision.models.efficientnet_b0())
    model = imported(tmp_path, source.state_dict(), "efficientnet_b0")
    trunk = dilate_like_timm(source.features[:-1])
    torch.testing.assert_close(features(model), trunk(IMAGE), rtol=1e-5, atol=1e-5)


class DLi14InvertedResidual(nn.Module):
    """d-li14/mobilenetv2.pytorch's block, module names and order as published."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = round(inp * expand_ratio)
        self.identity = stride == 1 and inp == oup
        dw = [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
        ]
        pw_linear = [nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        pw = [nn.Conv2d(inp, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        self.conv = nn.Sequential(*([] if expand_ratio == 1 else pw), *dw, *pw_linear)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.identity else self.conv(x)


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class DLi14MobileNetV2(nn.Module):
    """A faithful re-creation of d-li14's ``models/imagenet/mobilenetv2.py`` naming."""

    cfgs = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip

    def __init__(self, width_mult: float) -> None:
        super().__init__()
        channels = _make_divisible(32 * width_mult)
        layers = [
            nn.Sequential(
                nn.Conv2d(3, channels, 3, 2, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU6()
            )
        ]
        for t, c, n, s in self.cfgs:
            out = _make_divisible(c * width_mult)
            for i in range(n):
                layers.append(DLi14InvertedResidual(channels, out, s if i == 0 else 1, t))
                channels = out
        self.features = nn.Sequential(*layers)
        last = _make_divisible(1280 * width_mult) if width_mult > 1.0 else 1280
        self.conv = nn.Sequential(
            nn.Conv2d(channels, last, 1, 1, 0, bias=False), nn.BatchNorm2d(last), nn.ReLU6()
        )
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Linear(last, 1000)


@pytest.mark.parametrize("width, backbone", [(0.35, "mobilenetv2_035"), (0.75, "mobilenetv2_075")])
def test_dli14_checkpoints_give_identical_features(tmp_path, width, backbone):
    source = randomize_batchnorm(DLi14MobileNetV2(width))
    keys = set(source.state_dict())
    assert {"features.1.conv.0.weight", "features.2.conv.7.weight", "conv.0.weight"} <= keys
    assert "classifier.weight" in keys
    model = imported(tmp_path, source.state_dict(), backbone)
    trunk = dilate_like_timm(source.features)
    torch.testing.assert_close(features(model), trunk(IMAGE), rtol=1e-5, atol=1e-5)


def test_training_checkpoint_wrappers_are_unwrapped(tmp_path):
    """``{"state_dict": {"module.…": …}}`` as written by DataParallel training scripts."""
    source = randomize_batchnorm(DLi14MobileNetV2(0.35))
    wrapped = {
        "epoch": 150,
        "state_dict": {f"module.{k}": v for k, v in source.state_dict().items()},
    }
    model = imported(tmp_path, wrapped, "mobilenetv2_035")
    assert torch.equal(model.conv_stem.weight, source.features[0][0].weight)


def test_wrong_width_is_refused_and_nothing_is_written(tmp_path):
    path = tmp_path / "mobilenetv2_100.pth"
    torch.save(timm.create_model("mobilenetv2_100").state_dict(), path)
    with pytest.raises(PoseshiftError) as err:
        import_weights(path, "mobilenetv2_035", tmp_path / "weights")
    message = str(err.value)
    assert "\n" not in message and "does not fit backbone mobilenetv2_035" in message
    assert "conv_stem.weight has shape (32, 3, 3, 3)" in message
    assert not (tmp_path / "weights").exists()


def test_wrong_family_is_refused(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save(torchvision.models.resnet50().state_dict(), path)
    with pytest.raises(PoseshiftError, match=r"efficientnet_b0 .* only \d+ of"):
        load_backbone_weights(create_backbone("efficientnet_b0"), path, "efficientnet_b0")


def test_missing_and_unexpected_keys_warn_with_counts(tmp_path):
    state = timm.create_model("mobilenetv2_035").state_dict()
    del state["blocks.6.0.conv_pwl.weight"], state["blocks.6.0.bn3.weight"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.warns(UserWarning, match=r"2 missing keys \(blocks\.6\.0\.conv_pwl.*1 unexpected"):
        report = load_backbone_weights(create_backbone("mobilenetv2_035"), path, "mobilenetv2_035")
    assert report.layout == "timm" and report.unexpected == ("extra.weight",)
