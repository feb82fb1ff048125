"""Check that DeepLabCut's own readers open ``poseshift analyze`` output (run it in DLC's venv).

Uses DeepLabCut's file-level tools on a poseshift .h5 / _meta.pickle pair: the loaders
(``load_analyzed_data``, ``load_video_metadata``), the plots (``PlottingResults``), the
interpolation filter (``columnwise_spline_interp``) and the labeled-video maker
(``create_video``). DeepLabCut's project-level wrappers (``create_labeled_video(config,
...)``, ``filterpredictions(config, ...)``) derive the scorer from a model folder: poseshift
writes one into the run (``modelprefix``), and ``tests/interop/`` runs them on its outputs.

    /tmp/dlc3-venv/bin/python benchmarks/video_dlc_readers.py VIDEO H5 CONFIG OUT_DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
from deeplabcut.post_processing.filtering import columnwise_spline_interp
from deeplabcut.utils import auxiliaryfunctions
from deeplabcut.utils.make_labeled_video import create_video
from deeplabcut.utils.plotting import PlottingResults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("h5", type=Path)
    parser.add_argument("config", type=Path, help="the project's config.yaml (plot styles)")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    scorer = args.h5.stem.removeprefix(args.video.stem)
    frame, path, _, _ = auxiliaryfunctions.load_analyzed_data(
        str(args.h5.parent), args.video.stem, scorer
    )
    print(f"load_analyzed_data: {Path(path).name} {frame.shape} {list(frame.columns.names)}")
    meta = auxiliaryfunctions.load_video_metadata(str(args.h5.parent), args.video.stem, scorer)
    print(f"load_video_metadata: nframes {meta['data']['nframes']}, fps {meta['data']['fps']}")
    config = auxiliaryfunctions.read_config(str(args.config))
    args.out.mkdir(parents=True, exist_ok=True)
    PlottingResults(str(args.out), frame, config, config["bodyparts"], [], suffix=".png")
    print(f"PlottingResults: {sorted(p.name for p in args.out.glob('*.png'))}")
    print(f"columnwise_spline_interp: {columnwise_spline_interp(frame.to_numpy(), 5).shape}")
    labeled = args.out / f"{args.h5.stem}_dlc_labeled.mp4"
    create_video(str(args.video), str(args.h5), pcutoff=0.6, output_path=str(labeled))
    frames = int(cv2.VideoCapture(str(labeled)).get(cv2.CAP_PROP_FRAME_COUNT))
    print(f"create_video: {labeled.name}, {frames} frames")


if __name__ == "__main__":
    main()
