"""The video commands' memory policy: on in a fresh process, untouched where torch is loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from poseshift.video_memory import OFF_SWITCH, use_video_memory_policy

# In a fresh process: the policy, then a 64 MiB tensor. glibc's mallinfo2 counts the blocks it
# maps on their own (hblks: the tensor's, or none); /proc/self/smaps flags huge-page memory "hg".
PROBE = """
import ctypes, json
from poseshift.video_memory import use_video_memory_policy
on = use_video_memory_policy()
import torch
class MallInfo2(ctypes.Structure):
    names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
    _fields_ = [(name, ctypes.c_size_t) for name in names.split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
before = libc.mallinfo2().hblks
tensor = torch.empty(64 << 20, dtype=torch.uint8)
address, flags = tensor.data_ptr(), ""
for line in open("/proc/self/smaps"):
    if "-" in line.split()[0] and not line.split()[0].endswith(":"):
        start, end = (int(x, 16) for x in line.split()[0].split("-"))
        inside = start <= address < end
    elif line.startswith("VmFlags:") and inside:
        flags = line.split()[1:]
mapped = libc.mallinfo2().hblks - before
print(json.dumps({"on": on, "mapped_blocks": mapped, "huge_pages": "hg" in flags}))
"""


def probe(**env: str) -> dict:
    environment = {
        k: v for k, v in os.environ.items() if k not in ("THP_MEM_ALLOC_ENABLE", OFF_SWITCH)
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env={**environment, **env}
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.skipif(sys.platform != "linux", reason="glibc and huge pages: Linux only")
def test_a_fresh_process_keeps_big_tensors_in_the_heap_on_huge_pages():
    assert probe() == {"on": True, "mapped_blocks": 0, "huge_pages": True}
    # glibc's and torch's defaults: a 64 MiB block is mapped alone, on 4 KiB pages
    assert probe(**{OFF_SWITCH: "off"}) == {"on": False, "mapped_blocks": 1, "huge_pages": False}


def test_nothing_changes_where_torch_is_already_loaded(monkeypatch):
    import torch  # noqa: F401  (the test process has it anyway)

    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    assert use_video_memory_policy() is False
    assert "THP_MEM_ALLOC_ENABLE" not in os.environ
