"""Does the synthetic benchmark show a Horse-10-like out-of-domain gap?

For each ``--domain-shift``: generate a benchmark (default 30 individuals x 40 frames at
160x96), train MobileNetV2-0.35 from scratch for a fixed number of iterations on half of the
frames of 10 individuals (Adam, batch 8, no augmentation), and report the mean pixel error on
the training frames, on the other half of those individuals' frames (within domain) and on
the other 20 individuals (out of domain). A measurement, not the product's trainer.

    .venv/bin/python benchmarks/synth_domain_gap.py --shifts 1 0
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from poseshift.data.project import PoseDataset, load_project
from poseshift.datasets.synthetic.generate import generate, parse_size
from poseshift.models.codec import ScoremapCodec
from poseshift.models.posenet import build_posenet
from poseshift.train.loss import pose_loss


def split(dataset: PoseDataset, n_train: int, seed: int) -> dict[str, np.ndarray]:
    """Horse-10 style: n_train individuals, half of their frames train, half test-within."""
    rng = np.random.default_rng(seed)
    names = dataset.group_names
    chosen = set(rng.choice(names, n_train, replace=False).tolist())
    groups = np.array(dataset.groups)
    train_rows, within_rows = [], []
    for name in sorted(chosen):
        rows = rng.permutation(np.flatnonzero(groups == name))
        train_rows += rows[: len(rows) // 2].tolist()
        within_rows += rows[len(rows) // 2 :].tolist()
    ood = np.flatnonzero(~np.isin(groups, sorted(chosen)))
    return {"train": np.array(train_rows), "within": np.array(within_rows), "ood": ood}


def mean_error(model, images: torch.Tensor, keypoints: torch.Tensor, codec: ScoremapCodec) -> float:
    """Mean Euclidean pixel error over labeled keypoints (argmax + locref decoding)."""
    model.eval()
    errors = []
    with torch.no_grad():
        for start in range(0, len(images), 64):
            out = model(model.normalize(images[start : start + 64]))
            xy = codec.decode(out["scoremaps"], out["locref"])[..., :2]
            errors.append((xy - keypoints[start : start + 64]).norm(dim=-1).flatten())
    errors = torch.cat(errors)
    return float(errors[errors.isfinite()].mean())


def run(args: argparse.Namespace, shift: float, workdir: Path) -> dict:
    start = time.perf_counter()
    project = workdir / f"shift{shift}"
    generate(
        project,
        individuals=args.individuals,
        frames_per_individual=args.frames,
        size=parse_size(args.size),
        seed=args.seed,
        domain_shift=shift,
    )
    dataset = load_project(project)
    images = torch.from_numpy(np.stack([dataset.load_image(i) for i in range(len(dataset))]))
    images = images.permute(0, 3, 1, 2).contiguous()
    keypoints = torch.from_numpy(dataset.keypoints)
    rows = split(dataset, args.train_individuals, args.seed)
    generated = time.perf_counter() - start

    torch.manual_seed(args.seed)
    model = build_posenet("mobilenetv2_035", len(dataset.bodyparts), init="scratch")
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    codec = ScoremapCodec()
    rng = np.random.default_rng(args.seed)
    train = rows["train"]
    start = time.perf_counter()
    for step in range(args.iterations):
        if step == int(0.8 * args.iterations):
            for group in optimizer.param_groups:
                group["lr"] = args.lr / 10
        model.train()
        batch = rng.choice(train, min(args.batch_size, len(train)), replace=False)
        out = model(model.normalize(images[batch]))
        targets = codec.encode(keypoints[batch], tuple(out["scoremaps"].shape[-2:]))
        loss = pose_loss(out, targets)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            print(f"  shift {shift}: step {step} loss {loss.item():.4f}", flush=True)
    trained = time.perf_counter() - start
    result = {
        "domain_shift": shift,
        "generate_s": round(generated, 1),
        "train_s": round(trained, 1),
    }
    for name, index in rows.items():
        result[f"{name}_px"] = round(mean_error(model, images[index], keypoints[index], codec), 2)
        result[f"{name}_frames"] = len(index)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shifts", type=float, nargs="+", default=[1.0, 0.0])
    parser.add_argument("--individuals", type=int, default=30)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", default="160x96")
    parser.add_argument("--train-individuals", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for shift in args.shifts:
            results.append(run(args, shift, Path(workdir)))
            print(json.dumps(results[-1]), flush=True)
    print("\n| domain shift | train px | within px | OOD px | OOD / within | train s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        ratio = r["ood_px"] / r["within_px"]
        print(
            f"| {r['domain_shift']} | {r['train_px']} | {r['within_px']} | {r['ood_px']} "
            f"| {ratio:.2f} | {r['train_s']} |"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"json": str(args.json)}, "results": results}, indent=2
            )
        )


if __name__ == "__main__":
    main()
