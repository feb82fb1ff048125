"""DeepLabCut 3's own functions on files poseshift wrote; runs in the DeepLabCut venv.

``python dlc_driver.py prepare PROJECT``: what a DeepLabCut user's project looks like after
DeepLabCut 3 saved it: project_path set, a skeleton, label files re-saved with DeepLabCut's
own 3-level row index (``conversioncode.guarantee_multiindex_rows``).

``python dlc_driver.py check JOB.json``: runs every call in the job and prints one
``RESULT {json}`` line: per call, ``ok`` and what it produced, or the error DeepLabCut
raised. Nothing in here renames, patches or converts poseshift's files.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import deeplabcut
import pandas as pd
from deeplabcut.pose_estimation_pytorch.apis.utils import ensure_multianimal_df_format
from deeplabcut.utils import auxiliaryfunctions as af
from deeplabcut.utils.conversioncode import guarantee_multiindex_rows
from deeplabcut.utils.visualization import plot_evaluation_results


def prepare(project: Path) -> None:
    config = project / "config.yaml"
    cfg = af.read_config(str(config))
    cfg["project_path"] = str(project)
    cfg["skeleton"] = [["snout", "tailbase"], ["leftear", "rightear"]]
    af.write_config(str(config), cfg)
    for h5 in (project / "labeled-data").glob("*/CollectedData_*.h5"):
        frame = pd.read_hdf(h5)
        guarantee_multiindex_rows(frame)
        frame.to_hdf(h5, key="df_with_missing", mode="w")
        frame.to_csv(h5.with_suffix(".csv"))
    print("RESULT " + json.dumps({"prepared": str(project)}))


def load(job: dict) -> dict:
    df, path, scorer, _ = af.load_analyzed_data(job["video_dir"], job["video_stem"], job["scorer"])
    return {"path": path, "scorer": scorer, "shape": list(df.shape), "dtype": str(df.dtypes[0])}


def filtered(job: dict) -> dict:
    deeplabcut.filterpredictions(job["config"], [job["video"]], **job["shuffle"])
    return {"files": sorted(p.name for p in Path(job["video_dir"]).glob("*_filtered.h5"))}


def trajectories(job: dict) -> dict:
    deeplabcut.plot_trajectories(job["config"], [job["video"]], **job["shuffle"])
    return {"files": sorted(p.name for p in Path(job["video_dir"]).rglob("plot-poses/*/*.png"))}


def skeleton(job: dict) -> dict:
    deeplabcut.analyzeskeleton(job["config"], [job["video"]], save_as_csv=True, **job["shuffle"])
    [h5] = Path(job["video_dir"]).glob("*_skeleton.h5")
    table = pd.read_hdf(h5)
    return {"file": h5.name, "bones": sorted(set(table.columns.get_level_values(0)))}


def labeled_video(job: dict) -> dict:
    made = deeplabcut.create_labeled_video(job["config"], [job["video"]], **job["shuffle"])
    again = deeplabcut.create_labeled_video(
        job["config"], [job["video"]], init_weights=job["scorer"].removeprefix("DLC_"),
        overwrite=True,
    )  # fmt: skip
    return {
        "made": [bool(m) for m in [*made, *again]],
        "files": sorted(p.name for p in Path(job["video_dir"]).glob("*_labeled.mp4")),
    }


def evaluation_plots(job: dict) -> dict:
    cfg = af.read_config(job["config"])
    project = Path(cfg["project_path"])
    files = sorted(project.glob(f"labeled-data/*/CollectedData_{cfg['scorer']}.h5"))
    labels = pd.concat(pd.read_hdf(p) for p in files)
    predictions = pd.read_hdf(job["predictions"])
    combined = ensure_multianimal_df_format(predictions).merge(
        ensure_multianimal_df_format(labels), left_index=True, right_index=True
    )
    model = predictions.columns.get_level_values("scorer")[0]
    out = Path(job["plots"])
    out.mkdir(parents=True, exist_ok=True)  # as evaluate_network makes it
    plot_evaluation_results(
        df_combined=combined.iloc[:4],
        project_root=project,
        scorer=cfg["scorer"],
        model_name=model,
        output_folder=out,
        in_train_set=False,
    )
    return {"rows": len(combined), "images": len(list(out.rglob("*.png")))}


def imported(job: dict) -> dict:
    config = job["coco_config"]
    deeplabcut.check_labels(config, visualizeindividuals=False)
    deeplabcut.create_training_dataset(
        config, Shuffles=[1], net_type="resnet_50", engine=deeplabcut.Engine.PYTORCH,
        userfeedback=False,
    )  # fmt: skip
    project = Path(config).parent
    return {
        "labeled": len(list(project.glob("labeled-data/*_labeled/*.png"))),
        "pytorch_config": [
            str(p.relative_to(project)) for p in project.rglob("pytorch_config.yaml")
        ],
        "training_sets": len(list(project.glob("training-datasets/iteration-*/*/*.pickle"))),
    }


def analyzed_by_deeplabcut(job: dict) -> dict:
    """DeepLabCut's analyze_videos on the imported project's shuffle 1, with an untrained
    snapshot (built by DeepLabCut, no ImageNet download): a real DeepLabCut 3 output file."""
    import torch
    import yaml
    from deeplabcut.pose_estimation_pytorch.models.model import PoseModel

    project = Path(job["coco_config"]).parent
    [model_config] = project.rglob("pytorch_config.yaml")
    torch.manual_seed(0)
    model = PoseModel.build(yaml.safe_load(model_config.read_text())["model"])
    torch.save({"model": model.state_dict()}, model_config.parent / "snapshot-001.pt")
    out = Path(job["dlc_out"])
    out.mkdir(parents=True, exist_ok=True)
    deeplabcut.analyze_videos(
        job["coco_config"], [job["video"]], shuffle=1, device="cpu", destfolder=str(out),
        batch_size=4, auto_track=False,
    )  # fmt: skip
    [h5] = out.glob("*.h5")
    return {"h5": str(h5), "dtype": str(pd.read_hdf(h5).dtypes.iloc[0])}


def filtered_next_to_a_pytorch_shuffle(job: dict) -> dict:
    """Last: once the project has its own PyTorch shuffle N (metadata.yaml), DeepLabCut takes
    that engine; engine=Engine.TF points it back to poseshift's model folder."""
    deeplabcut.create_training_dataset(
        job["config"], Shuffles=[1], net_type="resnet_50", engine=deeplabcut.Engine.PYTORCH,
        userfeedback=False,
    )  # fmt: skip
    for old in Path(job["video_dir"]).glob("*_filtered.*"):
        old.unlink()
    deeplabcut.filterpredictions(
        job["config"], [job["video"]], engine=deeplabcut.Engine.TF, **job["shuffle"]
    )
    return {"files": sorted(p.name for p in Path(job["video_dir"]).glob("*_filtered.h5"))}


CALLS = {
    "load_analyzed_data": load,
    "filterpredictions": filtered,
    "plot_trajectories": trajectories,
    "analyzeskeleton": skeleton,
    "create_labeled_video": labeled_video,
    "plot_evaluation_results": evaluation_plots,
    "check_labels+create_training_dataset": imported,
    "analyze_videos": analyzed_by_deeplabcut,
    "filterpredictions(engine=TF)": filtered_next_to_a_pytorch_shuffle,
}


def check(job: dict) -> None:
    results = {}
    for name, call in CALLS.items():
        try:
            results[name] = {"ok": True, **call(job)}
        except Exception as exc:  # reported to the test, which fails naming it
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                             "trace": traceback.format_exc()[-3000:]}  # fmt: skip
    print("RESULT " + json.dumps(results))


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(Path(sys.argv[2]).resolve())
    else:
        check(json.loads(Path(sys.argv[2]).read_text()))
