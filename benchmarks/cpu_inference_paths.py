"""Which CPU inference path is fastest for a pose network on full video frames?

Times one network forward (the part of ``poseshift analyze`` that costs) on real 640x480
frames of the openfield video, each path interleaved with the others so that other jobs on
the machine hit all alike:

- eager fp32 / eager bf16 autocast (what ``VideoPredictor`` runs; channels_last);
- ``torch.compile`` with Inductor's freezing (BatchNorm folded into the convolutions,
  weights prepacked for oneDNN), fp32 and bf16;
- ONNX Runtime fp32, and int8 (static QDQ quantization calibrated on video frames).

Also reports how far each path's keypoints move from eager fp32's (argmax + locref decoding,
``ScoremapCodec``), on the frames whose fp32 likelihood is >= 0.6, when ``--run`` gives
trained weights.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/cpu_inference_paths.py --reps 5 [--run RUN]

(torch loads before poseshift here, so the passive OpenMP waiting that ``import poseshift``
sets must come from the environment.)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from poseshift.models.codec import ScoremapCodec
from poseshift.models.posenet import build_posenet, load_posenet
from poseshift.predict.frames import FrameBatches, probe_video
from poseshift.run import RunDir

OPENFIELD = (
    Path(__file__).resolve().parents[2] / "shared/data/openfield/openfield-Pranav-2018-10-30"
)
VIDEO = OPENFIELD / "videos/m3v1mp4.mp4"


def real_frames(count: int, size: tuple[int, int]) -> list[torch.Tensor]:
    info = probe_video(VIDEO)
    return [b for b in FrameBatches(info.path, 1, size, count, pin_memory=False)]


def eager_path(model, dtype):
    def run(x):
        autocast = torch.autocast("cpu", dtype or torch.float32, enabled=dtype is not None)
        with torch.inference_mode(), autocast:
            out = model(x.contiguous(memory_format=torch.channels_last))
        return out["scoremaps"].float(), out["locref"].float()

    return run


def compiled_path(model, dtype):
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    compiled = torch.compile(model)
    return eager_path(compiled, dtype)


def onnx_paths(model, calibration: list[torch.Tensor], size: tuple[int, int], workdir: Path):
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from poseshift.predict.export import export_onnx

    fp32 = workdir / "model.onnx"
    export_onnx(model, fp32)
    pre = workdir / "model-pre.onnx"
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"images": x.numpy()} for x in calibration])

        def get_next(self):
            return next(self.items, None)

    int8 = workdir / "model-int8.onnx"
    quantize_static(
        str(pre),
        str(int8),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    paths = {}
    for name, path in (("onnxruntime fp32", fp32), ("onnxruntime int8", int8)):
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def run(x, session=session):
            scoremaps, locref = session.run(None, {"images": x.numpy()})
            return torch.from_numpy(scoremaps), torch.from_numpy(locref)

        paths[name] = run
    return paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--run", type=Path, help="trained run dir (its last snapshot)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--frames", type=int, default=20, help="frames for the agreement check")
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--skip", default="", help="comma-separated paths to leave out")
    args = parser.parse_args()
    size = tuple(map(int, args.size.split("x")))
    torch.manual_seed(0)
    if args.run:
        run = RunDir(args.run)
        model = load_posenet(run.snapshot_path(run.choose_snapshot()))
    else:
        model = build_posenet(args.backbone, 4, init="scratch")
    model = model.eval().to(memory_format=torch.channels_last)
    frames = real_frames(args.frames, size)
    inputs = [model.normalize(f.permute(0, 3, 1, 2)) for f in frames]
    paths = {"eager fp32": eager_path(model, None), "eager bf16": eager_path(model, torch.bfloat16)}
    t0 = time.perf_counter()
    paths["compile fp32"] = compiled_path(model, None)
    paths["compile bf16"] = compiled_path(model, torch.bfloat16)
    with tempfile.TemporaryDirectory() as tmp:
        paths |= onnx_paths(model, inputs[:: max(1, len(inputs) // 8)], size, Path(tmp))
        paths = {k: v for k, v in paths.items() if k not in args.skip.split(",")}
        setup = {}
        for name, run in paths.items():  # warm-up; compile happens here
            start = time.perf_counter()
            run(inputs[0])
            setup[name] = time.perf_counter() - start
        rounded = {k: round(v, 1) for k, v in setup.items()}
        print(f"first call (s): {rounded}; total {time.perf_counter() - t0:.0f} s", flush=True)
        times = {name: [] for name in paths}
        for rep in range(args.reps):
            for name, run in paths.items():
                start = time.perf_counter()
                run(inputs[rep % len(inputs)])
                times[name].append(time.perf_counter() - start)
            rep_times = ", ".join(f"{k} {v[-1]:.3f}" for k, v in times.items())
            print(f"rep {rep} load {os.getloadavg()[0]:.2f}: {rep_times}", flush=True)
        codec = ScoremapCodec()
        poses = {}
        for name, run in paths.items():
            out = [run(x) for x in inputs]
            poses[name] = torch.cat([codec.decode(maps, offsets) for maps, offsets in out]).numpy()
    ref = poses["eager fp32"]
    confident = ref[..., 2] >= 0.6
    print(
        f"\n{model.backbone_name} {size[0]}x{size[1]} batch 1, "
        f"torch threads {torch.get_num_threads()}, "
        f"confident fp32 keypoints: {confident.sum()} of {confident.size}"
    )
    print(
        "| path | median s / frame | frames/s | x eager fp32 | within 2 px (confident) "
        "| median / max shift px |"
    )
    print("|---|---|---|---|---|---|")
    base = float(np.median(times["eager fp32"]))
    for name in paths:
        med = float(np.median(times[name]))
        shift = np.linalg.norm(poses[name][..., :2] - ref[..., :2], axis=-1)
        sel = shift[confident] if confident.any() else shift.ravel()
        print(
            f"| {name} | {med:.3f} | {1 / med:.2f} | {base / med:.2f}x | "
            f"{100 * (sel <= 2).mean():.1f} % | {np.median(sel):.2f} / {sel.max():.1f} |"
        )


if __name__ == "__main__":
    main()
