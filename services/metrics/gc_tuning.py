"""The metrics process's garbage collector, tuned for batches that live a whole apply.

A batch of 50,000 events is millions of container objects (records, parsed events, per-person
maps, edge keys) that survive the young collections for as long as the batch is applied.
CPython's defaults (a young collection every 700 net allocations, a full one every 100 young
ones) kept promoting them and re-scanning the whole heap: on `bench/sessions_apply.py`'s
workload, 9 full collections took 3.8 s of a 15.5 s apply. A higher young threshold makes the
collections a batch triggers few (its garbage is almost all freed by reference counting, not by
the collector): 6,446 -> 8,828 events/s there. The older generations keep CPython's ratios, so
cycles are still collected, only in larger steps.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 50_000  # net allocations between young collections (CPython: 700)


def tune_gc() -> None:
    _, middle_every, full_every = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle_every, full_every)


@contextmanager
def gc_tuned() -> Iterator[None]:
    """`tune_gc` for a stretch of a process that does other work too (a benchmark applying
    batches in its own process, as pulse-metrics does); the thresholds are restored after, so
    what runs next is measured with CPython's."""
    previous = gc.get_threshold()
    tune_gc()
    try:
        yield
    finally:
        gc.set_threshold(*previous)
