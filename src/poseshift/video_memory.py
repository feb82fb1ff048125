"""Video analysis's memory policy on Linux, set at process start, before torch loads.

Video analysis allocates and frees the same large activations for every batch. By default
torch's CPU allocator uses 4 KiB pages and glibc maps big blocks afresh for each one (the
kernel then zeroes them page by page); with 2 MiB pages for tensors of 2 MiB and more
(torch's own ``THP_MEM_ALLOC_ENABLE``) and freed memory kept in glibc's heap for the next
batch, ``poseshift analyze`` of a ResNet-50 at 640x480 on the 2-core CPU ran 15-24 % more
frames/s in int8 (8-16 % at batch 1), 8 % in bf16 and 6 % in fp32, with identical poses
(benchmarks/analyze_vs_dlc3.md, "Session 9").
Training is left alone: huge pages alone made its step 17 % slower (its saved activations
are faulted in afresh every step), both together gained nothing measurable.
"""

from __future__ import annotations

import ctypes
import os
import sys

OFF_SWITCH = "POSESHIFT_MEMORY_POLICY"  # =off leaves torch's and glibc's defaults
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)


def use_video_memory_policy() -> bool:
    """Huge pages for big tensors, freed memory kept; whether the policy is now on.

    A no-op where torch is already loaded (its allocator reads the setting once: notebooks,
    tests), off Linux, with a C library other than glibc, or with ``POSESHIFT_MEMORY_POLICY=off``.
    A user's own ``THP_MEM_ALLOC_ENABLE`` wins.
    """
    if "torch" in sys.modules or sys.platform != "linux" or os.environ.get(OFF_SWITCH) == "off":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl or another C library: nothing to tune
        return False
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    mallopt(_M_MMAP_MAX, 0)  # big blocks from the heap, not fresh mappings
    mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)  # and freed ones kept there (up to 2 GiB)
    return True
