"""Benchmark: host memory of paper-profile training against the number of clips (issue 10, item 2).

Prints numbers; asserts nothing. Run:  .venv/bin/python benchmarks/host_memory.py [--clips 1000 10000]

For each clip count, a fresh process makes a feature store of that many random paper-profile
log-mels (128 x 431 float32, 220 KB a clip, memory-mapped as `features.log_mel_rows` serves
them), reads every clip once in chunks (as an epoch does), then trains the 10-class FCNN for
`--steps` steps of the real loop (`train.fit`). It reports the process's peak anonymous memory
(what it holds itself: model, optimiser, batches; sampled every 20 ms) and its file-backed
resident memory at the end (store pages in the page cache, which the kernel reclaims under
pressure). The first should not grow with the number of clips; the second may reach the store's
size without the memory being needed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np


def _status(field: str) -> int:
    """A /proc/self/status field in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def one_count(clips: int, steps: int, folder: Path) -> dict:
    import torch

    from asclib import features, profiles, train
    from asclib.profiles import get_profile

    peak = {"anon": 0}
    stop = threading.Event()

    def sample():
        while not stop.wait(0.02):
            peak["anon"] = max(peak["anon"], _status("RssAnon"))

    threading.Thread(target=sample, daemon=True).start()
    paper = get_profile("paper")
    profile = profiles.resized(paper, epochs={"fcnn": 2})
    profile = dataclasses.replace(profile, train=dataclasses.replace(profile.train, steps_per_epoch=steps))
    shape = (clips, paper.features.n_mels, features.frame_count(paper))
    writer = np.memmap(folder / "log_mels.f32", dtype=np.float32, mode="w+", shape=shape)
    rng = np.random.default_rng(0)
    for start in range(0, clips, 256):
        writer[start:start + 256] = rng.uniform(size=(min(256, clips - start),) + shape[1:]).astype(np.float32)
    writer.flush()
    del writer
    rows = features.LogMelRows(np.memmap(folder / "log_mels.f32", dtype=np.float32, mode="r", shape=shape),
                               np.arange(clips))
    for start in range(0, clips, 256):
        rows[start:start + 256].sum()  # every clip read once, as an epoch reads them
    data = train.TrainingSet(rows, rng.integers(0, 10, clips), f"memory-{clips}")
    os.environ["ASC_RUNS_DIR"] = str(folder / "runs")
    torch.set_num_threads(os.cpu_count() or 1)
    train.fit("fcnn", 10, data, profile, stop_after=1, progress=False)
    stop.set()
    peak["anon"] = max(peak["anon"], _status("RssAnon"))
    return {"clips": clips, "store GB": round(os.path.getsize(folder / "log_mels.f32") / 1e9, 2),
            "peak anonymous GB": round(peak["anon"] / 1e9, 2), "file-backed resident GB": round(_status("RssFile") / 1e9, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--steps", type=int, default=2, help="training steps of the FCNN (batch 32)")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # the child process's count
    args = parser.parse_args()
    if args.one is not None:
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(one_count(args.one, args.steps, Path(folder))))
        return
    from asclib.provenance import cpu_model

    print(f"paper profile, FCNN 10 classes, {args.steps} training steps, {cpu_model()}, {os.cpu_count()} cores")
    for clips in args.clips:
        result = subprocess.run([sys.executable, __file__, "--one", str(clips), "--steps", str(args.steps)],
                                check=True, capture_output=True, text=True)
        print(json.loads(result.stdout.strip().splitlines()[-1]), flush=True)


if __name__ == "__main__":
    main()
