"""PyTorch checkpoint key layouts, renamed to timm's.

Told apart by their keys: timm itself, torchvision (ResNet keys equal timm's; MobileNetV2
``features.N.conv.*``; EfficientNet ``features.S.J.block.*``), the width-multiplier
MobileNetV2 of ``d-li14/mobilenetv2.pytorch`` (``features.N.conv.K``, ``conv.0``,
``classifier``), ``efficientnet_pytorch`` / EfficientNet-Lite ports (``_conv_stem``,
``_blocks.N._expand_conv``, ``_fc``) and poseshift checkpoints (their ``backbone.*`` part).
All of these are PyTorch-trained except the efficientnet_pytorch ports of TensorFlow
weights, which is why ``layout_origin`` tells the conventions from the layout.
"""

from __future__ import annotations

from functools import partial

import torch

from poseshift.models.origin import PYTORCH, TENSORFLOW, WeightsOrigin

_MBV2_DEPTHS = (1, 2, 3, 4, 3, 3, 1)  # MobileNetV2's blocks per stage, every width
_MBV2_BLOCKS = [(s, j) for s, depth in enumerate(_MBV2_DEPTHS) for j in range(depth)]

# Sub-module renames inside one block, keyed by "has an expansion conv" (False: the first,
# depthwise-separable block).
_TV_MOBILENET = {
    False: {"conv.0.0": "conv_dw", "conv.0.1": "bn1", "conv.1": "conv_pw", "conv.2": "bn2"},
    True: {"conv.0.0": "conv_pw", "conv.0.1": "bn1", "conv.1.0": "conv_dw", "conv.1.1": "bn2",
           "conv.2": "conv_pwl", "conv.3": "bn3"},
}  # fmt: skip
_DLI14_MOBILENET = {
    False: {"conv.0": "conv_dw", "conv.1": "bn1", "conv.3": "conv_pw", "conv.4": "bn2"},
    True: {"conv.0": "conv_pw", "conv.1": "bn1", "conv.3": "conv_dw", "conv.4": "bn2",
           "conv.6": "conv_pwl", "conv.7": "bn3"},
}  # fmt: skip
_TV_EFFICIENTNET = {
    False: {"block.0.0": "conv_dw", "block.0.1": "bn1", "block.1.fc1": "se.conv_reduce",
            "block.1.fc2": "se.conv_expand", "block.2.0": "conv_pw", "block.2.1": "bn2"},
    True: {"block.0.0": "conv_pw", "block.0.1": "bn1", "block.1.0": "conv_dw",
           "block.1.1": "bn2", "block.2.fc1": "se.conv_reduce", "block.2.fc2": "se.conv_expand",
           "block.3.0": "conv_pwl", "block.3.1": "bn3"},
}  # fmt: skip
_STEM = {"0": "conv_stem", "1": "bn1"}
_LAST_CONV = {"0": "conv_head", "1": "bn2"}

_EFFNET_PYTORCH = {
    False: {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_se_reduce": "se.conv_reduce",
            "_se_expand": "se.conv_expand", "_project_conv": "conv_pw", "_bn2": "bn2"},
    True: {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
           "_bn1": "bn2", "_se_reduce": "se.conv_reduce", "_se_expand": "se.conv_expand",
           "_project_conv": "conv_pwl", "_bn2": "bn3"},
}  # fmt: skip
_EFFNET_PYTORCH_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head",
                       "_bn1": "bn2", "_fc": "classifier"}  # fmt: skip
# d-li14's published top-1 for its width-multiplier files (its README).
_DLI14_TOP1 = {112: (60.092, "mobilenetv2_035"), 240: (69.952, "mobilenetv2_075")}


def block_order(target_keys: list[str]) -> list[tuple[int, int]]:
    """timm's (stage, block) pairs in forward order, read off a model's state-dict keys."""
    pairs = {
        tuple(int(p) for p in k.split(".")[1:3]) for k in target_keys if k.startswith("blocks.")
    }
    return sorted(pairs)  # type: ignore[arg-type]


def _efficientnet_pytorch_key(key: str, state: dict, blocks: list[tuple[int, int]]) -> str:
    """An efficientnet_pytorch key in timm's naming (unknown keys unchanged)."""
    parts = key.split(".")
    if parts[0] != "_blocks":
        new = _EFFNET_PYTORCH_TOP.get(parts[0])
        return f"{new}.{'.'.join(parts[1:])}" if new else key
    n = int(parts[1])
    if n >= len(blocks):
        return key  # more blocks than the target: reported as unexpected
    expands = f"_blocks.{n}._expand_conv.weight" in state
    sub = _EFFNET_PYTORCH[expands].get(parts[2])
    s, j = blocks[n]
    return f"blocks.{s}.{j}.{sub}.{'.'.join(parts[3:])}" if sub else key


