"""Limits on what a caller may ask of the machine (issue 26 section 2).

Thread counts: LiteRT's thread pool gains nothing past the machine's cores, and an absurd count
does real harm (``num_threads=100000`` ends in SIGSEGV; 20,000 really starts 20,000 threads).
The bound is ``max(64, 8 * os.cpu_count())``: 8x the cores leaves room for oversubscription
experiments (``bench --threads 1,2,4,8,16`` on a 2-core board), and the floor of 64 lets a bench
sweep written for a big device run on a small host; it sits far below the counts that crash.
"""
from __future__ import annotations

import os
from typing import Any

from edge_sdk.errors import InputError

#: The floor of the thread bound, whatever the machine.
MIN_THREAD_BOUND = 64
#: Threads allowed per logical core above the floor.
THREADS_PER_CORE = 8


def max_threads() -> int:
    """The largest thread count edge-sdk accepts on this machine: ``max(64, 8 * os.cpu_count())``."""
    return max(MIN_THREAD_BOUND, THREADS_PER_CORE * (os.cpu_count() or 1))


def check_thread_count(value: Any, what: str = "num_threads", error: type = InputError) -> int:
    """Return ``value`` if it is an integer in ``1..max_threads()``; else raise ``error`` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise error(f"{what} must be a positive integer, got {value!r}")
    bound = max_threads()
    if value > bound:
        raise error(f"{what} is {value:,}; this machine allows at most {bound} threads "
                    f"(max(64, 8 x {os.cpu_count() or 1} cores))")
    return value
