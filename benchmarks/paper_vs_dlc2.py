"""poseshift's `paper` preset next to DeepLabCut 2.3 (TensorFlow engine), side by side.

Question (issue "The paper preset trains exactly as the paper's system did", item 5): train
DeepLabCut 2.x's TF engine and poseshift's `paper` preset on DeepLabCut's openfield example
for the same number of iterations, on the same train/test images, and compare the training
loss curve and the train/test error in pixels.

What is run (both from scratch, MobileNetV2-0.35, batch 1, SGD momentum 0.9, LR 0.005):
- No TF-slim ImageNet checkpoint for DeepLabCut can be reached offline (DLC downloads
  ``mobilenet_v2_0.35_224.ckpt``; /work/shared/weights holds only Keras-TF.js and TFLite
  files). So DeepLabCut restores ``init_weights`` from a checkpoint this script writes from
  its own freshly initialized graph (TF-slim's initializers, seed 0): training from scratch.
- poseshift trains with ``--init scratch --preset <paper with DLC's LR steps>``: the paper
  preset's from-scratch LR steps (1e-6 for 5k iterations) would make a short run learn
  nothing, so the preset file used is `paper` with only ``lr_steps`` set to DeepLabCut's
  default ``multi_step`` and ``log_every: 1`` (execution only; the curve is shown as
  100-iteration means, like DeepLabCut's ``display_iters``).
- The split: poseshift's default split of the project (95 %, seeded) is passed to
  DeepLabCut's ``create_training_dataset(trainIndices=..., testIndices=...)``.

Usage (from /work/main):
    .venv/bin/python benchmarks/paper_vs_dlc2.py --iters 1500
Environment: DLC2_VENV (default /tmp/dlc2-venv, made with
    python3 -m venv /tmp/dlc2-venv && /tmp/dlc2-venv/bin/pip install deeplabcut==2.3.10 \
        tensorflow==2.15.1 tf_slim tensorpack pandas==2.1.4),
POSESHIFT_SRC (optional: a poseshift source tree put first on PYTHONPATH, e.g. a
``git archive HEAD`` export when the working tree is mid-edit), WORK (default /tmp/pvd).
The same file is the DeepLabCut-side driver: ``python paper_vs_dlc2.py --dlc-step ...``
runs inside the DeepLabCut venv.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED_PROJECT = REPO.parent / "shared" / "data" / "openfield" / "openfield-Pranav-2018-10-30"
DLC_VENV = Path(os.environ.get("DLC2_VENV", "/tmp/dlc2-venv"))
WORK = Path(os.environ.get("WORK", "/tmp/pvd"))
NET = "mobilenet_v2_0.35"
PS_BACKBONE = "mobilenetv2_035"
DLC_MULTI_STEP = [[0.005, 10000], [0.02, 430000], [0.002, 730000], [0.001, 1030000]]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------ DeepLabCut-side driver


def tf_slim_batchnorm_shim() -> None:
    """TF 2.15.1's tensorflow/python/layers/normalization.py lazily imports
    ``tf_keras.legacy_tf_layers.normalization``, which no tf_keras release provides (it lives
    in ``tf_keras.src``), so tf_slim's batch_norm (every DLC MobileNet/ResNet layer) fails with
    ModuleNotFoundError. Alias the same module of keras 2.15 (TensorFlow 2.15's tf.keras)."""
    import importlib

    module = importlib.import_module("keras.src.legacy_tf_layers.normalization")
    sys.modules["tf_keras.legacy_tf_layers.normalization"] = module


def dlc_prepare(project: Path, split_file: Path) -> None:
    """Create shuffle 1 with poseshift's split, a random-init checkpoint, edit pose_cfg."""
    import deeplabcut
    import pandas as pd
    import yaml
    from deeplabcut.utils import auxfun_models

    # create_training_dataset looks for (and downloads) the TF-slim ImageNet checkpoint; it
    # cannot be reached offline, and init_weights is replaced below, so skip the download.
    auxfun_models.check_for_weights = lambda modeltype, parent_path: str(
        WORK / "dlc-init" / f"{NET}_random"
    )
    config = project / "config.yaml"
    split = json.loads(split_file.read_text())
    data = pd.read_hdf(next((project / "labeled-data").glob("*/CollectedData_*.h5")))
    names = ["/".join(i) if isinstance(i, tuple) else str(i) for i in data.index]
    train = [names.index(n) for n in split["train"]]
    test = [names.index(n) for n in split["test"]]
    deeplabcut.create_training_dataset(
        str(config),
        Shuffles=[1],
        trainIndices=[train],
        testIndices=[test],
        net_type=NET,
        augmenter_type="imgaug",  # the project's default_augmenter (DLC 2.x default)
    )
    pose_cfg = next(project.glob("dlc-models/iteration-0/*shuffle1/train/pose_cfg.yaml"))
    ckpt = write_random_checkpoint(pose_cfg, WORK / "dlc-init")
    cfg = yaml.safe_load(pose_cfg.read_text())
    cfg.update(init_weights=str(ckpt), display_iters=100, batch_size=1, multi_step=DLC_MULTI_STEP)
    pose_cfg.write_text(yaml.safe_dump(cfg, sort_keys=False))
    print(
        "RESULT "
        + json.dumps(
            {
                "pose_cfg": str(pose_cfg),
                "init_weights": str(ckpt),
                "n_train": len(train),
                "n_test": len(test),
            }
        )
    )


def write_random_checkpoint(pose_cfg: Path, folder: Path) -> Path:
    """DeepLabCut's own MobileNetV2 graph, freshly initialized (seed 0), saved as a checkpoint."""
    import tensorflow as tf
    from deeplabcut.pose_estimation_tensorflow.config import load_config
    from deeplabcut.pose_estimation_tensorflow.nnets.factory import PoseNetFactory

    tf.compat.v1.disable_eager_execution()
    cfg = load_config(str(pose_cfg))
    folder.mkdir(parents=True, exist_ok=True)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        inputs = tf.compat.v1.placeholder(tf.float32, [1, 256, 256, 3])
        PoseNetFactory.create(cfg).get_net(inputs)
        backbone = [
            v for v in tf.compat.v1.global_variables() if v.op.name.startswith("MobilenetV2")
        ]
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            path = tf.compat.v1.train.Saver(backbone).save(sess, str(folder / f"{NET}_random"))
    return Path(path)


def dlc_train(project: Path, iters: int) -> None:
    import deeplabcut

    deeplabcut.train_network(
        str(project / "config.yaml"),
        shuffle=1,
        maxiters=iters,
        displayiters=100,
        saveiters=iters,
        max_snapshots_to_keep=2,
        allow_growth=True,
    )


def dlc_evaluate(project: Path) -> None:
    import deeplabcut
    import pandas as pd

    deeplabcut.evaluate_network(str(project / "config.yaml"), Shuffles=[1], plotting=False)
    csv = next(project.glob("evaluation-results/iteration-0/CombinedEvaluation-results.csv"))
    row = pd.read_csv(csv).iloc[-1]
    print(
        "RESULT " + json.dumps({k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()})
    )


# ------------------------------------------------------------------ poseshift-side orchestration


def env_for(poseshift: bool) -> dict:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
        "DLClight": "True",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    if poseshift and os.environ.get("POSESHIFT_SRC"):
        env["PYTHONPATH"] = os.environ["POSESHIFT_SRC"]
    if not poseshift:
        env.pop("PYTHONPATH", None)
    return env


def dlc_call(step: str, *args: str, logfile: Path | None = None) -> dict | subprocess.Popen:
    cmd = [
        str(DLC_VENV / "bin" / "python"),
        str(Path(__file__).resolve()),
        "--dlc-step",
        step,
        *args,
    ]
    log("$ " + " ".join(cmd))
    if logfile is not None:
        return subprocess.Popen(
            cmd, env=env_for(False), stdout=logfile.open("w"), stderr=subprocess.STDOUT, cwd=WORK
        )
    out = subprocess.run(cmd, env=env_for(False), capture_output=True, text=True, cwd=WORK)
    (WORK / f"dlc-{step}.log").write_text(out.stdout + out.stderr)
    if out.returncode:
        raise SystemExit(
            f"DeepLabCut step {step} failed:\n{out.stdout[-3000:]}{out.stderr[-3000:]}"
        )
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[7:])


