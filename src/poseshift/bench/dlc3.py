"""The DeepLabCut 3 virtualenv that the comparison benchmarks and the interop tests run in.

``ensure_dlc_venv`` builds it once (``$DLC3_VENV``, default ``/tmp/dlc3-venv``): torch and
torchvision at poseshift's pins first (pip finds them where poseshift's came from, so no CUDA
build is pulled), then ``deeplabcut==3.0.2`` (~6.6 GB, ~4-7 minutes). A venv that already
imports DeepLabCut 3.0.2 is reused. Nothing is skipped: a failed install raises with pip's
last lines, so a test tier built on it fails loudly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DLC_VERSION = "3.0.2"
TORCH_PINS = ("torch==2.14.1", "torchvision==0.29.1")


class DeepLabCutUnavailable(RuntimeError):
    """DeepLabCut 3 could not be installed: the interop tier fails with pip's own words."""


def dlc_venv() -> Path:
    return Path(os.environ.get("DLC3_VENV", "/tmp/dlc3-venv"))


def dlc_python(venv: Path | None = None) -> Path:
    return (venv or dlc_venv()) / "bin" / "python"


def installed_version(python: Path) -> str | None:
    """DeepLabCut's version in the venv of ``python``, or None (no venv, not installed)."""
    if not python.exists():
        return None
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('deeplabcut'))"],
        capture_output=True,
        text=True,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def ensure_dlc_venv(venv: Path | None = None, log: bool = True) -> Path:
    """The python of a venv with DeepLabCut 3.0.2, created when missing; raise when it fails."""
    venv = venv or dlc_venv()
    python = dlc_python(venv)
    if installed_version(python) == DLC_VERSION:
        return python
    if log:
        print(f"creating {venv} (deeplabcut {DLC_VERSION}; several minutes)", file=sys.stderr)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", *TORCH_PINS],
        [str(python), "-m", "pip", "install", "-q", f"deeplabcut=={DLC_VERSION}"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise DeepLabCutUnavailable(f"{' '.join(step)} failed ({done.returncode}):\n{tail}")
    if installed_version(python) != DLC_VERSION:
        raise DeepLabCutUnavailable(f"{venv}: deeplabcut {DLC_VERSION} installed but not found")
    return python
