"""Data-parallel training (DDP): one run over several processes, one per GPU (gloo on CPU).

The rules that make N processes train the run one process trains:

- The global batch stays the preset's ``batch_size`` and the learning rate stays the
  preset's: rank ``r`` of ``W`` takes its ``batch_size / W`` slice of the same global sample
  numbers (``data.loader.RangeSampler``), so results do not depend on the device count and
  no LR scaling rule is needed. More devices make each step faster, not bigger.
- BatchNorm normalizes with the statistics of the whole global batch (``GlobalBatchNorm``),
  as one process does. Per-rank statistics would make a run depend on how many devices it
  had (8 GPUs on a batch of 8 would normalize every image by itself). torch's SyncBatchNorm
  does this on GPUs only; ``GlobalBatchNorm`` runs on every backend, so the CPU test checks
  the very code the GPUs run. It costs two small all-reduces per BatchNorm layer forward
  and one backward.
- ``pose_loss`` divides by the number of labeled cells in the batch; ``global_loss`` makes
  that the global batch's count, so DDP's gradient average is the one-process gradient.
- Rank 0 alone reads and writes the run directory; the checkpoint it resumes from reaches
  the other ranks by broadcast, so only the first machine needs the run directory (every
  machine needs the project at the same path).
- A failed rank stops them all; Ctrl-C makes every rank stop after the same iteration,
  where rank 0 writes the checkpoint a re-run resumes from.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.multiprocessing.spawn import ProcessContext, ProcessException

from poseshift.data.loader import pad_images
from poseshift.errors import PoseshiftError
from poseshift.memory_policy import keep_freed_memory
from poseshift.train.global_batchnorm import global_batchnorm

T = TypeVar("T")

# Test hook: "RANK:ITERATION:exit" makes that rank die abruptly (os._exit) when it reaches the
# iteration, "RANK:ITERATION:interrupt" sends it SIGINT there (a Ctrl-C that reached one rank).
FAULT_ENV = "POSESHIFT_DDP_FAULT"


class RankFailed(PoseshiftError):
    """A training process crashed or was killed; the others were stopped."""


@dataclass(frozen=True)
class Ranks:
    """Where this process stands in the run: rank, world size, device. World 1: no DDP."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    stop: threading.Event = field(default_factory=threading.Event, compare=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def on_main(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 only; every rank gets its result, or raises its PoseshiftError."""
        if self.world == 1:
            return fn()
        box: list = [None]
        if self.is_main:
            try:
                box[0] = (True, fn())
            except PoseshiftError as exc:
                box[0] = (False, str(exc))
        dist.broadcast_object_list(box, src=0)
        ok, value = box[0]
        if not ok:
            raise PoseshiftError(value)
        return value

    def parallel(self, model: nn.Module) -> nn.Module:
        """The module a step calls: ``model`` itself, or DDP over it with global BatchNorm."""
        if self.world == 1:
            return model
        global_batchnorm(model)
        # BatchNorm buffers stay equal on every rank (same global statistics): no broadcast.
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(
            model, device_ids=ids, forward_sync_buffers=False
        )

    def global_loss(
        self, losses: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Rescale this rank's loss parts so the mean over ranks is the global-batch loss.

        ``pose_loss`` returns sum / max(count, 1) per part, with count the non-zero weights of
        this rank's slice; the one-process loss divides the sum over all ranks by the global
        count. DDP averages gradients over ranks, hence the factor ``world``.
        """
        if self.world == 1:
            return losses
        counts = torch.stack(
            [
                torch.count_nonzero(targets["scoremap_weight"]),
                torch.count_nonzero(targets["locref_weight"]),
            ]
        ).double()
        total = counts.clone()
        dist.all_reduce(total)
        scale = (self.world * counts.clamp(min=1) / total.clamp(min=1)).float()
        scoremap, locref = losses["scoremap"] * scale[0], losses["locref"] * scale[1]
        return {"total": scoremap + locref, "scoremap": scoremap, "locref": locref}

    def pad_to_global_batch(self, images: torch.Tensor) -> torch.Tensor:
        """This rank's (B, H, W, C) slice padded to the largest H and W of all ranks' slices,
        as one process pads the whole batch (``canvas: per_image``, ``loader.pad_collate``)."""
        if self.world == 1:
            return images
        size = torch.tensor(images.shape[1:3], device=self.device)
        dist.all_reduce(size, op=dist.ReduceOp.MAX)
        height, width = size.tolist()
        return pad_images(images, height, width)

    def agree(self, losses: dict[str, float]) -> tuple[dict[str, float], bool]:
        """Loss parts averaged over ranks, and whether any rank was asked to stop (Ctrl-C)."""
        if self.world == 1:
            return losses, self.stop.is_set()
        values = [*losses.values(), float(self.stop.is_set())]
        summed = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(summed)
        means = (summed[:-1] / self.world).tolist()
        return dict(zip(losses, means, strict=True)), bool(summed[-1] > 0)

    def fault_point(self, iteration: int) -> None:
        """Fail here if ``POSESHIFT_DDP_FAULT`` says so (tests of fail-fast and of the stop)."""
        fault = os.environ.get(FAULT_ENV)
        if self.world == 1 or not fault:
            return
        rank, at, kind = fault.split(":")
        if int(rank) == self.rank and int(at) == iteration:
            if kind == "exit":
                os._exit(17)
            os.kill(os.getpid(), signal.SIGINT)


def _torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def launched_rank() -> int:
    """This process's rank under torchrun (0 otherwise): only rank 0 should talk to the user."""
    return int(os.environ["RANK"]) if _torchrun() else 0


def world_size(devices: int) -> int:
    """Processes that train the run: torchrun's WORLD_SIZE when it started us, else devices."""
    if devices < 1:
        raise PoseshiftError(f"--devices must be at least 1, got {devices}")
    if not _torchrun():
        return devices
    launched = int(os.environ["WORLD_SIZE"])
    if devices not in (1, launched):
        raise PoseshiftError(
            f"--devices {devices}, but torchrun started {launched} processes; "
            "leave --devices out under torchrun"
        )
    return launched


def check_batch(batch_size: int, world: int, preset: str) -> None:
    """Refuse a global batch that cannot be split evenly over ``world`` processes."""
    if world == 1 or batch_size % world == 0:
        return
    if batch_size == 1:
        raise PoseshiftError(
            f"preset {preset!r} trains with batch size 1 (the paper's protocol), which cannot be "
            f"split over {world} devices; train it on one device, or use a preset with a larger "
            "batch (e.g. fast) to use several"
        )
    raise PoseshiftError(
        f"the global batch size {batch_size} does not split evenly over {world} devices; "
        "use a device count that divides it"
    )


def launch(
    fn: Callable[..., T],
    args: tuple,
    world: int,
    device_type: str,
    poll: Callable[[], None] | None = None,
) -> T:
    """Run ``fn(*args, ranks)`` on ``world`` ranks; return rank 0's result.

    Under torchrun this process is one of the ranks. Otherwise it spawns ``world`` processes
    on this machine and supervises them, calling ``poll()`` twice a second: the first
    failure stops every rank (RankFailed); Ctrl-C (or a KeyboardInterrupt from ``poll``)
    asks the ranks to stop together, and a second one kills them.
    """
    if _torchrun():
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
        with _joined(rank, world, local_rank, local_world, device_type, "env://") as ranks:
            return fn(*args, ranks)
    results = mp.get_context("spawn").SimpleQueue()
    address = f"tcp://127.0.0.1:{_free_port()}"
    context = mp.start_processes(
        _worker,
        (fn, args, world, device_type, address, results),
        nprocs=world,
        join=False,
        start_method="spawn",
    )
    asked_to_stop = False
    while True:
        try:
            if context.join(timeout=0.5):
                break
            if poll is not None and not asked_to_stop:
                poll()
        except KeyboardInterrupt:
            if asked_to_stop:
                for process in context.processes:
                    process.kill()
                raise
            asked_to_stop = True
            for process in context.processes:
                if process.is_alive():
                    os.kill(process.pid, signal.SIGINT)
        except ProcessException:
            raise _failure(context, world) from None
    if poll is not None and not asked_to_stop:
        poll()  # the records written since the last call
    if results.empty():  # interrupted before rank 0 started training
        raise KeyboardInterrupt
    return results.get()


def _worker(index: int, fn, args: tuple, world: int, device_type: str, address: str, results):
    keep_freed_memory()  # a spawned rank starts with glibc's defaults, torch already loaded
    with _joined(index, world, index, world, device_type, address) as ranks:
        result = fn(*args, ranks)
    if index == 0:
        results.put(result)


@contextlib.contextmanager
def stop_after_the_step(ranks: Ranks) -> Iterator[None]:
    """One process: Ctrl-C stops after the current step, a second Ctrl-C at once.

    A KeyboardInterrupt in the middle of a step would leave BatchNorm statistics updated by
    a step that never finished, and the resumed run would differ from an uninterrupted one.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def flag(*_) -> None:
        if ranks.stop.is_set():
            raise KeyboardInterrupt
        ranks.stop.set()

    previous = signal.signal(signal.SIGINT, flag)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _joined(
    rank: int, world: int, local_rank: int, local_world: int, device_type: str, address: str
) -> Iterator[Ranks]:
    """Join the process group; SIGINT only flags a stop the ranks then agree on."""
    if device_type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:  # share the CPU cores instead of oversubscribing them
        device = torch.device(device_type)
        torch.set_num_threads(max(1, torch.get_num_threads() // local_world))
    backend = "nccl" if device_type == "cuda" else "gloo"
    dist.init_process_group(backend, init_method=address, rank=rank, world_size=world)
    ranks = Ranks(rank, world, local_rank, device)
    previous = signal.signal(signal.SIGINT, lambda *_: ranks.stop.set())
    try:
        yield ranks
    finally:
        signal.signal(signal.SIGINT, previous)
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _failure(context: ProcessContext, world: int) -> PoseshiftError:
    """One line naming the ranks that failed: deaths first, then errors (often a dead peer's)."""
    died, raised, stopped = [], [], []
    for index, process in enumerate(context.processes):
        if process.exitcode == 0:
            continue
        last = _last_traceback_line(context.error_files[index])
        if last is not None and last.startswith("poseshift.errors.PoseshiftError: "):
            return PoseshiftError(last.split(": ", 1)[1])  # the same user error on all ranks
        code = process.exitcode
        if last is not None:
            raised.append(f"rank {index} of {world} raised {last[:200]}")
        elif code == -signal.SIGTERM:  # how a failure stops the other ranks
            stopped.append(f"rank {index} of {world} was stopped")
        else:
            how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited ({code})"
            died.append(f"rank {index} of {world} {how}")
    named = died + raised or stopped
    return RankFailed(f"training stopped: {'; '.join(named)}; every rank was stopped")


def _last_traceback_line(path: str) -> str | None:
    """The exception line torch's spawn wrapper saved, if it finished writing it."""
    try:
        with open(path, "rb") as fh:
            trace = pickle.load(fh)
    except (OSError, EOFError, pickle.UnpicklingError):
        return None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return trace.strip().splitlines()[-1]
