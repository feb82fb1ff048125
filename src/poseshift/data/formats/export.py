"""``poseshift data export``: a project's labels as SLEAP .slp, NWB (ndx-pose) or COCO json.

The format is named by the output's extension. ``.slp`` references the project's images
(one SLEAP video per group, so SLEAP shows the groups); ``.pkg.slp`` embeds them. ``.nwb``
holds ndx-pose ``PoseTraining`` with one external-file ``ImageSeries`` per image (sleap-io
0.9.5 cannot read back an ImageSeries listing several files). Importing either file again
gives the same project: coordinates, bodypart order, skeleton and groups (image folders).
Every file is written under a temporary name and renamed, so no half-written output remains.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from poseshift.data.project import PoseDataset
from poseshift.errors import PoseshiftError
from poseshift.fsutil import atomic_path

SUFFIXES = (".slp", ".nwb", ".json")


def export_format(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise PoseshiftError(
            f"{out}: the extension names the format: .slp (SLEAP; .pkg.slp embeds the images), "
            ".nwb (NWB ndx-pose) or .json (COCO keypoints)"
        )
    return suffix[1:]


def sleap_skeleton(bodyparts: list[str], edges: list[tuple[str, str]], name: str) -> Any:
    import sleap_io

    return sleap_io.Skeleton(nodes=list(bodyparts), edges=[list(e) for e in edges], name=name)


def to_sleap(dataset: PoseDataset, *, video_per_image: bool = False) -> Any:
    """The project's labels as a ``sleap_io.Labels`` (user instances, NaN = not labeled)."""
    import sleap_io

    skeleton = sleap_skeleton(dataset.bodyparts, dataset.skeleton, dataset.task)
    paths = [str(dataset.image_path(i).resolve()) for i in range(len(dataset))]
    places: list[tuple[Any, int]] = [(None, 0)] * len(dataset)
    for group in dataset.group_names:
        rows = [i for i, g in enumerate(dataset.groups) if g == group]
        if not video_per_image:
            video = sleap_io.Video.from_filename([paths[i] for i in rows])
        for position, i in enumerate(rows):
            if video_per_image:
                places[i] = (sleap_io.Video.from_filename([paths[i]]), 0)
            else:
                places[i] = (video, position)
    frames = [
        sleap_io.LabeledFrame(
            video=video,
            frame_idx=index,
            instances=[
                sleap_io.Instance.from_numpy(
                    dataset.keypoints[i].astype(np.float64), skeleton=skeleton
                )
            ],
        )
        for i, (video, index) in enumerate(places)
    ]
    labels = sleap_io.Labels(frames, skeletons=[skeleton])
    labels.provenance["scorer"] = dataset.scorer
    return labels


def export_labels(dataset: PoseDataset, out: str | Path) -> Path:
    """Write ``dataset``'s labels to ``out`` in the format its extension names."""
    out = Path(out)
    kind = export_format(out)
    if kind == "json":
        from poseshift.data.coco import export_coco

        return export_coco(dataset, out)
    import sleap_io

    with atomic_path(out) as tmp:
        if kind == "slp":
            embed = "user" if out.name.lower().endswith(".pkg.slp") else False
            sleap_io.save_slp(to_sleap(dataset), str(tmp), embed=embed, verbose=False)
        else:
            labels = to_sleap(dataset, video_per_image=True)
            sleap_io.save_nwb(labels, str(tmp), nwb_format="annotations")
    return out
