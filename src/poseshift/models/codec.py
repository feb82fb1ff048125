"""Keypoints <-> scoremap + location-refinement maps, as in DeepLabCut / DeeperCut.

One object does both directions so that training targets and predictions can never
disagree about where a map cell lies in the image. Map cell (i, j) is centred on image
pixel (j * stride + stride / 2, i * stride + stride / 2), DeepLabCut's convention.

Targets (``encode``) follow DeepLabCut's ``compute_target_part_scoremap_numpy``: a cell is
positive when its centre lies within ``pos_dist_thresh`` pixels of the keypoint
(``dist <= pos_dist_thresh``), and inside that disc the locref target is the offset from the
cell centre to the keypoint divided by ``locref_stdev``. Predictions (``decode``) follow
``argmax_pose_predict``: the argmax cell plus its locref offset times ``locref_stdev``.
Everything is batched torch on the input's device; nothing loops over images or keypoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ScoremapCodec:
    """DeepLabCut's scoremap + locref codec (pose_cfg defaults)."""

    stride: int = 8
    pos_dist_thresh: float = 17.0
    locref_stdev: float = 7.2801

    def cell_centers(
        self, map_size: tuple[int, int], device: torch.device | str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Image-pixel x of every map column (w,) and y of every map row (h,), float32.

        The single place that maps cells to pixels, shared by ``encode`` and ``decode``.
        """
        h, w = map_size
        half = self.stride / 2
        xs = torch.arange(w, device=device, dtype=torch.float32) * self.stride + half
        ys = torch.arange(h, device=device, dtype=torch.float32) * self.stride + half
        return xs, ys

    def encode(
        self,
        keypoints: torch.Tensor,
        map_size: tuple[int, int],
        radius_scale: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Training targets for keypoints (B, K, 2) in input pixels, NaN = unlabeled.

        Returns float32 ``scoremap`` and ``scoremap_weight`` (B, K, h, w), and ``locref``
        and ``locref_weight`` (B, 2K, h, w) with channels 2k, 2k+1 = dx, dy of keypoint k.
        Unlabeled keypoints get zero weights everywhere, so they contribute no loss.
        ``radius_scale`` (B,) multiplies ``pos_dist_thresh`` per sample (DeepLabCut-TF's
        ``pos_dist_thresh * scale``: a radius in original-image pixels).
        """
        kp = keypoints.float()
        b, k, _ = kp.shape
        xs, ys = self.cell_centers(map_size, kp.device)
        dx = (kp[..., 0, None, None] - xs).expand(b, k, len(ys), len(xs))
        dy = (kp[..., 1, None, None] - ys[:, None]).expand(b, k, len(ys), len(xs))
        radius = torch.full((b,), self.pos_dist_thresh, device=kp.device)
        if radius_scale is not None:
            radius = radius * radius_scale.to(kp.device, torch.float32)
        # NaN distances compare False, so unlabeled keypoints have no positive cells.
        positive = dx.square() + dy.square() <= radius.square()[:, None, None, None]
        offsets = torch.stack((dx, dy), dim=2) / self.locref_stdev  # (B, K, 2, h, w)
        in_disc = positive[:, :, None].expand_as(offsets)
        labeled = kp.isfinite().all(dim=-1)[..., None, None]
        return {
            "scoremap": positive.float(),
            "scoremap_weight": labeled.expand_as(positive).float(),
            "locref": torch.where(in_disc, offsets, 0.0).flatten(1, 2),
            "locref_weight": in_disc.float().flatten(1, 2),
        }

    def decode(self, scoremaps: torch.Tensor, locref: torch.Tensor) -> torch.Tensor:
        """Keypoints (B, K, 3) = x, y, confidence from network output, in network-input
        pixels (``poseshift.predict.frames.to_original_pixels`` undoes a resize).

        ``scoremaps`` are logits (B, K, h, w) and ``locref`` is (B, 2K, h, w) in units of
        ``locref_stdev``. Confidence is the sigmoid of the peak logit. Computed in float32
        even under autocast.
        """
        b, k, h, w = scoremaps.shape
        logits = scoremaps.float().flatten(2)  # (B, K, h*w)
        index = logits.argmax(dim=-1, keepdim=True)  # (B, K, 1)
        peak = logits.gather(-1, index).squeeze(-1)
        cell_offset = locref.float().reshape(b, k, 2, h * w)
        offset = cell_offset.gather(-1, index[:, :, None].expand(b, k, 2, 1)).squeeze(-1)
        xs, ys = self.cell_centers((h, w), scoremaps.device)
        index = index.squeeze(-1)
        centre = torch.stack((xs[index % w], ys[index // w]), dim=-1)
        xy = centre + offset * self.locref_stdev
        return torch.cat((xy, torch.sigmoid(peak)[..., None]), dim=-1)
