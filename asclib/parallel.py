"""Running one function over many tasks in worker processes, with a progress bar.

Used by the corpus synthesis, the offline augmentations and the feature extraction. Workers are
forked (no re-import of the caller's script) with the BLAS and OpenMP pools limited to one
thread: two processes with two BLAS threads each would fight over two cores and run slower
than one process. The limit is set in the parent while it forks, and the workers inherit it;
setting it in each worker instead cost about 50 ms per pool on a 2-core machine.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable, Iterable


def process_map(function: Callable, tasks: Iterable, workers: int | None = None, description: str = "",
                unit: str = "task", progress: bool = True, initializer: Callable | None = None,
                initargs: tuple = ()) -> list:
    """`[function(task) for task in tasks]`, computed by `workers` processes (default: all cores)."""
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
                                                              initializer=initializer, initargs=initargs) as pool:
            results = []
            for result in pool.map(function, tasks, chunksize=max(1, min(16, len(tasks) // (4 * workers)))):
                results.append(result)
                bar.update()
            return results
