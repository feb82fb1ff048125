"""Where pretrained backbone weights come from, and converters for common checkpoint layouts.

``init="imagenet"`` looks, in order, for:

1. an explicit file (``weights=`` / ``--weights``);
2. ``$POSESHIFT_WEIGHTS_DIR/<backbone>.safetensors`` (or ``.pth`` / ``.pt`` / ``.bin``),
   default folder ``~/.cache/poseshift/weights`` (``poseshift weights import`` writes there);
3. the Hugging Face cache (``$HF_HUB_CACHE`` / ``$HF_HOME/hub``) and the torch hub cache
   (``$TORCH_HOME/hub/checkpoints``), read without touching the network;
4. a download of timm's file from the Hugging Face Hub, unless ``HF_HUB_OFFLINE=1``.

If all fail, one line says which file to put where. Files may be in any of these layouts,
told apart by their keys and renamed to timm's: timm itself, torchvision (ResNet keys equal
timm's; MobileNetV2 ``features.N.conv.*``; EfficientNet ``features.S.J.block.*``), the
width-multiplier MobileNetV2 of ``d-li14/mobilenetv2.pytorch`` (``features.N.conv.K``,
``conv.0``, ``classifier``) and poseshift checkpoints (their ``backbone.*`` part). timm has no
ImageNet weights for MobileNetV2 0.35 and 0.75: d-li14's checkpoints fill that gap.
"""

from __future__ import annotations

import os
import socket
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from poseshift.errors import PoseshiftError
from poseshift.fsutil import write_atomic
from poseshift.models.backbones import Backbone, create_backbone, get_backbone

SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
# Classifier-side tensors (timm names) that a stride-16 feature extractor never uses.
HEAD_PREFIXES = ("fc.", "classifier.", "conv_head.", "bn2.")
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


@dataclass(frozen=True)
class LoadReport:
    """What a weights file gave a backbone: its layout and the keys that did not fit."""

    path: Path
    layout: str
    loaded: int
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]


def weights_dir() -> Path:
    """``$POSESHIFT_WEIGHTS_DIR``, else ``~/.cache/poseshift/weights``."""
    folder = os.environ.get("POSESHIFT_WEIGHTS_DIR") or Path.home() / ".cache/poseshift/weights"
    return Path(folder).expanduser()


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors or PyTorch file, unwrapped from training checkpoints.

    PyTorch files load with ``weights_only=True``: a checkpoint file never runs code.
    """
    path = Path(path)
    if not path.is_file():
        raise PoseshiftError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(path, device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise PoseshiftError(
            f"cannot read weights file {path}: {type(exc).__name__} {first}"
        ) from exc
    while isinstance(obj, dict) and isinstance(obj.get("state_dict", obj.get("model")), dict):
        obj = obj["state_dict"] if "state_dict" in obj else obj["model"]
    if not isinstance(obj, dict):
        raise PoseshiftError(f"{path} holds a {type(obj).__name__}, not a state dict")
    tensors = {k.removeprefix("module."): v for k, v in obj.items() if torch.is_tensor(v)}
    if not tensors:
        raise PoseshiftError(f"{path} holds no tensors")
    return tensors


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


def convert_state_dict(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """Rename a checkpoint's keys to timm's; returns (renamed tensors, layout name)."""
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
    elif "conv1.weight" in state:
        return dict(state), "timm / torchvision ResNet"
    else:
        return dict(state), "timm"
    return {rename(k): v for k, v in state.items()}, layout


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")


def match_state_dict(
    model: nn.Module, path: str | os.PathLike[str], backbone: str
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """The tensors of ``path`` that fit ``model`` (a ``create_backbone`` module), renamed.

    A shape mismatch, or fewer than half of the model's tensors found, means the file is
    another architecture: refused with one line. Other missing or unexpected keys warn.
    """
    path = Path(path)
    state, layout = convert_state_dict(read_state_dict(path))
    state = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIXES)}
    target = model.state_dict()
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
    return matched, LoadReport(path, layout, len(matched), tuple(missing), tuple(unexpected))


def load_backbone_weights(
    model: nn.Module, path: str | os.PathLike[str], backbone: str
) -> LoadReport:
    """Load a weights file (any supported layout) into a ``create_backbone`` module."""
    matched, report = match_state_dict(model, path, backbone)
    model.load_state_dict(matched, strict=False)
    return report


def _hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (not at import time)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "huggingface"
    )
    return Path(home).expanduser() / "hub"


def _hf_repo(entry: Backbone) -> str | None:
    if entry.timm_tag is None:
        return None
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(entry.timm_model_name)
    return cfg.hf_hub_id if cfg is not None else None


def _offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return flag in {"1", "ON", "YES", "TRUE"} or bool(constants.HF_HUB_OFFLINE)


def find_local_weights(backbone: str) -> Path | None:
    """The first weights file for ``backbone`` on this machine (lookup steps 2-3), or None."""
    entry = get_backbone(backbone)
    for suffix in SUFFIXES:
        candidate = weights_dir() / f"{backbone}{suffix}"
        if candidate.is_file():
            return candidate
    repo = _hf_repo(entry)
    if repo is not None:
        from huggingface_hub import try_to_load_from_cache

        for filename in ("model.safetensors", "pytorch_model.bin"):
            cached = try_to_load_from_cache(repo, filename, cache_dir=_hf_cache_dir())
            if isinstance(cached, str):
                return Path(cached)
    hub = Path(torch.hub.get_dir()) / "checkpoints" / entry.weights_url.rsplit("/", 1)[-1]
    return hub if hub.is_file() else None


def _unreachable(url: str, timeout: float = 3.0) -> str:
    """Why ``url``'s host cannot be reached ("" if a TCP connection opens within ``timeout``).

    Checked before downloading because the Hub client retries a dead network for a minute.
    """
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return ""
    except OSError as exc:
        return f"{parsed.hostname}:{port} is unreachable ({type(exc).__name__})"


def _download(repo: str) -> tuple[Path | None, str]:
    """timm's file from the Hugging Face Hub into its cache; (None, why) when that fails."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError

    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    reason = _unreachable(proxy or endpoint)
    if reason:
        return None, reason
    try:
        for filename in ("model.safetensors", "pytorch_model.bin"):
            try:
                return Path(hf_hub_download(repo, filename, cache_dir=_hf_cache_dir())), ""
            except RemoteEntryNotFoundError:
                continue
    except Exception as exc:  # any network or hub failure falls through to the error
        return None, f"the download of {repo} failed ({type(exc).__name__})"
    return None, f"{repo} holds no weights file"


