"""Worker processes: results in task order, one BLAS/OpenMP thread per worker, the parent unchanged."""

from __future__ import annotations

from threadpoolctl import threadpool_info

from asclib.parallel import process_map


def _threads_in_worker(task: int) -> tuple[int, int]:
    return task, max(pool["num_threads"] for pool in threadpool_info())


def test_workers_inherit_one_thread_and_the_parent_keeps_its_pools():
    before = [pool["num_threads"] for pool in threadpool_info()]
    results = process_map(_threads_in_worker, range(6), workers=2, progress=False)
    assert results == [(task, 1) for task in range(6)]
    assert [pool["num_threads"] for pool in threadpool_info()] == before
