"""Worker processes: results in task order, one BLAS/OpenMP thread per worker, the parent
unchanged, and freed memory kept for the next task."""

from __future__ import annotations

import ctypes
import resource

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from asclib.parallel import process_map


def _threads_in_worker(task: int) -> tuple[int, int]:
    return task, max(pool["num_threads"] for pool in threadpool_info())


def test_workers_inherit_one_thread_and_the_parent_keeps_its_pools():
    before = [pool["num_threads"] for pool in threadpool_info()]
    results = process_map(_threads_in_worker, range(6), workers=2, progress=False)
    assert results == [(task, 1) for task in range(6)]
    assert [pool["num_threads"] for pool in threadpool_info()] == before


def _page_faults_of_ten_tasks(task: int) -> int:
    """Page faults while four 4 MB arrays are made and freed ten times, as a clip's task does."""
    arrays = [np.ones(2**19) for _ in range(4)]
    del arrays
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        arrays = [np.ones(2**19) for _ in range(4)]
        del arrays
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "mallopt"), reason="glibc only")
def test_workers_reuse_the_memory_they_free():
    released = [np.ones(441_000) for _ in range(3)]  # the parent's state that made workers return memory
    del released
    faults = process_map(_page_faults_of_ten_tasks, range(2), workers=2, progress=False)
    assert max(faults) < 1_000, f"{faults} page faults: freed memory went back to the kernel (40,960 if all of it)"


def _sleep_then_return(task: tuple) -> int:
    import time

    seconds, value = task
    time.sleep(seconds)
    return value


def test_long_tasks_return_in_order_and_count_each_as_it_ends(capsys):
    """Long tasks (training runs) go out one at a time: the results keep the tasks' order, and
    the progress bar reaches its total though the first task ends last."""
    tasks = [(0.6, 0), (0.0, 1), (0.0, 2), (0.0, 3)]
    assert process_map(_sleep_then_return, tasks, 2, "long", "run", long=True) == [0, 1, 2, 3]
    assert "4/4" in capsys.readouterr().err
