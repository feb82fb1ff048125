"""How each weights file format is read, matched to a backbone, and imported.

Where ``init="imagenet"`` finds its file is ``poseshift.models.weights_lookup``. Formats:
PyTorch files in the layouts of ``poseshift.models.layouts``, safetensors (poseshift's own
keep their ``WeightsOrigin``), TF.js Layers (``model.json`` or its folder), Keras HDF5 and
TFLite (``poseshift.models.tf_formats``). Every read returns the tensors in timm's names with
the ``WeightsOrigin`` the network must be built with; a published file is recognised by its
sha256 and gets its own ImageNet top-1.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from poseshift.download import sha256_of
from poseshift.errors import PoseshiftError
from poseshift.fsutil import write_atomic
from poseshift.models import published
from poseshift.models.backbones import create_backbone, get_backbone
from poseshift.models.layouts import block_order, convert_state_dict, layout_origin
from poseshift.models.origin import TENSORFLOW, WeightsOrigin, config_origin
from poseshift.models.weights_lookup import weights_dir

# Classifier-side tensors (timm names) that a stride-16 feature extractor does not use (the
# 1x1 ``conv_head`` / ``bn2`` layer only where the backbone has it: features "deeplabcut").
HEAD_PREFIXES = ("fc.", "classifier.", "conv_head.", "bn2.")
ORIGIN_KEY = "poseshift_origin"  # safetensors metadata entry of imported weights


@dataclass(frozen=True)
class Weights:
    """A file's tensors in timm's names (classifier included where the file has one)."""

    path: Path
    layout: str
    tensors: dict[str, torch.Tensor]
    origin: WeightsOrigin


@dataclass(frozen=True)
class LoadReport:
    """What a weights file gave a backbone: its layout and the keys that did not fit."""

    path: Path
    layout: str
    loaded: int
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    origin: WeightsOrigin


def _load_file(path: Path) -> Any:
    """What a .safetensors or PyTorch file holds; PyTorch files load with
    ``weights_only=True``: a checkpoint file never runs code."""
    if not path.is_file():
        raise PoseshiftError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path, device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise PoseshiftError(
            f"cannot read weights file {path}: {type(exc).__name__} {first}"
        ) from exc


def _tensors(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """The state dict in a loaded file, unwrapped from training checkpoints."""
    while isinstance(obj, dict) and isinstance(obj.get("state_dict", obj.get("model")), dict):
        obj = obj["state_dict"] if "state_dict" in obj else obj["model"]
    if not isinstance(obj, dict):
        raise PoseshiftError(f"{path} holds a {type(obj).__name__}, not a state dict")
    tensors = {k.removeprefix("module."): v for k, v in obj.items() if torch.is_tensor(v)}
    if not tensors:
        raise PoseshiftError(f"{path} holds no tensors")
    return tensors


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors or PyTorch file, unwrapped from training checkpoints."""
    return _tensors(_load_file(Path(path)), Path(path))


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")


def classifier_model(backbone: str, origin: WeightsOrigin) -> nn.Module:
    """The whole ImageNet classifier of ``backbone`` (1000 classes), built for ``origin``."""
    import timm

    entry = get_backbone(backbone)
    return timm.create_model(
        entry.timm_name, pretrained=False, **origin.timm_kwargs(entry.timm_name)
    )


def _published_top1(path: Path, backbone: str, origin: WeightsOrigin) -> WeightsOrigin:
    """``origin`` with the table's top-1 when ``path`` is byte for byte the published file."""
    entry = published.PUBLISHED.get(backbone)
    if entry is None:
        return origin
    # the file itself, and (for a folder of files) its companions beside it
    pairs = [(path, entry.files[0])]
    if not entry.package:
        pairs += [(path.parent / f.name, f) for f in entry.files[1:]]
    if not all(p.is_file() and sha256_of(p) == f.sha256 for p, f in pairs):
        return origin
    table = get_backbone(backbone).origin
    return replace(origin, top1=table.top1, top1_source=table.top1_source)


def _tf_mobilenet_only(path: Path, backbone: str, kind: str) -> None:
    if not backbone.startswith("mobilenetv2"):
        raise PoseshiftError(
            f"{path} is a {kind} file; poseshift reads MobileNetV2 {kind} files, not {backbone}"
        )


def read_weights(
    path: str | os.PathLike[str], backbone: str, calibration: Path | None = None
) -> Weights:
    """Read any supported weights file for ``backbone`` (nothing is loaded or written).

    ``calibration``: photos that re-create a TFLite file's folded BatchNorm (default: the
    photos beside the file).
    """
    from poseshift.models import tf_formats

    path = Path(path)
    model_json = path / "model.json" if path.is_dir() else path
    if not model_json.exists():
        raise PoseshiftError(f"weights file {path} does not exist")
    suffix = model_json.suffix.lower()
    if suffix == ".json":
        _tf_mobilenet_only(model_json, backbone, "TF.js Layers")
        arrays, eps = tf_formats.read_tfjs(model_json)
        return _keras(model_json, backbone, arrays, eps, "TF.js Layers (Keras)")
    if suffix in (".h5", ".hdf5", ".keras"):
        _tf_mobilenet_only(path, backbone, "Keras HDF5")
        arrays, eps = tf_formats.read_keras_h5(path)
        return _keras(path, backbone, arrays, eps, "Keras HDF5")
    if suffix == ".tflite":
        _tf_mobilenet_only(path, backbone, "TFLite")
        return _tflite(path, backbone, calibration or path.parent)
    loaded = _load_file(path)
    state, origin = _tensors(loaded, path), _stored_origin(path, loaded)
    target = list(classifier_model(backbone, origin or get_backbone(backbone).origin).state_dict())
    tensors, layout = convert_state_dict(state, target)
    origin = origin or _published_top1(path, backbone, layout_origin(layout, tensors))
    return Weights(path, layout, tensors, replace(origin, source=origin.source or path.name))


