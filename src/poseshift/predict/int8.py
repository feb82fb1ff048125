"""int8 video analysis on the CPU: the backbone statically quantized, the head in fp32.

PyTorch's own x86 path (torchao's PT2E flow): ``torch.export`` captures the backbone at the
video's batch shape, ``X86InductorQuantizer`` puts per-channel int8 weights and per-tensor
uint8 activations on its convolutions, the activation ranges are calibrated on the video's
own first frames, and Inductor (with freezing) lowers the result to oneDNN's VNNI int8
convolutions. Activation ranges are the calibration frames' minimum and maximum, not the
narrower ones of torchao's default histogram observer, and three things stay in fp32: the
stem convolution, the residual additions (the running sum is not requantized after every
block) and the deconvolution head (scoremaps and locref) with the pose decoding. On a
trained ResNet-50 each step raised the share of confident keypoints within 2 px of fp32
(with layer4 in bf16): 97.1 % (defaults), 98.6 % (min-max), 98.9 % (stem), 99.3 % (sums);
with layer4 in int8 too it stays at 99.3 % (benchmarks/analyze_vs_dlc3.md). The frames
after the calibration frames then measure how far the int8 poses lie from the fp32
network's (``Agreement``), the gate: at least 99 % of the fp32 model's confident
keypoints within 2 px.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from poseshift.errors import PoseshiftError
from poseshift.predict.frames import FrameBatches

if TYPE_CHECKING:
    from poseshift.models.head import DeconvHead
    from poseshift.models.posenet import PoseNet
    from poseshift.predict.predictor import Predictor

CALIBRATION_FRAMES = 32  # the video's first frames set the activation ranges
CHECK_FRAMES = 16  # the next ones measure the agreement with fp32
CONFIDENT = 0.6  # fp32 likelihood from which a keypoint counts (DeepLabCut's pcutoff default)
TOLERANCE_PX = 2.0
GATE = 0.99  # share of confident keypoints that must stay within TOLERANCE_PX


def check_int8(device: torch.device, compile: bool) -> None:
    """Refuse int8 where it cannot run, before any work starts."""
    if device.type != "cpu":
        raise PoseshiftError(
            f"--precision int8 runs on the CPU only (oneDNN int8 convolutions), not on "
            f"{device}; use --precision bf16 or fp16 there, or --device cpu"
        )
    if not compile:
        raise PoseshiftError(
            "--precision int8 runs through torch.compile (Inductor lowers the quantized "
            "convolutions); drop --no-compile"
        )
    try:
        import torchao.quantization.pt2e  # noqa: F401
    except ImportError:
        raise PoseshiftError(
            "--precision int8 needs torchao (pip install torchao); or use --precision bf16"
        ) from None


class _FeatureMaps(nn.Module):
    """The backbone's feature maps (the last; before it the skip at stride 32): the part
    that gets quantized."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.backbone(images))


class QuantizedPoseNet(nn.Module):
    """An int8 backbone (an exported, converted graph) with the fp32 head of a PoseNet."""

    def __init__(self, backbone: nn.Module, head: DeconvHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        scoremaps, locref = self.head.forward_maps([m.float() for m in self.backbone(images)])
        return {"scoremaps": scoremaps, "locref": locref}


def quantize_posenet(model: PoseNet, calibration: list[torch.Tensor]) -> QuantizedPoseNet:
    """Quantize ``model``'s backbone on normalized batches (all of one shape); not compiled.

    ``model`` is a ``PoseNet`` in eval mode on the CPU; it is left unchanged.
    """
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    features = _FeatureMaps(model.backbone).eval()
    quantizer = _quantizer()
    quantizer.set_module_name_qconfig(f"backbone.{stem_convolution(model.backbone)}", None)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.export's and torchao's deprecation chatter
        graph = torch.export.export(features, (calibration[0],)).module()
        prepared = prepare_pt2e(graph, quantizer)
        for batch in calibration:
            prepared(batch)
        converted = convert_pt2e(prepared)
    return QuantizedPoseNet(converted, model.head)


def stem_convolution(backbone: nn.Module) -> str:
    """The name of the backbone's first convolution (kept in fp32)."""
    return next(name for name, m in backbone.named_modules() if isinstance(m, nn.Conv2d))


def min_max_config() -> Any:
    """torchao's x86 quantization config with min-max activation ranges (not histogram)."""
    import dataclasses

    from torchao.quantization.pt2e import MinMaxObserver
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

    default = x86.get_default_x86_inductor_quantization_config()
    activations = dataclasses.replace(
        default.input_activation, observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2**-12)
    )
    return dataclasses.replace(default, input_activation=activations, output_activation=activations)


