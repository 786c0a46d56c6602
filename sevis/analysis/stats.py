"""`sevis stats`: per-class, per-block excitation statistics over a labelled folder, on one process or many.

Images are decoded and preprocessed in DataLoader worker processes. Started by `torchrun --nproc-per-node N`
(one machine or several, with torchrun's rendezvous), the same code joins the process group (gloo on CPU,
NCCL on GPU), each rank streams its own shard of the files, the streaming sums of ExcitationStats (count, sum
and sum of squares per class and block, min/max) are all-reduced, and rank 0 writes one JSON file. The file
reads back into an ExcitationStats (`read_stats_file`), so the app and `sevis export --folder FILE.json` can
use it instead of recomputing.
"""
from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from sevis.core.recorder import ExcitationRecorder, find_se_blocks
from sevis.core.statistics import ExcitationStats
from sevis.data.folders import folder_files
from sevis.data.preprocess import open_image
from sevis.errors import DatasetError, ImageError, SevisError
from sevis.models.zoo import LoadedModel

FORMAT = "sevis-stats"
VERSION = 1


class FolderImages(Dataset):
    """Image files with class labels → (preprocessed tensor or None, label, error or None) per item.

    An unreadable image yields its error instead of raising, so one bad file does not stop a long pass."""

    def __init__(self, paths: Sequence[Path], labels: Sequence[int], preprocess: Callable) -> None:
        self.paths, self.labels, self.preprocess = list(paths), list(labels), preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor | None, int, str | None]:
        try:
            return self.preprocess(open_image(self.paths[i])), self.labels[i], None
        except ImageError as e:
            return None, self.labels[i], str(e)


def _collate(items: list) -> tuple[torch.Tensor | None, np.ndarray, list[str]]:
    """Return (batch of the readable images or None, their labels, the errors of the unreadable ones)."""
    good = [(x, y) for x, y, err in items if err is None]
    errors = [err for _, _, err in items if err is not None]
    if not good:
        return None, np.zeros(0, np.int64), errors
    return torch.stack([x for x, _ in good]), np.asarray([y for _, y in good], np.int64), errors


def _process_group(device: str) -> tuple[int, int, torch.device]:
    """Join torchrun's process group when started by it (WORLD_SIZE set); return (rank, world size, device)."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise SevisError("--device cuda: no CUDA device is available")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device(f"cuda:{local % torch.cuda.device_count()}" if use_cuda else "cpu")
    if world > 1 and not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), dev
    return 0, 1, dev


SUMMED = ("count", "total", "total_sq", "outside")  # ExcitationStats.to_dict's per-block sums


def _all_reduce(stats: ExcitationStats, extra: np.ndarray, device: torch.device) -> tuple[ExcitationStats, np.ndarray]:
    """Return the statistics and `extra` counters summed over all ranks (min/max reduced as min/max)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return stats, extra
    data = stats.to_dict()
    blocks = data["blocks"]
    sums = [np.asarray(b[key], np.float64).ravel() for b in blocks.values() for key in SUMMED]
    flat = torch.from_numpy(np.concatenate(sums + [extra.astype(np.float64).ravel()])).to(device)
    lo = torch.tensor([math.inf if b["min"] is None else b["min"] for b in blocks.values()], dtype=torch.float64,
                      device=device)
    hi = torch.tensor([-math.inf if b["max"] is None else b["max"] for b in blocks.values()], dtype=torch.float64,
                      device=device)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    flat, lo, hi = flat.cpu().numpy(), lo.cpu().numpy(), hi.cpu().numpy()
    at = 0
    for i, b in enumerate(blocks.values()):
        for key in SUMMED:
            n = int(np.asarray(b[key]).size)
            b[key] = flat[at:at + n].reshape(np.shape(b[key]))
            at += n
        b["min"] = None if math.isinf(lo[i]) else float(lo[i])
        b["max"] = None if math.isinf(hi[i]) else float(hi[i])
    return ExcitationStats.from_dict(data), flat[at:].reshape(extra.shape)


def _gather_errors(errors: list[str], keep: int = 5) -> list[str]:
    """Return the first `keep` error messages (sorted) of all ranks together."""
    import torch.distributed as dist

    mine = sorted(errors)[:keep]
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return mine
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, mine)
    return sorted(e for part in gathered for e in part)[:keep]


def _plain(v):
    """Return `v` as a JSON value: numpy scalars unwrapped, NaN/inf → None."""
    v = v.item() if isinstance(v, np.generic) else v
    return None if isinstance(v, float) and not math.isfinite(v) else v


