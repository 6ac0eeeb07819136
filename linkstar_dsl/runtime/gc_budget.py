"""Fewer garbage collections while a tick runs.

A tick of thousands of sends allocates millions of short-lived container objects (rows, template
contexts, request headers), and CPython runs a young-generation collection every 700 of them,
each walking every young object to find cycles that almost never exist here.  Inside
`fewer_collections` the young generation's threshold is raised to `YOUNG_THRESHOLD`: memory
held between collections stays small (tens of thousands of objects), and the older generations'
own thresholds are left as they were.  The setting is the process's, so nested and concurrent
ticks (engines in several threads) share one counter, and the threshold the process had is put
back when the last of them ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: Young objects allocated between two collections inside a tick (CPython's default: 700).
YOUNG_THRESHOLD = 50_000

_lock = threading.Lock()
_inside = 0
_before: tuple[int, ...] = ()


@contextmanager
def fewer_collections() -> Iterator[None]:
    global _inside, _before
    with _lock:
        if _inside == 0:
            _before = gc.get_threshold()
            if _before[0] and _before[0] < YOUNG_THRESHOLD:  # 0: collection is off; leave it off
                gc.set_threshold(YOUNG_THRESHOLD, *_before[1:])
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0 and gc.get_threshold()[0] == YOUNG_THRESHOLD and _before:
                gc.set_threshold(*_before)
