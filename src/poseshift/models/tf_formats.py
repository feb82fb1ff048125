"""TensorFlow-family weight files read into timm's key names: TF.js Layers, Keras HDF5, TFLite.

- TF.js Layers: ``model.json`` (Keras topology + ``weightsManifest``) and its binary shards,
  the tensors concatenated in manifest order (float32, float16, or uint8/uint16 affine
  quantized). Read with json + numpy (the format is that simple; the ``tensorflowjs`` package
  would pull in TensorFlow).
- Keras HDF5 (``.h5``, ``model.save_weights`` or whole-model files, Keras 2 layout) with h5py.
- TFLite flatbuffers with the maintained ``tflite`` package (generated from TensorFlow's
  ``schema.fbs``): uint8 / int8 tensors, per-tensor or per-channel scales, int32 biases;
  real value = scale x (q - zero point). BatchNorm is folded into the convolutions there, so
  conversion gives each convolution its weight and its following BatchNorm the folded bias
  with identity statistics (``poseshift.models.folded_bn`` then re-creates real statistics).

Keras layer names (MobileNetV2): ``Conv1``/``bn_Conv1``, ``expanded_conv_depthwise(_BN)``,
``expanded_conv_project(_BN)``, ``block_{1..16}_{expand,depthwise,project}(_BN)``,
``Conv_1``/``Conv_1_bn``. Keras kernels are HWIO (depthwise H, W, C, 1); TFLite's OHWI
(depthwise 1, H, W, C).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from poseshift.errors import PoseshiftError

_TFJS_DTYPES = {"float32": np.float32, "int32": np.int32, "float16": np.float16}
_BN_KEYS = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
            "moving_variance": "running_var"}  # fmt: skip
_IR_KERAS = {"expand": "conv_pw", "expand_BN": "bn1", "depthwise": "conv_dw",
             "depthwise_BN": "bn2", "project": "conv_pwl", "project_BN": "bn3"}  # fmt: skip
_DS_KERAS = {"depthwise": "conv_dw", "depthwise_BN": "bn1", "project": "conv_pw",
             "project_BN": "bn2"}  # fmt: skip
_TOP_KERAS = {"Conv1": "conv_stem", "bn_Conv1": "bn1", "Conv_1": "conv_head", "Conv_1_bn": "bn2"}


# ----------------------------------------------------------------------------- TF.js / Keras


def _keras_layers(topology: dict) -> list[dict]:
    """Every leaf layer config of a (nested Sequential / Functional) Keras topology."""
    config = topology.get("config", {})
    layers = config.get("layers", []) if isinstance(config, dict) else config
    out = []
    for layer in layers or []:
        inner = layer.get("config", {})
        if (isinstance(inner, dict) and "layers" in inner) or isinstance(inner, list):
            out += _keras_layers(layer)
        else:
            out.append(layer)
    return out


def keras_bn_eps(topology: dict | None) -> float:
    """The BatchNorm epsilon the topology declares (Keras MobileNetV2: 1e-3)."""
    eps = {
        float(layer["config"]["epsilon"])
        for layer in _keras_layers(topology or {})
        if layer.get("class_name") == "BatchNormalization"
    }
    if len(eps) > 1:
        raise PoseshiftError(f"the model mixes BatchNorm epsilons {sorted(eps)}")
    return eps.pop() if eps else 1e-3


def read_tfjs(model_json: Path) -> tuple[dict[str, np.ndarray], float]:
    """(Keras-named float32 arrays, BatchNorm epsilon) of a TF.js Layers model."""
    try:
        model = json.loads(model_json.read_text())
        manifest = model["weightsManifest"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PoseshiftError(
            f"{model_json} is not a TF.js Layers model.json ({type(exc).__name__})"
        ) from None
    try:
        return _manifest_arrays(manifest, model_json), keras_bn_eps(model.get("modelTopology"))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PoseshiftError(
            f"{model_json}: malformed weightsManifest or modelTopology ({type(exc).__name__}: "
            f"{exc}); re-export it with tensorflowjs_converter"
        ) from None


def _manifest_arrays(manifest: list, model_json: Path) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for group in manifest:
        blob = b"".join(_shard(model_json.parent / p, model_json) for p in group["paths"])
        offset = 0
        for entry in group["weights"]:
            value, offset = _tfjs_tensor(entry, blob, offset, model_json)
            arrays[entry["name"]] = value
        if offset != len(blob):
            raise PoseshiftError(
                f"{model_json}: its weight files hold {len(blob)} bytes, the manifest {offset}"
            )
    return arrays


def _shard(path: Path, model_json: Path) -> bytes:
    if not path.is_file():
        raise PoseshiftError(f"{model_json} needs weight file {path.name} beside it")
    return path.read_bytes()


def _tfjs_tensor(entry: dict, blob: bytes, offset: int, where: Path) -> tuple[np.ndarray, int]:
    shape = tuple(entry["shape"])
    count = int(np.prod(shape, dtype=np.int64))
    quant = entry.get("quantization")
    dtype = np.dtype(quant["dtype"] if quant else _TFJS_DTYPES.get(entry["dtype"], "V1"))
    if dtype.kind == "V":
        raise PoseshiftError(f"{where}: tensor {entry['name']} has unsupported dtype")
    end = offset + count * dtype.itemsize
    if end > len(blob):
        raise PoseshiftError(f"{where}: weight files end inside tensor {entry['name']} (truncated)")
    raw = np.frombuffer(blob[offset:end], dtype=dtype.newbyteorder("<")).reshape(shape)
    if quant and dtype.kind == "u":  # affine: value = q * scale + min
        value = raw.astype(np.float32) * float(quant["scale"]) + float(quant["min"])
    else:
        value = raw.astype(np.float32)
    return value, end


def read_keras_h5(path: Path) -> tuple[dict[str, np.ndarray], float]:
    """(Keras-named arrays, BatchNorm epsilon) of a Keras 2 HDF5 weights or model file."""
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            root = h5.get("model_weights", h5)
            config = h5.attrs.get("model_config")
            arrays: dict[str, np.ndarray] = {}
            for layer in _attr_names(root, "layer_names"):
                group = root[layer]
                for weight in _attr_names(group, "weight_names"):
                    name = "/".join(weight.split("/")[-2:]).removesuffix(":0")
                    arrays[name] = np.asarray(group[weight], dtype=np.float32)
    except (OSError, KeyError) as exc:
        raise PoseshiftError(f"{path} is not a readable Keras HDF5 file ({exc})") from None
    if not arrays:
        raise PoseshiftError(f"{path} holds no Keras layer weights (layer_names is empty)")
    try:
        return arrays, keras_bn_eps(json.loads(config) if config is not None else None)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PoseshiftError(
            f"{path}: its model_config is not a Keras model description ({type(exc).__name__})"
        ) from None


def _attr_names(group, key: str) -> list[str]:
    values = group.attrs.get(key)
    if values is None:
        raise KeyError(f"no '{key}' attribute")
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def keras_mobilenetv2_to_timm(
    arrays: dict[str, np.ndarray], blocks: list[tuple[int, int]]
) -> dict[str, torch.Tensor]:
    """Keras MobileNetV2 arrays in timm's names and layouts (other layers are dropped)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in arrays.items():
        layer, _, kind = key.rpartition("/")
        module = _keras_module(layer, blocks)
        if module is None:
            continue
        tensor = torch.from_numpy(np.ascontiguousarray(value))
        if kind == "depthwise_kernel":  # (H, W, C, 1) -> (C, 1, H, W)
            out[f"{module}.weight"] = tensor.permute(2, 3, 0, 1).contiguous()
        elif kind == "kernel":  # (H, W, I, O) -> (O, I, H, W)
            out[f"{module}.weight"] = tensor.permute(3, 2, 0, 1).contiguous()
        elif kind in _BN_KEYS:
            out[f"{module}.{_BN_KEYS[kind]}"] = tensor
    return out


