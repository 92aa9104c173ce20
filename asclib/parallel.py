"""Running one function over many tasks in worker processes, with a progress bar.

Used by the corpus synthesis, the offline augmentations and the feature extraction. Workers are
forked (no re-import of the caller's script) with the BLAS and OpenMP pools limited to one
thread: two processes with two BLAS threads each would fight over two cores and run slower
than one process. The limit is set in the parent while it forks, and the workers inherit it;
setting it in each worker instead cost about 50 ms per pool on a 2-core machine. Each worker
keeps the memory it frees for its next task (`_keep_freed_memory`).
"""

from __future__ import annotations

import ctypes
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Callable, Iterable


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def _keep_freed_memory() -> None:
    """Make glibc keep the heap memory this process frees, for its next task.

    By default glibc gives the top of the heap back to the kernel once a few MB are free (how
    many depends on what the parent had freed before the fork), so a worker that allocates and
    frees several MB per task faults every page in again each time: up to 2,000 page faults per
    paper-profile clip, 40 % of the workers' time spent in the kernel. A worker's memory then
    stays at its peak. Elsewhere than glibc there is nothing to do.
    """
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)  # glibc's largest: blocks below it come from the heap
        mallopt(_M_TRIM_THRESHOLD, 2**30)


def _start_worker(initializer: Callable | None, arguments: tuple) -> None:
    """Set up a forked worker: its memory policy, then the caller's initializer."""
    _keep_freed_memory()
    if initializer is not None:
        initializer(*arguments)


def process_map(function: Callable, tasks: Iterable, workers: int | None = None, description: str = "",
                unit: str = "task", progress: bool = True, initializer: Callable | None = None,
                initargs: tuple = (), long: bool = False) -> list:
    """`[function(task) for task in tasks]`, computed by `workers` processes (default: all cores).
    `long` tasks (training runs) go out one at a time, and the progress bar (with its time left)
    counts each as it ends, in whatever order."""
    from threadpoolctl import threadpool_limits
    from tqdm.auto import tqdm

    tasks = list(tasks)
    workers = min(workers or os.cpu_count() or 1, max(len(tasks), 1))
    with tqdm(total=len(tasks), desc=description, unit=unit, disable=not progress) as bar:
        if workers == 1:
            if initializer is not None:
                initializer(*initargs)
            results = []
            for task in tasks:
                results.append(function(task))
                bar.update()
            return results
        with threadpool_limits(limits=1), ProcessPoolExecutor(workers, mp_context=get_context("fork"),
                                                              initializer=_start_worker,
                                                              initargs=(initializer, initargs)) as pool:
            if long:  # one at a time: in chunks, one core can be left with a chunk's runs while the other waits
                futures = [pool.submit(function, task) for task in tasks]
                for _ in as_completed(futures):
                    bar.update()
                return [future.result() for future in futures]
            results = []
            # Many short tasks (clips) go out in chunks of up to 16, which saves the hand-out cost
            for result in pool.map(function, tasks, chunksize=max(1, min(16, len(tasks) // (16 * workers)))):
                results.append(result)
                bar.update()
            return results
