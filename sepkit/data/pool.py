"""Process pools for the data work that runs one process per core (generation, decoding)."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import torch


def _one_thread() -> None:
    torch.set_num_threads(1)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` processes, each running torch on one thread.

    The workers are forked. A fork copies none of the parent's OpenMP threads, so a worker whose
    torch op asks for more than one thread waits for them forever once the parent has started its
    own (train.py has, by the time it prepares data). One thread per worker is also what a pool of
    one process per core wants.
    """
    return ProcessPoolExecutor(workers, initializer=_one_thread)
