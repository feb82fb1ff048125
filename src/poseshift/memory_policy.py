"""The CLI's memory policy on Linux, set at process start, before torch loads.

Training and video analysis allocate and free the same large tensors every step or batch.
By default glibc maps each block above its threshold (128 KiB, rising to at most 32 MiB)
afresh and the kernel zeroes it page by page; a ResNet-50 training step at 448x448 has
many such tensors.
Keeping freed memory in glibc's heap for the next step removes those page faults: half of
them in ``poseshift train`` of a ResNet-50 (batch 8, 448x448, bf16), which then trained
1.06x (the default network) and 1.12x (``backbone_stride: 32``) as many images/s, median
of six rounds, for 11 % more peak memory (benchmarks/train_vs_dlc3.md, "Session 16").

Video analysis also puts tensors of 2 MiB and more on 2 MiB pages (torch's own
``THP_MEM_ALLOC_ENABLE``): with both, ``poseshift analyze`` of a ResNet-50 at 640x480 on the
2-core CPU ran 15-24 % more frames/s in int8, 8 % in bf16 and 6 % in fp32, with identical
poses (benchmarks/analyze_vs_dlc3.md, "Session 9"). Training does without huge pages: they
made its step 17 % slower (its saved activations are faulted in afresh every step, now
2 MiB at a time; benchmarks/train_step_profile.md, "Session 9").

The training processes poseshift spawns itself (data-parallel ranks, Ray workers) keep
freed memory too (``keep_freed_memory``, called in them after torch has loaded).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

OFF_SWITCH = "POSESHIFT_MEMORY_POLICY"  # =off leaves torch's and glibc's defaults
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)


def use_memory_policy(*, huge_pages: bool) -> bool:
    """Freed memory kept in glibc's heap (and, for video, huge pages); whether it is now on.

    A no-op where torch is already loaded (its allocator reads the huge-page setting once,
    and a notebook's process is not ours to retune), off Linux, with a C library other than
    glibc, or with ``POSESHIFT_MEMORY_POLICY=off``. A user's own ``THP_MEM_ALLOC_ENABLE``
    wins. Processes forked later (data-loading workers) inherit it; the training processes
    poseshift spawns call ``keep_freed_memory`` themselves.
    """
    if "torch" in sys.modules or not keep_freed_memory():
        return False
    if huge_pages:
        os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    return True


def keep_freed_memory() -> bool:
    """Freed memory kept in glibc's heap from now on, torch loaded or not; whether it is on.

    For the training processes poseshift spawns (data-parallel ranks, Ray workers): their
    first step comes after this. Off Linux, without glibc or with
    ``POSESHIFT_MEMORY_POLICY=off`` it does nothing.
    """
    mallopt = _glibc_mallopt()
    if mallopt is None or os.environ.get(OFF_SWITCH) == "off":
        return False
    mallopt(_M_MMAP_MAX, 0)  # big blocks from the heap, not fresh mappings
    mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)  # and freed ones kept there (up to 2 GiB)
    return True


def _glibc_mallopt() -> Callable[[int, int], int] | None:
    if sys.platform != "linux":
        return None
    try:
        return ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl or another C library: nothing to tune
        return None