def missing_weights_message(backbone: str, reason: str) -> str:
    """The one line shown when no ImageNet weights exist locally and none can be fetched."""
    entry = get_backbone(backbone)
    repo = _hf_repo(entry)
    caches = f"the Hugging Face cache ({repo})" if repo else "the torch hub cache"
    return (
        f"no ImageNet weights for backbone {backbone!r}: looked for {backbone}.safetensors "
        f"(or .pth) in {weights_dir()} (POSESHIFT_WEIGHTS_DIR) and in {caches}; {reason}. "
        f"Get {entry.weights_url} and run: poseshift weights import FILE --backbone {backbone}"
    )


def load_imagenet_weights(
    model: nn.Module, backbone: str, weights: str | os.PathLike[str] | None = None
) -> LoadReport:
    """ImageNet weights into a ``create_backbone`` module, by the lookup order above."""
    if weights is not None:
        return load_backbone_weights(model, weights, backbone)
    found = find_local_weights(backbone)
    if found is None:
        repo = _hf_repo(get_backbone(backbone))
        if repo is None:
            reason = "timm has no such weights to download"
        elif _offline():
            reason = "downloads are off (HF_HUB_OFFLINE=1)"
        else:
            found, reason = _download(repo)
        if found is None:
            raise PoseshiftError(missing_weights_message(backbone, reason))
    return load_backbone_weights(model, found, backbone)


def import_weights(
    file: str | os.PathLike[str], backbone: str, dest: str | os.PathLike[str] | None = None
) -> tuple[Path, LoadReport]:
    """Convert ``file`` for ``backbone`` and store it as ``<dest>/<backbone>.safetensors``.

    ``dest`` defaults to ``weights_dir()``, where ``init="imagenet"`` finds it. The file is
    checked against the architecture first, so a wrong one is refused and nothing is written.
    """
    from safetensors.torch import save_file

    matched, report = match_state_dict(create_backbone(backbone), file, backbone)
    tensors = {k: v.detach().clone().contiguous() for k, v in matched.items()}
    meta = {"backbone": backbone, "layout": report.layout, "source": Path(file).name}
    target = Path(dest).expanduser() if dest is not None else weights_dir()
    path = write_atomic(
        target / f"{backbone}.safetensors", lambda tmp: save_file(tensors, str(tmp), meta)
    )
    return path, report
