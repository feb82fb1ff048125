"""Head geometry at odd sizes, the PoseNet contract, and self-describing checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from poseshift.errors import PoseshiftError
from poseshift.models.codec import ScoremapCodec
from poseshift.models.head import STRIDE, map_size
from poseshift.models.posenet import PoseNet, build_posenet, load_posenet, save_posenet


def randomize_batchnorm(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial running statistics, so that loading them is actually tested."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator))
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)


def test_map_size_and_cell_centres():
    assert STRIDE == 8
    assert map_size(162, 288) == (22, 36)
    assert map_size(160, 288) == (20, 36)
    assert map_size(161, 287) == (22, 36)  # 2 * ceil(H / 16), not ceil(H / 8) = 21
    assert map_size(97, 33) == (14, 6)
    xs, ys = ScoremapCodec(STRIDE).cell_centers((3, 6))  # (x, y) = (j * 8 + 4, i * 8 + 4)
    np.testing.assert_array_equal(xs, [4, 12, 20, 28, 36, 44])
    np.testing.assert_array_equal(ys, [4, 12, 20])


@pytest.mark.parametrize("size", [(161, 287), (97, 33), (31, 48)])
def test_posenet_maps_have_the_documented_shape(size):
    model = build_posenet("mobilenetv2_035", num_keypoints=3).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out["scoremaps"].shape == (2, 3, *map_size(*size))
    assert out["locref"].shape == (2, 6, *map_size(*size))  # 2k = dx, 2k + 1 = dy


@pytest.mark.parametrize("size", [(160, 288), (161, 287), (97, 33)])
def test_an_undilated_backbone_keeps_the_maps_at_stride_8(size):
    """Backbone stride 32: a quarter of the feature cells, one learned 2x upsampling joined
    by the stride-16 stage's map, then the same head, so codec, decoding and targets are
    those of stride 16; the backbone's weights are the same tensors (ImageNet files load
    into either)."""
    dilated = PoseNet("mobilenetv2_035", 3)
    model = PoseNet("mobilenetv2_035", 3, backbone_stride=32).eval()
    assert model.stride == dilated.stride == 8
    with torch.no_grad():
        skip, features = model.backbone(torch.randn(2, 3, *size))
        out = model(torch.randn(2, 3, *size))
    assert features.shape[-2:] == tuple(-(-v // 32) for v in size)
    assert skip.shape[-2:] == tuple(-(-v // 16) for v in size)
    assert out["scoremaps"].shape == (2, 3, *map_size(*size, backbone_stride=32))
    assert out["locref"].shape == (2, 6, *map_size(*size, backbone_stride=32))
    if size[0] % 32 == 0 and size[1] % 32 == 0:  # padded inputs: the stride-16 map size
        assert map_size(*size, backbone_stride=32) == map_size(*size)
    assert map_size(161, 287, backbone_stride=32) == (24, 36)  # 4 * ceil(H / 32)
    shapes = {k: v.shape for k, v in dilated.backbone.state_dict().items()}
    assert {k: v.shape for k, v in model.backbone.state_dict().items()} == shapes


def test_backbone_stride_survives_the_checkpoint_and_old_files_are_stride_16(tmp_path):
    model = PoseNet("mobilenetv2_035", 3, backbone_stride=32)
    randomize_batchnorm(model)
    model.eval()
    path = save_posenet(model, tmp_path / "model.pt")
    loaded = load_posenet(path).eval()
    assert loaded.config()["backbone_stride"] == 32 and loaded.backbone_stride == 32
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(loaded(image)["scoremaps"], model(image)["scoremaps"])
    old = PoseNet("mobilenetv2_035", 3)
    payload = torch.load(save_posenet(old, tmp_path / "old.pt"), weights_only=True)
    del payload["config"]["backbone_stride"]  # written before the key existed
    torch.save(payload, tmp_path / "old.pt")
    assert load_posenet(tmp_path / "old.pt").backbone_stride == 16
    payload["config"]["backbone_stride"] = 8
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(PoseshiftError, match=r"bad\.pt: unknown backbone_stride 8"):
        load_posenet(tmp_path / "bad.pt")
    # a stride-32 file without the skip's weights (as the first stride-32 version wrote)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"] = {
        k: v for k, v in payload["state_dict"].items() if not k.startswith("head.lateral")
    }
    torch.save(payload, tmp_path / "noskip.pt")
    with pytest.raises(PoseshiftError, match=r"noskip\.pt: its weights do not fit .*lateral"):
        load_posenet(tmp_path / "noskip.pt")


def test_normalize_takes_uint8_or_unit_floats():
    """MobileNetV2-0.35 expects TensorFlow-trained weights: inputs in [-1, 1]; ResNet-50
    torchvision's mean / std."""
    assert PoseNet("mobilenetv2_035", 2).mean == (0.5, 0.5, 0.5)
    model = PoseNet("resnet50", 2)
    assert model.mean == pytest.approx((0.485, 0.456, 0.406))
    assert model.std == pytest.approx((0.229, 0.224, 0.225))
    white8 = torch.full((1, 3, 4, 4), 255, dtype=torch.uint8)
    expected = (1 - torch.tensor(model.mean)) / torch.tensor(model.std)
    for white in (white8, torch.ones(1, 3, 4, 4)):
        torch.testing.assert_close(model.normalize(white)[0, :, 0, 0], expected)