def _keras_module(layer: str, blocks: list[tuple[int, int]]) -> str | None:
    if layer in _TOP_KERAS:
        return _TOP_KERAS[layer]
    match = re.fullmatch(r"(?:expanded_conv|block_(\d+))_(\w+)", layer)
    if match is None:
        return None
    n = int(match.group(1) or 0)
    sub = (_IR_KERAS if n else _DS_KERAS).get(match.group(2))
    if sub is None or n >= len(blocks):
        return None
    s, j = blocks[n]
    return f"blocks.{s}.{j}.{sub}"


# ----------------------------------------------------------------------------- TFLite


def read_tflite(path: Path) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """(op, dequantized weight, bias) of every convolution / dense op, in graph order."""
    import tflite

    data = path.read_bytes()
    try:
        if data[4:8] != b"TFL3":
            raise ValueError("no TFL3 file identifier")
        model = tflite.Model.GetRootAsModel(data, 0)
        graph = model.Subgraphs(0)
        names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        layers = []
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
            if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
                continue
            weight = _tflite_tensor(model, graph, op.Inputs(1))
            bias = _tflite_tensor(model, graph, op.Inputs(2)) if op.InputsLength() > 2 else None
            layers.append((name, weight, bias))
    except Exception as exc:  # the flatbuffer reader fails in many ways on a damaged file
        raise PoseshiftError(
            f"{path} is not a readable TFLite flatbuffer (truncated or another format: {exc})"
        ) from None
    if not layers:
        raise PoseshiftError(f"{path} holds no convolution (not an image classifier)")
    return layers


