"""The timing loop the benchmarks share: warm-up calls, then one wall-clock time per call
(``sync`` waits for the device, so that GPU work is counted where it is done)."""

from __future__ import annotations

import time


def sample_times(fn, repeats: int, sync, warmup: int = 1) -> list[float]:
    """Seconds per call of ``fn`` over ``repeats`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times