def ps_cmd(*args: str) -> list[str]:
    return [str(REPO / ".venv" / "bin" / "python"), "-m", "poseshift", *args]


def copy_project(dest: Path, dlc: bool) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(SHARED_PROJECT, dest)
    for p in [dest, *dest.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    if dlc:
        cfg = (dest / "config.yaml").read_text()
        video = dest / "videos" / "m3v1mp4.mp4"
        cfg = cfg.replace(
            "project_path: WILL BE AUTOMATICALLY UPDATED BY DEMO CODE", f"project_path: {dest}"
        )
        cfg = cfg.replace("  WILL BE AUTOMATICALLY UPDATED BY DEMO CODE:", f"  {video}:")
        cfg = cfg.replace("engine: pytorch", "engine: tensorflow")
        (dest / "config.yaml").write_text(cfg)
    return dest


def paper_preset_with_dlc_lr(path: Path) -> Path:
    """The installed `paper` preset, only lr_steps (both inits) and log_every replaced."""
    import yaml

    from poseshift.spec import preset_path

    data = yaml.safe_load(Path(preset_path("paper")).read_text())
    data["lr_steps"] = {
        "imagenet": [list(s) for s in DLC_MULTI_STEP],
        "scratch": [list(s) for s in DLC_MULTI_STEP],
    }
    data["log_every"] = 1
    path.write_text(
        "# poseshift `paper` preset; lr_steps := DeepLabCut 2.x default multi_step;"
        " log_every 1 (execution only)\n" + yaml.safe_dump(data, sort_keys=False)
    )
    return path


def dlc_curve(project: Path) -> list[tuple[int, float]]:
    logs = list(project.glob("dlc-models/iteration-0/*shuffle1/train/log.txt"))
    points = []
    for line in logs[0].read_text().splitlines() if logs else []:
        if "iteration:" in line and "loss:" in line:
            parts = line.split()
            it = int(parts[parts.index("iteration:") + 1])
            loss = float(parts[parts.index("loss:") + 1])
            points.append((it, loss))
    return points


def ps_curve(run: Path, every: int = 100) -> list[tuple[int, float]]:
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if x.strip()]
    points, acc = [], []
    for r in rows:
        acc.append(r["total"])
        if r["iteration"] % every == 0:
            points.append((r["iteration"], sum(acc) / len(acc)))
            acc = []
    return points


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=1500)
    ap.add_argument("--dlc-step")
    ap.add_argument("--project")
    ap.add_argument("--split-file")
    ap.add_argument("--skip-train", action="store_true", help="only evaluate and report")
    ap.add_argument("--report", action="store_true", help="print the tables of result.json")
    a = ap.parse_args()
    if a.report:
        print(report(json.loads((WORK / "result.json").read_text())))
        return
    if a.dlc_step:
        tf_slim_batchnorm_shim()
        project = Path(a.project)
        {
            "prepare": lambda: dlc_prepare(project, Path(a.split_file)),
            "train": lambda: dlc_train(project, a.iters),
            "evaluate": lambda: dlc_evaluate(project),
        }[a.dlc_step]()
        return

    from poseshift.data.project import load_project
    from poseshift.data.splits import default_split

    WORK.mkdir(parents=True, exist_ok=True)
    ps_proj, dlc_proj = WORK / "ps-proj", WORK / "dlc-proj"
    ps_run = WORK / "ps-run"
    result: dict = {"iters": a.iters}
    if not a.skip_train:
        copy_project(ps_proj, dlc=False)
        copy_project(dlc_proj, dlc=True)
        parts = default_split(load_project(ps_proj)).shuffle(1).partitions(0.95)
        split_file = WORK / "split.json"
        split_file.write_text(json.dumps({"train": parts["train"], "test": parts["within"]}))
        result["dlc_prepare"] = dlc_call(
            "prepare", "--project", str(dlc_proj), "--split-file", str(split_file)
        )
        preset = paper_preset_with_dlc_lr(WORK / "paper-dlcsched.yaml")
        if ps_run.exists():
            shutil.rmtree(ps_run)
        # Both at once (2 cores): one thread each, started together.
        t0 = time.time()
        dlc_env_threads = {
            "TF_NUM_INTRAOP_THREADS": "1",
            "TF_NUM_INTEROP_THREADS": "1",
            "OMP_NUM_THREADS": "1",
        }
        os.environ.update(dlc_env_threads)
        dlc_proc = dlc_call(
            "train",
            "--project",
            str(dlc_proj),
            "--iters",
            str(a.iters),
            logfile=WORK / "dlc-train.log",
        )
        cmd = ps_cmd(
            "train",
            str(ps_proj),
            "--backbone",
            PS_BACKBONE,
            "--init",
            "scratch",
            "--preset",
            str(preset),
            "--iters",
            str(a.iters),
            "--out",
            str(ps_run),
            "--workers",
            "0",
            "--device",
            "cpu",
        )
        log("$ " + " ".join(cmd))
        ps_proc = subprocess.Popen(
            cmd,
            env=env_for(True),
            stdout=(WORK / "ps-train.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        ps_rc = ps_proc.wait()
        result["ps_train_s"] = time.time() - t0
        dlc_rc = dlc_proc.wait()
        result["dlc_train_s"] = time.time() - t0
        log(f"training done: poseshift rc={ps_rc}, DeepLabCut rc={dlc_rc}")
        for k in dlc_env_threads:
            os.environ.pop(k)
    ev = subprocess.run(
        ps_cmd("evaluate", str(ps_run), "--device", "cpu"),
        env=env_for(True),
        capture_output=True,
        text=True,
    )
    (WORK / "ps-evaluate.log").write_text(ev.stdout + ev.stderr)
    metrics = json.loads(next((ps_run / "eval").glob("*/metrics.json")).read_text())
    result["poseshift"] = {k: metrics["partitions"][k]["error_px"] for k in ("train", "within")}
    result["dlc"] = dlc_call("evaluate", "--project", str(dlc_proj))
    result["curves"] = {"dlc": dlc_curve(dlc_proj), "poseshift": ps_curve(ps_run)}
    (WORK / "result.json").write_text(json.dumps(result, indent=1))
    log(json.dumps({k: v for k, v in result.items() if k != "curves"}))
    plot(result, HERE / "paper_vs_dlc2.png")
    print(report(result))


def report(result: dict) -> str:
    """Markdown: loss every 100 iterations side by side, then the errors in pixels."""
    dlc = dict(result["curves"]["dlc"])
    ps = dict(result["curves"]["poseshift"])
    lines = [
        "| iteration | DeepLabCut 2.3.10 loss | poseshift paper loss | ratio ps/DLC |",
        "|---:|---:|---:|---:|",
    ]
    for it in sorted(set(dlc) | set(ps)):
        d, p = dlc.get(it), ps.get(it)
        ratio = f"{p / d:.2f}" if d and p else "-"
        lines.append(
            f"| {it} | {d if d is None else f'{d:.4f}'} | "
            f"{p if p is None else f'{p:.4f}'} | {ratio} |"
        )
    e = result["dlc"]
    train_d = next(
        v for k, v in e.items() if k.strip().startswith("Train error") and "cutoff" not in k
    )
    test_d = next(
        v for k, v in e.items() if k.strip().startswith("Test error") and "cutoff" not in k
    )
    lines += [
        "",
        "| | train error (px) | test error (px) |",
        "|---|---:|---:|",
        f"| DeepLabCut 2.3.10 (TF) | {train_d:.2f} | {test_d:.2f} |",
        f"| poseshift paper preset | {result['poseshift']['train']:.2f} | "
        f"{result['poseshift']['within']:.2f} |",
    ]
    return "\n".join(lines)


def plot(result: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, pts in result["curves"].items():
        if pts:
            label = {"dlc": "DeepLabCut 2.3.10 (TF)", "poseshift": "poseshift paper preset"}[name]
            ax.plot(*zip(*pts, strict=True), marker=".", label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss (mean of 100 iterations)")
    ax.set_yscale("log")
    ax.set_title("openfield, MobileNetV2-0.35 from scratch, batch 1, LR 0.005")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    main()
