"""Shared helpers of the DeepLabCut 3 comparison benchmarks (poseshift venv side).

- ``ensure_dlc_venv``: /tmp/dlc3-venv with torch 2.14.1 / torchvision 0.29.1 (local wheels)
  and deeplabcut 3.0.2, created on first use.
- ``dlc``: run ``dlc3_driver.py`` in that venv and return its RESULT line.
- ``prepare_project``: a writable copy of the shared openfield project, DeepLabCut's shuffle 1
  created in it, and the same train/test split saved for poseshift.
- ``load``/``machine``: load averages and a description of the machine, for the reports.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

from poseshift.bench.dlc3 import dlc_python, dlc_venv
from poseshift.bench.dlc3 import ensure_dlc_venv as ensure_dlc_venv  # the benchmarks' import

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
POSESHIFT = REPO / ".venv" / "bin" / "poseshift"
PYTHON = REPO / ".venv" / "bin" / "python"
SHARED_PROJECT = REPO.parent / "shared" / "data" / "openfield" / "openfield-Pranav-2018-10-30"
DLC_VENV = dlc_venv()
DLC_PY = dlc_python()
SPLIT_NAME = "dlc3-shuffle1"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load():.2f}] {message}", flush=True)


def load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def machine() -> dict:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in subprocess.run(
                ["lscpu"], capture_output=True, text=True
            ).stdout.splitlines()
            if line.startswith("Model name")
        ),
        platform.processor(),
    )
    flags = Path("/proc/cpuinfo").read_text()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "avx512_bf16": "avx512_bf16" in flags,
        "python": platform.python_version(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def versions() -> dict:
    code = (
        "import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
        "['deeplabcut', 'torch', 'timm', 'albumentations', 'numpy']}))"
    )
    dlc = json.loads(
        subprocess.run([str(DLC_PY), "-c", code], capture_output=True, text=True, check=True).stdout
    )
    ours = json.loads(
        subprocess.run(
            [str(PYTHON), "-c", code.replace("'deeplabcut'", "'poseshift'")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    return {"deeplabcut_venv": dlc, "poseshift_venv": ours}


def dlc(*args: str, log_file: Path | None = None) -> dict:
    """Run the DeepLabCut driver; its stdout/stderr go to ``log_file``; return its RESULT."""
    command = [str(DLC_PY), str(HERE / "dlc3_driver.py"), *args]
    out = subprocess.run(command, capture_output=True, text=True, env=ENV)
    if log_file is not None:
        log_file.write_text(out.stdout + "\n--- stderr ---\n" + out.stderr)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(command)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def prepare_project(workdir: Path) -> tuple[Path, dict]:
    """Fresh copy of the openfield project with DLC's shuffle 1 and the same poseshift split."""
    project = workdir / "openfield"
    if project.exists():
        shutil.rmtree(project)
    shutil.copytree(SHARED_PROJECT, project)
    for path in [project, *project.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    split = dlc("setup", str(project), log_file=workdir / "dlc-setup.log")
    code = f"""
import json, sys
from poseshift.data.project import load_project
from poseshift.data.splits import Split, Shuffle, fraction_key, save_split
names = json.loads(sys.stdin.read())
dataset = load_project({str(project)!r})
assert sorted(names["train"] + names["test"]) == sorted(dataset.images)
key = fraction_key(names["fraction"])
shuffle = Shuffle(1, sorted(set(dataset.groups)), [], [], {{key: names["train"]}},
                  {{key: names["test"]}})
split = Split({SPLIT_NAME!r}, "random", 0, [names["fraction"]], [shuffle],
              source="DeepLabCut 3 shuffle 1 (Documentation_data-*.pickle)")
print(save_split({str(project)!r}, split))
"""
    subprocess.run(
        [str(PYTHON), "-c", code],
        input=json.dumps(split),
        text=True,
        check=True,
        capture_output=True,
    )
    return project, split


def train_command(
    project: Path, run: Path, backbone: str, preset: str, iters: int, crop: str
) -> list[str]:
    """``poseshift train`` from scratch on the shared split: batch 8, one loader worker."""
    return [
        str(POSESHIFT),
        "train",
        str(project),
        "--backbone",
        backbone,
        "--init",
        "scratch",
        "--split",
        SPLIT_NAME,
        "--preset",
        preset,
        "--batch-size",
        "8",
        "--crop",
        crop,
        "--iters",
        str(iters),
        "--workers",
        "1",
        "--out",
        str(run),
    ]


def write_preset(path: Path, **overrides) -> Path:
    """A copy of poseshift's shipped ``fast`` preset with some keys replaced."""
    import yaml

    base = REPO / "src" / "poseshift" / "presets" / "fast.yaml"
    config = yaml.safe_load(base.read_text())
    config.update(overrides)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def proc_cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a live process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
