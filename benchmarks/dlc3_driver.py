"""DeepLabCut 3 side of the poseshift comparison benchmarks (runs inside the DLC3 venv).

Called by ``train_vs_dlc3.py`` and ``analyze_vs_dlc3.py`` with the DeepLabCut venv's python;
prints one JSON line (prefixed ``RESULT``) per command. Subcommands:

- ``setup PROJECT``: point config.yaml at PROJECT, create shuffle 1 (TrainingFraction 0.95,
  net_type resnet_50, PyTorch engine) and print its train/test image names.
- ``train PROJECT``: ``deeplabcut.train_network`` with the given crop / batch / epochs /
  backbone; optionally stops after ``--max-steps`` optimizer steps (speed runs). Every
  optimizer step is time-stamped by a global optimizer hook, so images/s comes from
  DeepLabCut's own, unmodified training loop.
- ``evaluate PROJECT``: ``deeplabcut.evaluate_network``; prints its results row.
- ``analyze PROJECT --videos V.. --batch-sizes B..``: ``deeplabcut.analyze_videos`` per
  video and batch size; frames/s from
  the ``run_duration`` DeepLabCut stores in its ``_meta.pickle``.

ImageNet weights: DeepLabCut 3.0.2's ``apis.training.train`` builds the model with
``PoseModel.build(..., pretrained_backbone=True)`` whenever no ``weight_init`` snapshot is
given, and ``PoseModel.build`` overwrites ``model.backbone.pretrained`` in
pytorch_config.yaml with that argument, so setting ``pretrained: false`` in the config is
not enough. The driver therefore wraps ``PoseModel.build`` to pass
``pretrained_backbone=False`` (and HF_HUB_OFFLINE=1 makes any download attempt fail loudly).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import deeplabcut
import torch
from deeplabcut.utils import auxiliaryfunctions as af
from torch.optim.optimizer import register_optimizer_step_post_hook

SHUFFLE = 1


def result(payload: dict) -> None:
    print("RESULT " + json.dumps(payload), flush=True)


def model_folder(project: Path) -> Path:
    return next((project / "dlc-models-pytorch").glob(f"iteration-0/*shuffle{SHUFFLE}"))


def setup(project: Path) -> None:
    config = project / "config.yaml"
    cfg = af.read_config(str(config))
    cfg["project_path"] = str(project)
    video = project / "videos" / "m3v1mp4.mp4"
    cfg["video_sets"] = {str(video): {"crop": "0, 640, 0, 480"}}
    af.write_config(str(config), cfg)
    deeplabcut.create_training_dataset(
        str(config),
        Shuffles=[SHUFFLE],
        net_type="resnet_50",
        engine=deeplabcut.Engine.PYTORCH,
        userfeedback=False,
    )
    folder = next((project / "training-datasets").glob("iteration-0/UnaugmentedDataSet_*"))
    doc = next(folder.glob(f"Documentation_data-*shuffle{SHUFFLE}.pickle"))
    with doc.open("rb") as f:
        _data, train_idx, test_idx, fraction = pickle.load(f)
    import pandas as pd

    table = pd.read_hdf(next(folder.glob("CollectedData_*.h5")))
    names = ["/".join(map(str, table.index[i])) for i in range(len(table))]
    result(
        {
            "fraction": float(fraction),
            "train": sorted(names[int(i)] for i in train_idx),
            "test": sorted(names[int(i)] for i in test_idx),
        }
    )


class _Stop(Exception):
    pass


def _no_imagenet_download() -> None:
    from deeplabcut.pose_estimation_pytorch.apis import training
    from deeplabcut.pose_estimation_pytorch.models.model import PoseModel

    original = PoseModel.build

    def build(cfg, weight_init=None, pretrained_backbone=False):
        return original(cfg, weight_init=weight_init, pretrained_backbone=False)

    training.PoseModel.build = staticmethod(build)


def train(args) -> None:
    _no_imagenet_download()
    stamps: list[tuple[float, float]] = []  # (wall, process CPU) after each step

    def hook(optimizer, *_):
        stamps.append((time.perf_counter(), time.process_time()))
        if args.max_steps and len(stamps) >= args.max_steps:
            raise _Stop

    register_optimizer_step_post_hook(hook)
    updates = {
        "model.backbone.model_name": args.model_name,
        "data.train.crop_sampling.width": args.crop[0],
        "data.train.crop_sampling.height": args.crop[1],
        "train_settings.dataloader_workers": args.workers,
        "runner.eval_interval": max(args.epochs, 1),
        "runner.snapshots.max_snapshots": 1,
    }
    started = time.perf_counter()
    stopped = False
    try:
        deeplabcut.train_network(
            str(args.project / "config.yaml"),
            shuffle=SHUFFLE,
            device="cpu",
            batch_size=args.batch_size,
            epochs=args.epochs,
            save_epochs=args.epochs,
            display_iters=1000,
            pytorch_cfg_updates=updates,
        )
    except _Stop:
        stopped = True
    total = time.perf_counter() - started
    result(
        {
            "stamps": stamps,
            "stopped_early": stopped,
            "wall_s": total,
            "torch_threads": torch.get_num_threads(),
            "model_name": args.model_name,
        }
    )


def evaluate(args) -> None:
    deeplabcut.evaluate_network(
        str(args.project / "config.yaml"), Shuffles=[SHUFFLE], device="cpu", plotting=False
    )
    import pandas as pd

    csvs = sorted((args.project / "evaluation-results-pytorch").rglob("*.csv"))
    rows = [pd.read_csv(p).to_dict("records") for p in csvs if "combined" in p.name.lower()]
    if not rows:
        rows = [pd.read_csv(p).to_dict("records") for p in csvs]
    result({"files": [str(p) for p in csvs], "rows": rows})


def analyze(args) -> None:
    """One process, one call of analyze_videos per (video, batch size), in the given order."""
    runs = []
    for video in args.videos:
        for batch_size in args.batch_sizes:
            dest = Path(args.dest) / f"{video.stem}-b{batch_size}"
            dest.mkdir(parents=True, exist_ok=True)
            load_before = os.getloadavg()[0]
            started = time.perf_counter()
            deeplabcut.analyze_videos(
                str(args.project / "config.yaml"),
                [str(video)],
                shuffle=SHUFFLE,
                device="cpu",
                batch_size=batch_size,
                destfolder=str(dest),
                overwrite=True,
                auto_track=False,
            )
            wall = time.perf_counter() - started
            meta_path = next(dest.glob(f"{video.stem}*_meta.pickle"))
            with meta_path.open("rb") as f:
                meta = pickle.load(f)["data"]
            runs.append(
                {
                    "video": str(video),
                    "batch_size": batch_size,
                    "run_duration": meta["run_duration"],
                    "nframes": meta["nframes"],
                    "fps": meta["nframes"] / meta["run_duration"],
                    "wall_s": wall,
                    "h5": str(next(dest.glob(f"{video.stem}*.h5"))),
                    "load_before": load_before,
                    "load_after": os.getloadavg()[0],
                }
            )
            print(f"analyze b={batch_size} {video.name}: {runs[-1]['fps']:.3f} fps", flush=True)
    result({"runs": runs})


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup")
    p.add_argument("project", type=Path)
    p = sub.add_parser("train")
    p.add_argument("project", type=Path)
    p.add_argument("--crop", type=int, nargs=2, default=(448, 448))
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--model-name", default="resnet50_gn")
    p = sub.add_parser("evaluate")
    p.add_argument("project", type=Path)
    p = sub.add_parser("analyze")
    p.add_argument("project", type=Path)
    p.add_argument("--videos", type=Path, nargs="+", required=True)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1])
    p.add_argument("--dest", required=True)
    args = parser.parse_args()
    if args.command == "setup":
        setup(args.project.resolve())
    else:
        args.project = args.project.resolve()
        {"train": train, "evaluate": evaluate, "analyze": analyze}[args.command](args)


if __name__ == "__main__":
    main()