def _mobilenet_key(key: str, state: dict, table: dict, marker: str) -> str:
    """A torchvision / d-li14 MobileNetV2 key in timm's naming (unknown keys unchanged).

    ``marker`` is the sub-module only blocks with an expansion conv have (torchvision
    ``conv.3``, d-li14 ``conv.7``); d-li14's final 1x1 conv is the top-level ``conv``.
    """
    if key.startswith(("conv.0.", "conv.1.")):
        return ("conv_head." if key.startswith("conv.0.") else "bn2.") + key[7:]
    parts = key.split(".")
    if parts[0] != "features" or len(parts) < 3 or not parts[1].isdigit():
        return key.replace("classifier.1.", "classifier.")
    n, module = int(parts[1]), ".".join(parts[2:-1])  # features.3.conv.1.0.weight
    if n == 0:
        new = _STEM.get(module)
    elif n <= len(_MBV2_BLOCKS):
        s, j = _MBV2_BLOCKS[n - 1]
        expands = any(k.startswith(f"features.{n}.{marker}") for k in state)
        sub = table[expands].get(module)
        new = f"blocks.{s}.{j}.{sub}" if sub else None
    else:
        new = _LAST_CONV.get(module)
    return f"{new}.{parts[-1]}" if new else key


def _efficientnet_key(key: str, state: dict) -> str:
    """A torchvision EfficientNet key in timm's naming (unknown keys unchanged)."""
    parts = key.split(".")
    if parts[0] != "features" or len(parts) < 3 or not parts[1].isdigit():
        return key.replace("classifier.1.", "classifier.")
    s = int(parts[1])
    if s == 0:
        new = _STEM.get(parts[2])
    elif len(parts) > 3 and parts[3] == "block":
        j, module = parts[2], ".".join(parts[3:-1])
        expands = any(k.startswith(f"features.{s}.{j}.block.3.") for k in state)
        sub = _TV_EFFICIENTNET[expands].get(module)
        new = f"blocks.{s - 1}.{j}.{sub}" if sub else None
    else:
        new = _LAST_CONV.get(parts[2])
    return f"{new}.{parts[-1]}" if new else key


def convert_state_dict(
    state: dict[str, torch.Tensor], target_keys: list[str] | None = None
) -> tuple[dict[str, torch.Tensor], str]:
    """Rename a checkpoint's keys to timm's; returns (renamed tensors, layout name).

    ``target_keys`` (the model's state-dict keys) place efficientnet_pytorch's flat block
    numbers into timm's stages.
    """
    if all(k.startswith(("backbone.", "head.")) for k in state):
        return {k[9:]: v for k, v in state.items() if k.startswith("backbone.")}, "poseshift"
    if "features.1.conv.0.0.weight" in state:
        layout = "torchvision MobileNetV2"
        rename = partial(_mobilenet_key, state=state, table=_TV_MOBILENET, marker="conv.3.")
    elif "features.1.conv.0.weight" in state:
        layout = "d-li14 MobileNetV2"
        rename = partial(_mobilenet_key, state=state, table=_DLI14_MOBILENET, marker="conv.7.")
    elif "features.1.0.block.0.0.weight" in state:
        layout, rename = "torchvision EfficientNet", partial(_efficientnet_key, state=state)
    elif "_conv_stem.weight" in state:
        layout = "efficientnet_pytorch"
        blocks = block_order(target_keys or [])
        rename = partial(_efficientnet_pytorch_key, state=state, blocks=blocks)
    elif "conv1.weight" in state:
        return dict(state), "timm / torchvision ResNet"
    else:
        return dict(state), "timm"
    return {rename(k): v for k, v in state.items()}, layout


def layout_origin(layout: str, state: dict[str, torch.Tensor]) -> WeightsOrigin:
    """The conventions a layout's weights were trained with (top-1 where it is known)."""
    if layout == "efficientnet_pytorch":
        return TENSORFLOW  # the only public weights in this layout are TensorFlow ports
    if layout == "d-li14 MobileNetV2":
        last = max(
            (v.shape[0] for k, v in state.items() if k.endswith("conv_pwl.weight")), default=0
        )
        if last in _DLI14_TOP1:
            top1, name = _DLI14_TOP1[last]
            source = f"d-li14/mobilenetv2.pytorch README ({name})"
            return WeightsOrigin(top1=top1, top1_source=source)
    return PYTORCH