def _keras(path: Path, backbone: str, arrays: dict, eps: float, layout: str) -> Weights:
    from poseshift.models.tf_formats import keras_mobilenetv2_to_timm

    origin = replace(TENSORFLOW, bn_eps=eps, source=path.name)
    blocks = block_order(list(classifier_model(backbone, origin).state_dict()))
    tensors = keras_mobilenetv2_to_timm(arrays, blocks)
    return Weights(path, layout, tensors, _published_top1(path, backbone, origin))


def _tflite(path: Path, backbone: str, photos: Path) -> Weights:
    from poseshift.models.folded_bn import calibration_images, recreate_batchnorm
    from poseshift.models.tf_formats import read_tflite, tflite_to_timm

    layers = read_tflite(path)
    images = calibration_images(photos)
    origin = replace(TENSORFLOW, source=path.name)
    model = classifier_model(backbone, origin)
    model.load_state_dict(tflite_to_timm(layers, model, path), strict=False)
    normalize = _normalizer(origin)
    count = recreate_batchnorm(model, images, normalize)
    how = f"{count} layers re-created from {len(images)} crops of the photos in {photos.name}/"
    tensors = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    origin = _published_top1(path, backbone, replace(origin, batchnorm=how))
    return Weights(path, "TFLite (BatchNorm folded)", tensors, origin)


def _normalizer(origin: WeightsOrigin):
    mean = torch.tensor(origin.mean).view(1, 3, 1, 1)
    std = torch.tensor(origin.std).view(1, 3, 1, 1)
    return lambda images: (images.float() / 255.0 - mean) / std


def _stored_origin(path: Path, loaded: Any) -> WeightsOrigin | None:
    """The conventions a file records: safetensors metadata, or a poseshift snapshot's or
    checkpoint's network config (its padding, epsilon and input normalization)."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as handle:
            meta = handle.metadata() or {}
        return WeightsOrigin.from_json(meta[ORIGIN_KEY], str(path)) if ORIGIN_KEY in meta else None
    config = loaded.get("config") if isinstance(loaded, dict) else None
    if isinstance(config, dict) and "backbone" in config:
        return config_origin(config, str(path))
    return None


def match_state_dict(
    model: nn.Module, weights: Weights, backbone: str
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """The tensors of ``weights`` that fit ``model`` (a ``create_backbone`` module).

    A shape mismatch, or fewer than half of the model's tensors found, means the file is
    another architecture: refused with one line. Other missing or unexpected keys warn.
    """
    path, layout = weights.path, weights.layout
    target = model.state_dict()
    state = {
        k: v for k, v in weights.tensors.items() if k in target or not k.startswith(HEAD_PREFIXES)
    }
    needed = [k for k in target if not k.endswith("num_batches_tracked")]
    matched = {k: state[k] for k in target if k in state}
    if len(matched) < len(needed) / 2:
        raise PoseshiftError(
            f"{path} does not fit backbone {backbone} ({layout} layout): only {len(matched)} "
            f"of its {len(needed)} tensors found (first keys: {_few(list(state))})"
        )
    for key, value in matched.items():
        if value.shape != target[key].shape:
            raise PoseshiftError(
                f"{path} does not fit backbone {backbone} ({layout} layout): {key} has shape "
                f"{tuple(value.shape)}, {backbone} needs {tuple(target[key].shape)} "
                "(another architecture or width?)"
            )
    missing = [k for k in needed if k not in state]
    unexpected = [k for k in state if k not in target]
    if missing or unexpected:
        warnings.warn(
            f"{path.name} -> {backbone}: {len(missing)} missing keys ({_few(missing)}) keep "
            f"their random init; {len(unexpected)} unexpected keys ({_few(unexpected)}) ignored",
            stacklevel=2,
        )
    report = LoadReport(
        path, layout, len(matched), tuple(missing), tuple(unexpected), weights.origin
    )
    return matched, report


def load_backbone_weights(
    model: nn.Module, weights: Weights | str | os.PathLike[str], backbone: str
) -> LoadReport:
    """Load weights (read, or a file to read) into a ``create_backbone`` module.

    Build the module for ``weights.origin`` first (``create_backbone(name, origin)``).
    """
    if not isinstance(weights, Weights):
        weights = read_weights(weights, backbone)
    matched, report = match_state_dict(model, weights, backbone)
    model.load_state_dict(matched, strict=False)
    return report


def import_weights(
    file: str | os.PathLike[str],
    backbone: str,
    dest: str | os.PathLike[str] | None = None,
    calibration: Path | None = None,
) -> tuple[Path, LoadReport]:
    """Convert ``file`` for ``backbone`` and store it as ``<dest>/<backbone>.safetensors``.

    ``dest`` defaults to ``weights_dir()``, where ``init="imagenet"`` finds it. The file is
    checked against the architecture first, so a wrong one is refused and nothing is written.
    The weights' origin (padding, BatchNorm epsilon, normalization, top-1) is stored with them.
    """
    from safetensors.torch import save_file

    weights = read_weights(file, backbone, calibration)
    _, report = match_state_dict(create_backbone(backbone, weights.origin), weights, backbone)
    tensors = {k: v.detach().clone().contiguous() for k, v in weights.tensors.items()}
    meta = {"backbone": backbone, "layout": report.layout, ORIGIN_KEY: weights.origin.to_json()}
    target = Path(dest).expanduser() if dest is not None else weights_dir()
    path = write_atomic(
        target / f"{backbone}.safetensors", lambda tmp: save_file(tensors, str(tmp), meta)
    )
    return path, report