def test_checkpoint_is_self_describing(tmp_path):
    model = build_posenet("mobilenetv2_035", num_keypoints=5)
    randomize_batchnorm(model)
    model.eval()
    path = save_posenet(model, tmp_path / "run" / "model.pt")
    loaded = load_posenet(path).eval()
    assert (
        loaded.config()
        == model.config()
        == {
            "backbone": "mobilenetv2_035",
            "num_keypoints": 5,
            "mean": list(model.mean),
            "std": list(model.std),
            "stride": 8,
            "origin": model.origin.to_dict(),
            "features": "timm",
            "backbone_stride": 16,
            "batchnorm_statistics": "running",
        }
    )
    assert loaded.origin.padding == "same" and loaded.backbone.bn1.eps == 1e-3
    image = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        a, b = model(image), loaded(image)
    assert torch.equal(a["scoremaps"], b["scoremaps"]) and torch.equal(a["locref"], b["locref"])
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary left


def test_a_poseshift_checkpoint_can_start_another_network(tmp_path):
    """init=PATH takes the backbone of a trained model, built and fed as it was trained
    (TensorFlow padding, epsilon and [-1, 1] inputs here); the new head may have another K."""
    source = build_posenet("mobilenetv2_035", num_keypoints=3)
    assert source.origin.padding == "same"
    randomize_batchnorm(source)
    path = save_posenet(source, tmp_path / "source.pt")
    model = build_posenet("mobilenetv2_035", num_keypoints=7, init=str(path))
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value)
    assert model.head.scoremap.out_channels == 7
    kept = ("padding", "bn_eps", "mean", "std")
    assert [getattr(model.origin, k) for k in kept] == [getattr(source.origin, k) for k in kept]
    image = torch.randint(0, 255, (1, 3, 64, 48), dtype=torch.uint8)
    with torch.no_grad():
        features = [m.eval().backbone(m.normalize(image))[-1] for m in (source, model)]
    torch.testing.assert_close(features[0], features[1])


def test_user_errors_are_one_line(tmp_path):
    with pytest.raises(PoseshiftError, match="valid names: mobilenetv2_035"):
        build_posenet("vgg16", 3)
    with pytest.raises(PoseshiftError, match="init must be"):
        build_posenet("mobilenetv2_035", 3, init=str(tmp_path / "missing.pth"))
    with pytest.raises(PoseshiftError, match="only applies to init='imagenet'"):
        build_posenet("mobilenetv2_035", 3, weights=tmp_path / "w.pth")
    not_a_checkpoint = tmp_path / "x.pt"
    torch.save({"a": torch.zeros(1)}, not_a_checkpoint)
    with pytest.raises(PoseshiftError, match="not a poseshift"):
        load_posenet(not_a_checkpoint)
    with pytest.raises(PoseshiftError, match=r"backbone stride must be one of \(16, 32\)"):
        build_posenet("mobilenetv2_035", 3, backbone_stride=24)
    with pytest.raises(PoseshiftError, match="16 with features: deeplabcut"):
        PoseNet("mobilenetv2_035", 3, features="deeplabcut", backbone_stride=32)


def test_deeplabcut_features_and_per_image_statistics_survive_the_checkpoint(tmp_path):
    model = PoseNet("mobilenetv2_035", 3, features="deeplabcut").normalize_per_image().eval()
    loaded = load_posenet(save_posenet(model, tmp_path / "model.pt")).eval()
    assert loaded.config()["features"] == "deeplabcut"
    assert loaded.config()["batchnorm_statistics"] == "per_image"
    image = torch.rand(2, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded(image)["scoremaps"], model(image)["scoremaps"])


def test_per_image_statistics_give_one_image_its_gradients_in_any_memory_format():
    """A batch's gradient is the sum of its images' gradients, channels_last or not (torch's
    instance norm computed wrong gradients for a single channels_last image)."""
    torch.manual_seed(0)
    model = PoseNet("mobilenetv2_035", 3).normalize_per_image().double().train()
    images = torch.randn(2, 3, 48, 64, dtype=torch.float64)

    def gradient(batch: torch.Tensor, memory: torch.memory_format) -> torch.Tensor:
        model.to(memory_format=memory).zero_grad()
        outputs = model(batch.contiguous(memory_format=memory))
        (outputs["scoremaps"].square().sum() + outputs["locref"].sum()).backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    batched = gradient(images, torch.contiguous_format)
    for memory in (torch.contiguous_format, torch.channels_last):
        alone = gradient(images[:1], memory) + gradient(images[1:], memory)
        torch.testing.assert_close(alone, batched, rtol=1e-9, atol=1e-9)
