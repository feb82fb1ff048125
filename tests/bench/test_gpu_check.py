"""The prepared GPU check runs every section in its tiny mode here, so GPU minutes are never
lost to a typo or to a package the GPU machine lacks (benchmarks/gpu/)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from poseshift.bench.speed import synthetic_clip
from poseshift.datasets.synthetic.generate import generate

GPU_DIR = Path(__file__).parents[2] / "benchmarks" / "gpu"
SCRIPT = GPU_DIR / "gpu_check.py"

# Runs the check in a fresh interpreter where poseshift (and the script) may import only the
# standard library and the distributions of argv[1]: what the GPU image has plus the wheels
# we carry. A lazy import of anything else would fail there, minutes into the GPU time.
ONLY_THE_GPU_IMAGE = """
import importlib.abc, importlib.metadata, importlib.util, re, sys

def normal(name):
    return re.sub(r"[-_.]+", "-", name).lower()

allowed = {normal(name) for name in sys.argv[1].split(",")}
owners = importlib.metadata.packages_distributions()

class OnlyTheGpuImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or top in ("poseshift", "gpu_check"):
            return None
        importer = sys._getframe(1)
        while importer and importer.f_globals.get("__name__", "").startswith("importlib"):
            importer = importer.f_back
        caller = importer.f_globals.get("__name__", "") if importer else ""
        if caller.partition(".")[0] not in ("poseshift", "gpu_check"):
            return None  # a third-party package's own imports come with it
        if not any(normal(d) in allowed for d in owners.get(top, [])):
            raise ModuleNotFoundError(f"{caller} imports {name}, which the GPU image lacks")
        return None

sys.meta_path.insert(0, OnlyTheGpuImage())
spec = importlib.util.spec_from_file_location("gpu_check", sys.argv[2])
module = importlib.util.module_from_spec(spec)
sys.modules["gpu_check"] = module
spec.loader.exec_module(module)
module.main(sys.argv[3:])
"""


def _listed(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line.split("==")[0] for line in lines if line and not line.startswith("#")]


def _load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_tiny_gpu_check_measures_every_section(tmp_path: Path) -> None:
    project = tmp_path / "synth"
    generate(project, individuals=3, frames_per_individual=3, size=(64, 48))
    video = synthetic_clip(tmp_path / "clip.mp4", 6, size=(64, 48))
    out = tmp_path / "out"
    packages = _listed(GPU_DIR / "image_packages.txt") + _listed(GPU_DIR / "wheels.txt")
    check = subprocess.run(
        [sys.executable, "-c", ONLY_THE_GPU_IMAGE, ",".join(packages), str(SCRIPT), "--tiny",
         "--device", "cpu", "--out", str(out), "--project", str(project), "--video",
         str(video), "--budget-s", "600"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr[-3000:]

    result = json.loads((out / "gpu_results.json").read_text())
    sections = result["sections"]
    assert set(sections) == {"tables", "variants", "video", "training"}
    for name, rows in sections.items():
        assert rows, name
        for row in rows:
            assert "error" not in row and "note" not in row, (name, row)
    assert all(row["fps"] > 0 for row in sections["tables"] + sections["variants"])
    assert {r["precision"] for r in sections["variants"]} == {"fp32", "bf16"}
    for row in sections["video"]:
        assert row["frames"] == 4 and row["analyze_fps"] > 0 and row["ratio"] > 0
    assert [(r["preset"], r["batch"]) for r in sections["training"]] == [("paper", 1), ("fast", 8)]
    assert all(r["iterations_per_s"] > 0 for r in sections["training"])
    table = (out / "gpu_results.md").read_text()
    assert "| mobilenetv2_035 | 32 | 256 |" not in table and "| mobilenetv2_035 | 32 | 2 |" in table


def test_spent_budget_skips_cells_and_says_so(tmp_path: Path) -> None:
    script = _load_script()
    [section] = script.sections(0.0, (1.0,), ["tables"])
    section.run({"backbone": "resnet50"}, lambda: {"fps": 1.0})
    assert section.rows == [{"backbone": "resnet50", "note": "skipped: section time budget spent"}]
