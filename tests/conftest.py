"""Shared fixtures: the offline mirror, the real openfield project, tiny generated projects."""

from __future__ import annotations

import os

# As the CLI does for its process (see poseshift.cli): spawned training ranks inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import dataclasses
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from poseshift.data.project import PoseDataset, write_project
from poseshift.spec import EXECUTION_KEYS, Execution, RunSpec, TrainConfig

MIRROR = Path(__file__).resolve().parents[1] / ".." / "shared"  # this environment's offline mirror
SHARED = MIRROR / "data"
OPENFIELD = SHARED / "openfield" / "openfield-Pranav-2018-10-30"
HORSE10 = SHARED / "horse10"
LIGHTNING_POSE = SHARED / "lightning-pose" / "mirror-mouse-example"


@pytest.fixture(scope="session", autouse=True)
def offline_mirror() -> Iterator[None]:
    """``POSESHIFT_SHARED`` names ``../shared`` (when it is there) for the whole session, as a
    user of this environment sets it; in os.environ, so CLI subprocesses inherit it. Tests of a
    fresh machine override it (a missing folder) or remove it themselves."""
    if not MIRROR.is_dir():
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POSESHIFT_SHARED", str(MIRROR.resolve()))
        yield


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: on two shared cores torch's spinning threads made tests up to 10x
    slower when a neighbour was busy; one thread keeps tiny models fast and steady."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def no_compilation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.compile costs seconds per tiny model and shape: only tests marked ``compiled``
    pay it; elsewhere compiled networks run eagerly (identical numbers)."""
    if "compiled" not in request.keywords:
        monkeypatch.setenv("TORCHDYNAMO_DISABLE", "1")  # read by each torch.compile call


@pytest.fixture(scope="session")
def openfield() -> Path:
    if not OPENFIELD.is_dir():
        pytest.skip("../shared/data/openfield is not available")
    return OPENFIELD


@pytest.fixture(scope="session")
def lightning_pose() -> Path:
    """Lightning Pose's own example dataset (MIT), unchanged: CollectedData.csv + images."""
    if not LIGHTNING_POSE.is_dir():
        pytest.skip("../shared/data/lightning-pose is not available")
    return LIGHTNING_POSE


class FileHandler(BaseHTTPRequestHandler):
    """Serves ``server.files`` (path -> bytes); honours Range unless told not to; can cut one
    answer short (``cut_next``) to test resumption. Logs (path, Range) in ``server.requests``."""

    def do_GET(self) -> None:
        server = self.server
        wanted = self.headers.get("Range")
        server.requests.append((self.path, wanted))
        server.ranges.append(wanted)
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if wanted and not server.ignore_range:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if server.cut_next:  # close the connection in the middle of the body
            server.cut_next = False
            payload = payload[: len(payload) // 2]
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        return None


@pytest.fixture
def file_server(monkeypatch: pytest.MonkeyPatch):
    """A real HTTP server on 127.0.0.1 in a thread; ``file_server.base`` is its URL."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # loopback must not go through a proxy
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FileHandler)
    httpd.files, httpd.requests, httpd.ranges = {}, [], []
    httpd.ignore_range, httpd.cut_next = False, False
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def closed_url(monkeypatch: pytest.MonkeyPatch) -> str:
    """An http URL on a 127.0.0.1 port nothing listens on (connections are refused)."""
    for name in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def make_project(
    root: Path,
    groups: int = 3,
    frames: int = 4,
    bodyparts: tuple[str, ...] = ("Nose", "Eye", "Tail"),
    size: tuple[int, int] = (48, 32),
    seed: int = 0,
    index_style: str = "tuple",
) -> PoseDataset:
    """A small real project on disk: random PNGs with keypoints inside them."""
    rng = np.random.default_rng(seed)
    width, height = size
    images, points = [], []
    for g in range(groups):
        for f in range(frames):
            name = f"labeled-data/video{g}/img{f:03d}.png"
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / name), rng.integers(0, 255, (height, width, 3), np.uint8))
            images.append(name)
            points.append(rng.uniform([1, 1], [width - 2, height - 2], (len(bodyparts), 2)))
    keypoints = np.array(points, dtype=np.float32)
    dataset = PoseDataset(
        root=root,
        scorer="tester",
        bodyparts=list(bodyparts),
        images=images,
        keypoints=keypoints,
        groups=[n.split("/")[1] for n in images],
        image_sizes=np.tile([width, height], (len(images), 1)),
        skeleton=[(bodyparts[0], bodyparts[1])],
        task="tiny",
    )
    write_project(dataset, index_style=index_style)
    return dataset


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    make_project(tmp_path / "proj")
    return tmp_path / "proj"


# A training recipe small enough for tests: 6 SGD steps of batch 2 on 64x48 crops.
TINY = TrainConfig(
    iterations=6,
    batch_size=2,
    optimizer="sgd",
    lr_schedule="steps",
    lr_steps={"imagenet": [[0.01, 10]], "scratch": [[0.01, 3], [0.02, 10]]},
    precision="fp32",
    snapshots=[2, 4],
)
TINY = dataclasses.replace(TINY, augment=dataclasses.replace(TINY.augment, crop=(64, 48)))
# ... executed in this process, checkpointing only at the end and logging every step.
TINY_EXECUTION = Execution(checkpoint_every=100, log_every=1, num_workers=0)


def spec_for(project: Path, **changes) -> RunSpec:
    """A MobileNetV2-0.35 run from scratch with the TINY recipe; ``changes`` may name
    RunSpec fields or Execution fields (``devices=2``, ``checkpoint_every=2``)."""
    moved = {k: changes.pop(k) for k in list(changes) if k in EXECUTION_KEYS}
    execution = dataclasses.replace(TINY_EXECUTION, **moved)
    spec = RunSpec(
        project=str(project),
        backbone="mobilenetv2_035",
        init="scratch",
        preset="test",
        train=TINY,
        execution=execution,
    )
    return dataclasses.replace(spec, **changes)


def write_clip(source: Path, target: Path, frames: int) -> Path:
    """The first ``frames`` frames of ``source`` at its frame rate (analysis stays short)."""
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS)
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for _ in range(frames):
        ok, frame = capture.read()
        assert ok
        writer.write(frame)
    writer.release()
    capture.release()
    return target