@torch.inference_mode()
def folder_statistics(loaded: LoadedModel, folder: str | os.PathLike, batch_size: int = 64, workers: int = 2,
                      device: str = "auto", progress: Callable[[int, int], None] | None = None) -> dict:
    """Stream every image of a labelled folder through the model; return the JSON-ready statistics (on every rank).

    Under torchrun each rank takes every WORLD_SIZE-th file from its rank on (a disjoint shard; unlike
    DistributedSampler nothing is padded, so no image counts twice). progress(images done, shard size) is
    called per batch."""
    classes, paths, labels = folder_files(folder)
    rank, world, dev = _process_group(device)
    shard = FolderImages(paths[rank::world], labels[rank::world], loaded.preprocess)
    loader = DataLoader(shard, batch_size=batch_size, num_workers=workers, collate_fn=_collate,
                        persistent_workers=False, pin_memory=dev.type == "cuda")
    model = loaded.model.to(dev)
    blocks = [b for b, _ in find_se_blocks(model)]
    stats = ExcitationStats(classes, OrderedDict((b.name, b.channels) for b in blocks))
    class_map = np.asarray([loaded.classes.index(c) if c in loaded.classes else -1 for c in classes])
    matched = bool((class_map >= 0).all())
    k = len(classes)
    counters = np.zeros((3, k))  # images seen, correctly classified, unreadable — per class
    errors: list[str] = []
    done = 0
    with ExcitationRecorder(model) as rec:
        for x, y, errs in loader:
            errors += errs  # unreadable files: counted and named, not fatal
            if x is not None:
                pred = model(x.to(dev, non_blocking=True)).argmax(1).cpu().numpy()
                stats.update(rec.pop(), y)
                np.add.at(counters[0], y, 1)
                if matched:
                    np.add.at(counters[1], y, pred == class_map[y])
            done += len(y) + len(errs)
            if progress:
                progress(done, len(shard))
    counters[2, 0] = len(errors)
    stats, counters = _all_reduce(stats, counters, dev)
    errors = _gather_errors(errors)
    seen, correct, unreadable = counters[0], counters[1], int(round(counters[2].sum()))
    if seen.sum() == 0:
        raise DatasetError(f"{folder} holds no readable images in its class sub-folders")
    summary = stats.summary()
    stage = {b.name: b.stage for b in blocks}
    return {
        "format": FORMAT, "version": VERSION,
        "model": loaded.spec, "model_name": loaded.name, "folder": str(Path(folder).expanduser().resolve()),
        "images": int(seen.sum()), "unreadable": unreadable, "first_errors": errors,
        "classes": classes, "images_per_class": {c: int(n) for c, n in zip(classes, seen)},
        "blocks": stats.blocks, "channels": {b.name: b.channels for b in blocks},
        "stages": {b.name: stage[b.name] for b in blocks},
        "accuracy": float(correct.sum() / seen.sum()) if matched else None,
        "per_class_accuracy": ({c: (float(correct[i] / seen[i]) if seen[i] else None) for i, c in enumerate(classes)}
                               if matched else None),
        "summary": [{key: _plain(v) for key, v in row.items()} for row in summary.to_dict("records")],
        "statistics": stats.to_dict(),
    }


def is_main_process() -> bool:
    """Return whether this process writes files and prints (rank 0, or not distributed at all)."""
    import torch.distributed as dist
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def finish() -> None:
    """Leave the process group, if this process joined one."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def write_stats_file(result: dict, out: str | os.PathLike) -> Path:
    """Write `result` (from folder_statistics) as JSON, atomically; return the path."""
    from sevis.files import write_atomic
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SevisError(f"cannot write {out}: {e.strerror or e}") from None
    text = json.dumps(result, indent=1, default=_plain, allow_nan=False)
    return write_atomic(out, text)  # a temporary file beside it, then one rename; removed if anything fails


MAX_STATS_BYTES = 2**30  # 1 GiB: ImageNet's 1000 classes over a large model's blocks take a few hundred MB


def read_stats_file(path: str | os.PathLike) -> tuple[ExcitationStats, dict]:
    """Return (the statistics, the whole file's data) of a file `sevis stats` wrote."""
    from sevis.files import read_regular
    path = Path(path) if getattr(path, "root", None) else Path(path).expanduser()
    text = read_regular(path, MAX_STATS_BYTES, path.name, error=DatasetError)  # a FIFO named x.json: refused
    try:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        return ExcitationStats.from_dict(data["statistics"]), data
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise DatasetError(f"{path.name} is not a statistics file written by `sevis stats` "
                           f"({type(e).__name__}: {e})") from None
