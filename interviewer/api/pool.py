"""The bounded grading pool: a few threads share the one loaded Engine, off the event loop.

At most `workers` gradings run and `queue_size` more wait. A request beyond that is refused at
once with `Busy` (429 + Retry-After, estimated from recent grading times) instead of queueing
until it times out. Batch jobs feed the same pool one row at a time (`call`, which waits for a
slot), so interactive requests keep their place in the queue during a large batch. The threads
run at a lower CPU priority, so that reads on the event loop stay fast while gradings run.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from ..service import background_thread
from .errors import Busy

T = TypeVar("T")


class GradingPool:
    def __init__(self, workers: int, queue_size: int):
        self.workers = max(1, workers)
        self.capacity = self.workers + max(0, queue_size)
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="grading",
                                            initializer=background_thread)
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._lock = threading.Lock()
        self._pending = 0
        self._mean_s = 2.0  # moving average of one grading, for Retry-After

    @property
    def pending(self) -> int:
        """Gradings running or waiting."""
        return self._pending

    def retry_after(self) -> int:
        return max(1, math.ceil(self._mean_s * self._pending / self.workers))

    async def run(self, fn: Callable[..., T], *args, **kwargs) -> T:
        """Run `fn` on the pool and await its result; `Busy` at once if the pool is full."""
        if not self._slots.acquire(blocking=False):
            raise Busy(self.retry_after())
        return await asyncio.wrap_future(self._submit(fn, *args, **kwargs))

    def call(self, fn: Callable[..., T], *args, stop: threading.Event | None = None, **kwargs) -> T | None:
        """Run `fn` on the pool from a plain thread, waiting for a free slot (None if `stop` is set)."""
        while not self._slots.acquire(timeout=0.5):
            if stop is not None and stop.is_set():
                return None
        return self._submit(fn, *args, **kwargs).result()

    def _submit(self, fn, *args, **kwargs) -> Future:
        def timed():
            started = time.monotonic()
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self._mean_s = 0.8 * self._mean_s + 0.2 * (time.monotonic() - started)

        with self._lock:
            self._pending += 1
        try:
            future = self._executor.submit(timed)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(lambda _: self._release())
        return future

    def _release(self) -> None:
        with self._lock:
            self._pending -= 1
        self._slots.release()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