def _quantizer() -> Any:
    """torchao's x86 quantizer with min-max activation ranges and fp32 residual additions.

    Accuracy on a trained ResNet-50 (benchmarks/analyze_vs_dlc3.md): 97.8 % of the
    confident keypoints within 2 px with torchao's defaults and the last stage kept out of
    int8; 99.3 % (99.5 % on a held-out clip) with the whole backbone quantized this way.
    """
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

    class ResidualsInFloat(x86.X86InductorQuantizer):
        # The conv + add (+ relu) patterns are what quantizes a residual sum: left out, the
        # convolutions are annotated alone and the sums stay fp32.
        def _annotate_conv2d_binary_unary(self, *args: Any, **kwargs: Any) -> None:
            return None

        def _annotate_conv2d_binary(self, *args: Any, **kwargs: Any) -> None:
            return None

    return ResidualsInFloat().set_global(min_max_config())


class CompiledQuantized:
    """A ``QuantizedPoseNet`` under torch.compile, called with Inductor's freezing switched on.

    Freezing folds ``onednn.qconv_prepack`` into prepacked int8 weights; passed as a
    ``torch.compile`` option instead, this torch (2.14) leaves the op unlowered and fails.
    """

    def __init__(self, network: QuantizedPoseNet) -> None:
        self.compiled = torch.compile(network, dynamic=False)

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        import torch._inductor.config as inductor

        with inductor.patch(freezing=True):
            return self.compiled(images)


@dataclass(frozen=True)
class Agreement:
    """int8 against fp32 poses on the same frames: the accuracy gate's numbers."""

    frames: int
    confident: int  # fp32 keypoints with likelihood >= CONFIDENT
    within: int  # of those, int8 predictions within TOLERANCE_PX
    median_px: float
    max_px: float

    @property
    def share(self) -> float:
        return self.within / self.confident if self.confident else float("nan")

    @property
    def passes(self) -> bool:
        return self.confident > 0 and self.share >= GATE

    def describe(self) -> str:
        if not self.confident:
            return (
                f"int8 check: the fp32 network finds no keypoint with likelihood >= "
                f"{CONFIDENT} on {self.frames} frames; agreement not measurable"
            )
        return (
            f"int8 check on {self.frames} frames: {self.within} of {self.confident} confident "
            f"fp32 keypoints ({100 * self.share:.1f} %) within {TOLERANCE_PX:g} px "
            f"(median shift {self.median_px:.2f} px, max {self.max_px:.1f} px)"
        )

    def to_dict(self) -> dict[str, float | int]:
        return {
            "frames": self.frames,
            "confident": self.confident,
            "within": self.within,
            "share": self.share,
            "median_px": self.median_px,
            "max_px": self.max_px,
            "tolerance_px": TOLERANCE_PX,
            "confident_from": CONFIDENT,
        }


def agreement(reference: np.ndarray, test: np.ndarray) -> Agreement:
    """How many of ``reference``'s confident keypoints ``test`` finds within tolerance.

    Both are (N, K, 3) poses (x, y, likelihood) of the same frames.
    """
    confident = reference[..., 2] >= CONFIDENT
    shift = np.linalg.norm(reference[..., :2] - test[..., :2], axis=-1)[confident]
    return Agreement(
        frames=len(reference),
        confident=int(confident.sum()),
        within=int((shift <= TOLERANCE_PX).sum()),
        median_px=float(np.median(shift)) if shift.size else float("nan"),
        max_px=float(shift.max()) if shift.size else float("nan"),
    )


def calibrate_on_video(
    predictor: Predictor, video: str | Path, *, batch_size: int, size: tuple[int, int]
) -> Agreement:
    """Quantize ``predictor``'s network on the video's first frames; measure on the next.

    A video shorter than calibration and check together is checked on its calibration
    frames (an optimistic measure, said so in the frame count of the result).
    """
    batches = list(FrameBatches(video, batch_size, size, CALIBRATION_FRAMES + CHECK_FRAMES))
    n_calibrate = max(1, -(-CALIBRATION_FRAMES // batch_size))
    calibrate, check = batches[:n_calibrate], batches[n_calibrate:] or batches[:n_calibrate]
    model = predictor.model

    def normalized(batch: torch.Tensor) -> torch.Tensor:
        return predictor.network_input(_pad(batch, batch_size))

    with torch.no_grad():
        predictor.use_quantized(quantize_posenet(model, [normalized(b) for b in calibrate]))
        reference, quantized = [], []
        for batch in check:
            outputs = model(normalized(batch))  # eager fp32: the reference
            poses = predictor.codec.decode(outputs["scoremaps"], outputs["locref"])
            reference.append(poses[: len(batch)])
            quantized.append(predictor.predict_batch(_pad(batch, batch_size), torch.ones(2)))
            quantized[-1] = quantized[-1][: len(batch)]
    return agreement(torch.cat(reference).numpy(), torch.cat(quantized).float().numpy())


def _pad(batch: torch.Tensor, batch_size: int) -> torch.Tensor:
    """A short last batch repeated up to the exported batch shape."""
    missing = batch_size - len(batch)
    return torch.cat([batch, batch[-1:].expand(missing, -1, -1, -1)]) if missing else batch
