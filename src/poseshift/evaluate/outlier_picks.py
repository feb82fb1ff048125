"""How good are the outlier picks? Measured on labeled out-of-domain frames.

``pick_errors`` treats each out-of-domain group (one individual, its frames in file order)
as the video ``poseshift outliers`` would see: poses at the usual input scale and at
``RESCALE`` times it, the same ``reliability_table`` and ``pick_frames`` as the command,
and then the true normalized error of the frames picked, against the mean over all of the
group's frames (what random picks get on average) and against the ``n`` frames of lowest
mean likelihood (DeepLabCut's likelihood-only idea). The demo prints it in one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from poseshift.data.scale import image_scales
from poseshift.evaluate.evaluate import default_scale_pair, load_run_data
from poseshift.evaluate.metrics import pixel_errors
from poseshift.predict.images import predict_images
from poseshift.predict.outliers import pick_frames
from poseshift.predict.predictor import Predictor, run_predictor
from poseshift.predict.reliability import RESCALE, reliability_table
from poseshift.run import RunDir


def pick_errors(run_dir: str | Path, *, n: int = 5, device: str = "cpu") -> dict[str, float]:
    """Mean normalized error of ``n`` picked / all / lowest-likelihood frames per OOD group."""
    run = RunDir(run_dir)
    _, membership, dataset = load_run_data(run)
    predictor = run_predictor(run, run.choose_snapshot("last"), device=device, compile=False)
    rescaled = Predictor(
        predictor.model, predictor.codec, input_scale=predictor.input_scale * RESCALE,
        device=device, compile=False,
    )  # fmt: skip
    scales = image_scales(dataset, default_scale_pair(dataset))
    rows = dataset.indices_of(membership["ood"])
    groups = np.asarray(dataset.groups, dtype=object)[rows]
    picked, everything, lowest = [], [], []
    for group in dict.fromkeys(groups.tolist()):
        mine = sorted(rows[groups == group].tolist(), key=lambda i: dataset.images[i])
        poses = predict_images(predictor, dataset, mine)
        table = reliability_table(poses, predict_images(rescaled, dataset, mine))
        errors = pixel_errors(poses, dataset.keypoints[mine]) / scales[mine, None]
        error = np.nanmean(errors, axis=1)
        count = min(n, len(mine))
        picked.append(np.nanmean(error[pick_frames(table["unreliability"].to_numpy(), count)]))
        lowest.append(np.nanmean(error[np.argsort(table["likelihood_mean"].to_numpy())[:count]]))
        everything.append(np.nanmean(error))
    return {
        "picked": float(np.mean(picked)),
        "random": float(np.mean(everything)),
        "lowest_likelihood": float(np.mean(lowest)),
    }
