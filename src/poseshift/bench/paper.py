"""The paper's inference speeds, for side-by-side tables.

Source: Mathis et al., "Pretraining boosts out-of-domain robustness for pose estimation"
(arXiv 1909.11229v1, the ICLR 2020 submission; ../shared/paper/000_*.txt), appendix
Table 1 ("Batch size 1 (FPS)") and Table 2 ("Batch size 256 (FPS)"): mean FPS on an NVIDIA
Titan RTX for an ~11,000-frame horse video (22 bodyparts) resized to 128², 256² and 512²,
TensorFlow DeepLabCut. The paper's CPU speeds (a 6-core Xeon E5-2603 v4, 728-frame clips)
appear only in Figure 10, whose panels the text extraction garbled, so there are none here.

Some table cells are garbled in the extracted text (e.g. "6^", "13T", "78^"): those are
``None`` and print as "?"; the comment on each row gives the raw text.
"""

from __future__ import annotations

PAPER_SOURCE = (
    "Mathis et al. 2019 (arXiv 1909.11229v1), appendix Tables 1-2: Titan RTX GPU, TensorFlow"
)

# {batch size: {backbone: {frame size: FPS}}}
PAPER_FPS: dict[int, dict[str, dict[int, int | None]]] = {
    1: {
        "mobilenetv2_035": {128: 195, 256: 132, 512: None},  # -195- 132- 6^
        "mobilenetv2_050": {128: 185, 256: None, 512: None},  # -185- 13T 6Γ
        "mobilenetv2_075": {128: 185, 256: 129, 512: None},  # -185- 129^ 5^
        "mobilenetv2_100": {128: 190, 256: 132, 512: 53},  # -190- 132- 53-
        "resnet50": {128: 146, 256: 99, 512: None},  # -146- 99^ 4^
        "resnet101": {128: 93, 256: 69, 512: 34},  # 93 69 34
    },
    256: {
        "mobilenetv2_035": {128: 2557, 256: None, 512: 176},  # -2557- 78^ 176-
        "mobilenetv2_050": {128: 2338, 256: None, 512: None},  # -2338- 7TT 16T
        "mobilenetv2_075": {128: 2008, 256: 568, 512: 128},  # -2008- 568^ 128-
        "mobilenetv2_100": {128: 1834, 256: 523, 512: None},  # -1834- 523- ∏8-
        "resnet50": {128: 1208, 256: 339, 512: 84},  # -1208- 339^ 84-
        "resnet101": {128: 902, 256: 249, 512: 62},  # 902 249 62
    },
}


def paper_fps(backbone: str, size: int, batch_size: int) -> int | None:
    """The paper's GPU FPS for a cell, or None where it gives none (or it is illegible)."""
    return PAPER_FPS.get(batch_size, {}).get(backbone, {}).get(size)
