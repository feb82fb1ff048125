"""The prepared GPU check runs every section in its tiny mode here, so GPU minutes are never
lost to a typo (benchmarks/gpu/)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from poseshift.bench.speed import synthetic_clip
from poseshift.datasets.synthetic.generate import generate

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "gpu" / "gpu_check.py"


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
    script = _load_script()
    script.main(["--tiny", "--device", "cpu", "--out", str(out), "--project", str(project),
                 "--video", str(video), "--budget-s", "600"])  # fmt: skip

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
