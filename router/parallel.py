"""Several processes, one per GPU, started by torchrun or `accelerate launch`: data parallel.

    torchrun --nproc-per-node 2 -m router.cli classify day.jsonl
    torchrun --nproc-per-node 2 -m router.cli retrain --kind llm

The launcher sets RANK, WORLD_SIZE and LOCAL_RANK. Rank 0 does everything one process does (reads
the file; writes the output, the store, the logs and the models); the other ranks only score
(`router classify`: `serve` answers rank 0's `Sharded` classifier) or train (`router retrain --kind
llm`: DDP through the Trainer). Messages go through torch.distributed's object collectives.
"""

from __future__ import annotations

import atexit
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local: int = 0      # this process's GPU on its machine

    @property
    def lead(self) -> bool:
        return self.rank == 0


def world() -> World:
    e = os.environ
    return World(int(e.get("RANK", 0)), int(e.get("WORLD_SIZE", 1)), int(e.get("LOCAL_RANK", 0)))


def active() -> bool:
    """Several processes, joined in a process group (torch is imported only then)."""
    if world().size <= 1:
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def init() -> World:
    """Join the process group when launched as several processes: NCCL on CUDA (this process's GPU
    is cuda:LOCAL_RANK), gloo on CPU. One process: nothing to do."""
    w = world()
    if w.size > 1:
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            cuda = torch.cuda.is_available()
            if cuda:
                torch.cuda.set_device(w.local)
            dist.init_process_group("nccl" if cuda else "gloo")
            atexit.register(finish)
    return w


def finish() -> None:
    """Leave the process group (at exit: a process that exits inside it may abort)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def cuda_device() -> str:
    """The CUDA device of this process: cuda:LOCAL_RANK under a launcher, else cuda."""
    w = world()
    return f"cuda:{w.local}" if w.size > 1 else "cuda"


def accumulation(grad_accum: int, size: int) -> int:
    """Gradient accumulation steps per process, so that N processes step on the batch one does."""
    return max(1, math.ceil(grad_accum / size))


def batch_note(batch_size: int, grad_accum: int, size: int) -> str:
    """The effective batch under `size` processes, for the logs."""
    acc = accumulation(grad_accum, size)
    one, now = batch_size * grad_accum, batch_size * acc * size
    return (f"DDP over {size} processes: gradient accumulation {grad_accum} -> {acc}, effective batch "
            f"{batch_size} x {acc} x {size} = {now}"
            + (" (as on one process)" if now == one else f" (one process: {one}; {grad_accum} is not a "
                                                          f"multiple of {size})"))


# -- messages from rank 0 ------------------------------------------------------------------------------
def send(obj) -> None:
    """Rank 0: `obj` to every other rank (they `receive` it)."""
    import torch.distributed as dist

    dist.broadcast_object_list([obj], src=0)


def receive():
    import torch.distributed as dist

    box = [None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


STOP = ("stop",)


class ShardError(RuntimeError):
    """Another rank failed to load the model or to score its share."""


class Sharded:
    """Rank 0's classifier when several processes score: each call's texts are dealt out
    (`clf.shards`), every rank scores its share, rank 0 puts the results back in input order.
    Everything else (classes_, temperature, ...) is the wrapped classifier's."""

    def __init__(self, clf, size: int):
        self.clf, self.size = clf, size

    def __getattr__(self, name):
        return getattr(self.clf, name)

    def predict_proba(self, texts):
        return self._call("predict_proba", texts)

    def proba_and_margins(self, texts):
        return self._call("proba_and_margins", texts)

    def _call(self, method: str, texts):
        import torch.distributed as dist

        texts = list(texts)
        if not texts:
            return getattr(self.clf, method)(texts)
        shares = self.clf.shards(texts, self.size)
        send(("score", method, [[texts[i] for i in s] for s in shares]))
        parts = [None] * self.size
        dist.gather_object(_score(self.clf, method, [texts[i] for i in shares[0]]), parts, dst=0)
        for r, p in enumerate(parts):
            if isinstance(p, ShardError):
                raise ShardError(f"rank {r}: {p}")
        return _merge(parts, shares, len(texts))


def _score(clf, method: str, texts: list):
    if not texts:
        return None
    try:
        return getattr(clf, method)(texts)
    except Exception as e:  # reported to rank 0, which stops every rank
        return ShardError(f"{type(e).__name__}: {e}")


def _merge(parts: list, shares: list[list[int]], n: int):
    """One result in input order from each rank's result over its share (None: an empty share)."""
    got = [(p, s) for p, s in zip(parts, shares) if p is not None]

    def join(arrays):
        if arrays[0] is None:
            return None
        out = np.empty((n, *arrays[0].shape[1:]), dtype=arrays[0].dtype)
        for a, (_, s) in zip(arrays, got):
            out[s] = a
        return out

    if isinstance(got[0][0], tuple):                     # proba_and_margins: (proba, margins, classes)
        first = got[0][0]
        return (join([p[0] for p, _ in got]), join([p[1] for p, _ in got]), *first[2:])
    return join([p for p, _ in got])


def shard(clf, version: str):
    """The classifier rank 0 routes with: `clf` itself for one process; under a launcher the
    other ranks load model `version` and score their shares of every call."""
    if not active():
        return clf
    send(("load", version))
    return Sharded(clf, world().size)


@contextmanager
def leading():
    """Rank 0's run: the other ranks are told to stop when it ends, also when it fails."""
    try:
        yield
    finally:
        if active():
            send(STOP)
            part()


def part() -> None:
    """Every rank has read the stop: nothing is left in flight when a process leaves the group."""
    import torch.distributed as dist

    dist.barrier()


def serve(load: Callable[[str], object]) -> None:
    """Ranks > 0 of `router classify`: load the model rank 0 names (`load(version)`), score the
    shares it deals out, until it says stop."""
    import torch.distributed as dist

    rank, clf, failed = world().rank, None, None
    while True:
        msg = receive()
        if msg == STOP:
            return part()
        if msg[0] == "load":
            try:
                clf, failed = load(msg[1]), None
            except (Exception, SystemExit) as e:
                failed = ShardError(f"cannot load model {msg[1]}: {type(e).__name__}: {e}")
            continue
        _, method, shares = msg
        dist.gather_object(failed or _score(clf, method, shares[rank]), None, dst=0)
