"""Device and precision policy: where a network runs and in which float format.

One module for training and inference alike, so that ``poseshift analyze`` and ``evaluate``
never import the training stack to choose a device.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from poseshift.errors import PoseshiftError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
INFERENCE_PRECISIONS = (*PRECISIONS, "int8")  # int8: video analysis on the CPU (predict.int8)


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when visible, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PoseshiftError(f"--device {name}: no CUDA device is visible; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise PoseshiftError(
            f"--device {name!r}: not a device; use auto, cpu, cuda or cuda:N"
        ) from None


def check_precision(precision: str, *, inference: bool = False) -> str:
    """Reject a typo (or int8 outside inference) before any work starts."""
    allowed = INFERENCE_PRECISIONS if inference else PRECISIONS
    if precision not in allowed:
        raise PoseshiftError(f"precision must be one of {allowed}, got {precision!r}")
    return precision


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matrix products run at about twice the fp32 rate."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The training autocast dtype; "auto" is bf16 where the hardware is fast at it.

    CUDA: bf16 (fp16 on GPUs without bf16); CPU: bf16 with native bf16 instructions
    (2-4x fewer CPU-seconds per training image, benchmarks/train_vs_dlc3.md), else fp32.
    """
    check_precision(precision)
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else None
    return torch.bfloat16 if precision == "bf16" else torch.float16


def inference_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of inference: "auto" on the CPU is fp32, else as in training.

    int8 has no autocast: its head and decoding run in fp32 (``predict.int8``).
    """
    if precision == "int8":
        return None
    if precision == "auto" and device.type == "cpu":
        # bf16 moves some keypoints by more than 2 px on CPU (benchmarks/): exact by default.
        precision = "fp32"
    return autocast_dtype(precision, device)


def dtype_name(dtype: torch.dtype | None) -> str:
    """ "bfloat16", "float16" or "off" (records of what produced a result)."""
    return str(dtype).removeprefix("torch.") if dtype else "off"


def device_name(device: torch.device) -> str:
    """A readable device name (GPU model, or the CPU model from /proc/cpuinfo)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                threads = torch.get_num_threads()
                return f"CPU {line.split(':', 1)[1].strip()}, {threads} torch thread(s)"
    except OSError:
        pass
    return f"CPU {platform.processor() or platform.machine()}"
