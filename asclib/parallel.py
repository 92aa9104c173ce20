"""Running one function over many tasks in worker processes, with a progress bar.

Used by the corpus synthesis, the offline augmentations and the feature extraction. Workers are
forked (no re-import of the caller's script) and each limits its BLAS and OpenMP pools to one
thread: two processes with two BLAS threads each would fight over two cores and run slower
than one process.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable, Iterable


def _start_worker(initializer: Callable | None, arguments: tuple) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    if initializer is not None:
        initializer(*arguments)


def process_map(function: Callable, tasks: Iterable, workers: int | None = None, description: str = "",
                unit: str = "task", progress: bool = True, initializer: Callable | None = None,
                initargs: tuple = ()) -> list:
    """`[function(task) for task in tasks]`, computed by `workers` processes (default: all cores)."""
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
        with ProcessPoolExecutor(workers, mp_context=get_context("fork"), initializer=_start_worker,
                                 initargs=(initializer, initargs)) as pool:
            results = []
            for result in pool.map(function, tasks, chunksize=max(1, min(16, len(tasks) // (4 * workers)))):
                results.append(result)
                bar.update()
            return results