def _tflite_tensor(model, graph, index: int) -> np.ndarray | None:
    import tflite

    if index < 0:
        return None
    tensor = graph.Tensors(index)
    shape = tuple(int(v) for v in tensor.ShapeAsNumpy())
    dtypes = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.UINT8: np.uint8,
              tflite.TensorType.INT8: np.int8, tflite.TensorType.INT32: np.int32}  # fmt: skip
    if tensor.Type() not in dtypes:
        raise ValueError(f"tensor {tensor.Name().decode()} has unsupported type {tensor.Type()}")
    raw = model.Buffers(tensor.Buffer()).DataAsNumpy()
    if isinstance(raw, int):  # an empty buffer: an activation, not a constant
        raise ValueError(f"tensor {tensor.Name().decode()} has no data")
    values = np.frombuffer(raw.tobytes(), dtype=dtypes[tensor.Type()]).reshape(shape)
    quant = tensor.Quantization()
    if tensor.Type() == tflite.TensorType.FLOAT32 or quant is None or not quant.ScaleLength():
        return values.astype(np.float32)
    scale = quant.ScaleAsNumpy().astype(np.float32)
    zero = quant.ZeroPointAsNumpy().astype(np.float32) if quant.ZeroPointLength() else 0.0
    if scale.size > 1:  # per channel, along quantized_dimension
        axis = quant.QuantizedDimension()
        view = [1] * values.ndim
        view[axis] = -1
        scale = scale.reshape(view)
        zero = np.reshape(zero, view) if np.ndim(zero) else zero
    return (values.astype(np.float32) - zero) * scale


def tflite_to_timm(
    layers: list[tuple[str, np.ndarray, np.ndarray | None]], model: nn.Module, path: Path
) -> dict[str, torch.Tensor]:
    """Folded TFLite layers onto ``model``'s convolutions in forward order.

    Each convolution's following BatchNorm gets the folded bias and identity statistics
    (weight sqrt(1 + eps), mean 0, var 1): in eval mode the network computes exactly the
    TFLite function. A classifier of 1001 classes loses TFLite's "background" class 0.
    """
    pairs = _conv_bn_pairs(model)
    if len(layers) != len(pairs):
        raise PoseshiftError(
            f"{path} has {len(layers)} convolution layers, {type(model).__name__} needs "
            f"{len(pairs)}: another architecture"
        )
    out: dict[str, torch.Tensor] = {}
    for (op, weight, bias), (conv, conv_module, bn, bn_module) in zip(layers, pairs, strict=True):
        tensor = torch.from_numpy(np.ascontiguousarray(weight))
        if op == "DEPTHWISE_CONV_2D":  # (1, H, W, C) -> (C, 1, H, W)
            tensor = tensor.permute(3, 0, 1, 2)
        elif tensor.ndim == 4:  # (O, H, W, I) -> (O, I, H, W)
            tensor = tensor.permute(0, 3, 1, 2)
        bias_t = torch.from_numpy(bias.copy()) if bias is not None else None
        expected = tuple(conv_module.weight.shape)
        tensor = tensor.reshape(tensor.shape[0], -1) if len(expected) == 2 else tensor
        if tensor.shape[0] == expected[0] + 1:  # a dense 1001-class classifier
            tensor, bias_t = tensor[1:], bias_t[1:] if bias_t is not None else None
        if tuple(tensor.shape) != expected:
            raise PoseshiftError(
                f"{path}: layer {conv} has shape {tuple(tensor.shape)}, the network needs "
                f"{expected} (another architecture or width?)"
            )
        out[f"{conv}.weight"] = tensor.contiguous()
        bias_t = bias_t if bias_t is not None else torch.zeros(expected[0])
        if bn is None:
            out[f"{conv}.bias"] = bias_t
            continue
        eps = bn_module.eps
        out[f"{bn}.weight"] = torch.full_like(bias_t, (1 + eps) ** 0.5)
        out[f"{bn}.bias"] = bias_t
        out[f"{bn}.running_mean"] = torch.zeros_like(bias_t)
        out[f"{bn}.running_var"] = torch.ones_like(bias_t)
    return out


def _conv_bn_pairs(model: nn.Module) -> list[tuple[str, nn.Module, str | None, nn.Module | None]]:
    """Every conv / linear layer in forward order with the BatchNorm that follows it."""
    pairs: list = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            pairs.append([name, module, None, None])
        elif isinstance(module, nn.BatchNorm2d) and pairs and pairs[-1][2] is None:
            pairs[-1][2:] = [name, module]
    return [tuple(p) for p in pairs]
