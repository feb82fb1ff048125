"""The memory policy: on in a fresh CLI process and in spawned training processes, untouched
where a notebook has loaded torch."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys

import pytest

from poseshift.memory_policy import OFF_SWITCH, use_memory_policy
from poseshift.train.distributed import launch

# In a fresh process: the policy (before torch, as the CLI sets it; or after, as a spawned rank
# does), then a 64 MiB tensor. glibc's mallinfo2 counts the blocks it maps on their own (hblks:
# the tensor's, or none); /proc/self/smaps flags huge-page memory "hg".
PROBE = """
import json, sys
from poseshift.memory_policy import keep_freed_memory, use_memory_policy
if sys.argv[1] == "spawned":
    import torch
    on = keep_freed_memory()
else:
    on = use_memory_policy(huge_pages=sys.argv[1] == "video")
from test_memory_policy import big_tensor_placement  # it loads torch
print(json.dumps({"on": on, **big_tensor_placement()}))
"""


def big_tensor_placement() -> dict:
    """Where a new 64 MiB tensor lands: a block glibc maps alone or not, huge pages or not."""
    import torch

    class MallInfo2(ctypes.Structure):
        names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
        _fields_ = [(name, ctypes.c_size_t) for name in names.split()]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    before = libc.mallinfo2().hblks
    tensor = torch.empty(64 << 20, dtype=torch.uint8)
    address, flags, inside = tensor.data_ptr(), [], False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            field = line.split()[0]
            if "-" in field and not field.endswith(":"):
                start, end = (int(x, 16) for x in field.split("-"))
                inside = start <= address < end
            elif field == "VmFlags:" and inside:
                flags = line.split()[1:]
    return {"mapped_blocks": libc.mallinfo2().hblks - before, "huge_pages": "hg" in flags}


def placement_in_rank(ranks) -> dict:
    return big_tensor_placement()


# A command's policy, seen from inside: whether it was on when the command called it (torch not
# loaded yet) and with huge pages or not; the command itself then fails on the missing input.
SPY = """
import json, sys
import poseshift.memory_policy as policy
real, calls = policy.use_memory_policy, []
def spy(*, huge_pages):
    calls.append({"on": real(huge_pages=huge_pages), "huge_pages": huge_pages})
    return calls[-1]["on"]
policy.use_memory_policy = spy
from poseshift.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
except Exception:
    pass
print(json.dumps(calls))
"""


def clean_environment(**env: str) -> dict[str, str]:
    environment = {
        k: v for k, v in os.environ.items() if k not in ("THP_MEM_ALLOC_ENABLE", OFF_SWITCH)
    }
    return {**environment, **env}


def probe(kind: str, **env: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, kind],
        capture_output=True,
        text=True,
        env=clean_environment(**env, PYTHONPATH=os.path.dirname(__file__)),  # big_tensor_placement
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.skipif(sys.platform != "linux", reason="glibc and huge pages: Linux only")
def test_a_fresh_process_keeps_big_tensors_in_the_heap():
    assert probe("video") == {"on": True, "mapped_blocks": 0, "huge_pages": True}
    # training's policy keeps freed memory but leaves torch's 4 KiB pages
    assert probe("training") == {"on": True, "mapped_blocks": 0, "huge_pages": False}
    # glibc's and torch's defaults: a 64 MiB block is mapped alone, on 4 KiB pages
    off = {"on": False, "mapped_blocks": 1, "huge_pages": False}
    assert probe("video", **{OFF_SWITCH: "off"}) == off


@pytest.mark.skipif(sys.platform != "linux", reason="glibc: Linux only")
def test_spawned_training_processes_keep_freed_memory_too(monkeypatch):
    """Data-parallel ranks and Ray workers start with torch loaded and glibc's defaults."""
    assert probe("spawned") == {"on": True, "mapped_blocks": 0, "huge_pages": False}
    assert probe("spawned", **{OFF_SWITCH: "off"})["mapped_blocks"] == 1
    # a rank that poseshift's data-parallel training spawns (gloo, one process here)
    assert launch(placement_in_rank, (), 1, "cpu")["mapped_blocks"] == 0
    monkeypatch.setenv(OFF_SWITCH, "off")
    assert launch(placement_in_rank, (), 1, "cpu")["mapped_blocks"] == 1


@pytest.mark.skipif(sys.platform != "linux", reason="glibc: Linux only")
@pytest.mark.parametrize(
    ("command", "huge_pages"),
    [
        (["train", "missing-project", "--backbone", "resnet50", "--out", "missing-run"], False),
        (["study", "run", "missing-plan.yaml", "--out", "missing-study"], False),
        (["analyze", "missing-run", "missing.mp4"], True),
    ],
)
def test_the_commands_set_their_policy_before_torch_loads(tmp_path, command, huge_pages):
    out = subprocess.run(
        [sys.executable, "-c", SPY, *command],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean_environment(),
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == [{"on": True, "huge_pages": huge_pages}]


@pytest.mark.skipif(sys.platform != "linux", reason="glibc: Linux only")
def test_training_is_the_same_with_the_policy_and_without(tiny_project, tmp_path):
    """Memory reused from the heap is not zeroed as fresh pages are: nothing may depend on it.
    (256x256 crops: MobileNetV2's early maps are then blocks glibc would map afresh.)"""
    losses = {}
    for name, env in {"policy": {}, "defaults": {OFF_SWITCH: "off"}}.items():
        command = [sys.executable, "-m", "poseshift", "train", str(tiny_project), "--out"]
        command += [str(tmp_path / name), "--backbone", "mobilenetv2_035", "--init", "scratch"]
        command += ["--preset", "fast", "--iters", "3", "--batch-size", "2", "--crop", "256x256"]
        out = subprocess.run(
            [*command, "--workers", "0"],
            capture_output=True,
            text=True,
            env=clean_environment(**env),
        )
        assert out.returncode == 0, out.stdout + out.stderr
        log = (tmp_path / name / "log.jsonl").read_text().splitlines()
        losses[name] = [
            {k: v for k, v in json.loads(line).items() if k != "images_per_s"} for line in log
        ]
    assert losses["policy"] == losses["defaults"]
    assert losses["policy"][-1]["iteration"] == 3 and losses["policy"][-1]["total"] > 0


def test_nothing_changes_where_torch_is_already_loaded(monkeypatch):
    import torch  # noqa: F401  (the test process has it anyway)

    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    assert use_memory_policy(huge_pages=True) is False
    assert "THP_MEM_ALLOC_ENABLE" not in os.environ
