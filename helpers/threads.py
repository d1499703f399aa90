"""Threads: how many TensorFlow uses, and a worker that handles items in a thread of its own.

TensorFlow runs one op at a time (inter-op threads: 1), each op on one thread per core, or on
``SCREENTIME_THREADS=N`` threads (e.g. 1 for each of several ``batch`` workers sharing a machine).
On 2 cores, with the decoding thread running too, one op at a time took MobileNetV2 16-19% less
time than TensorFlow's default (2 at a time) and SqueezeNet the same; one thread per op instead of
two made MobileNetV2 1.8x slower (docs/speed.md).

:class:`BackgroundWorker` takes work off a busy thread (PySceneDetect's scoring of the shot
detector's frames off the decoding thread) without letting memory grow or errors vanish.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from typing import Any, Callable, Generic, TypeVar

from .errors import UsageError
from .progress import log

T = TypeVar("T")
THREADS_ENV = "SCREENTIME_THREADS"
INTER_OP_THREADS = 1  # one op at a time: these networks are chains of ops, each using every core
#: An idle worker thread ends after this many seconds without items (the next item starts another).
IDLE_S = 0.2
_DONE = object()


def requested_threads() -> int | None:
    """``SCREENTIME_THREADS`` as a number of threads, or None when unset (TensorFlow's choice)."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise UsageError(f"{THREADS_ENV} must be a positive whole number of threads, not {value!r}; or unset it")
    return int(value)


def apply_tensorflow_threads(tf: Any) -> None:
    """One op at a time, each on ``SCREENTIME_THREADS`` threads if set; call before TensorFlow runs anything."""
    threads = requested_threads()
    try:
        tf.config.threading.set_inter_op_parallelism_threads(INTER_OP_THREADS)
        if threads is not None:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already ran something in this process (e.g. in a notebook)
        if threads is not None:
            log.warning("%s=%d ignored: TensorFlow was already running; set it before the first model loads",
                        THREADS_ENV, threads)


class BackgroundWorker(Generic[T]):
    """Calls ``handle(item)`` for every submitted item, in order, in a thread of its own.

    ``submit`` waits while ``depth`` items wait, so memory stays bounded. An exception raised by
    ``handle`` is raised in the submitting thread by the next ``submit`` and by ``close``; items
    submitted after it are dropped. ``close`` waits until every item is handled. The thread ends
    whenever it is idle, so a worker that is never closed (an interrupted pass) leaves no thread.
    """

    def __init__(self, handle: Callable[[T], None], depth: int = 4, name: str = "screentime-worker"):
        self._handle = handle
        self._depth = depth
        self._name = name
        self._items: deque = deque()
        self._changed = threading.Condition()  # guards _items and _thread
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, item: T) -> None:
        """Queue ``item`` for the worker thread (starting one if none runs)."""
        self._raise_error()
        with self._changed:
            self._changed.wait_for(lambda: len(self._items) < self._depth)
            self._append(item)

    def close(self) -> None:
        """Wait until every submitted item is handled; raise the worker's error, if any."""
        with self._changed:
            thread = self._thread
            if thread is not None:
                self._append(_DONE)
        if thread is not None:
            thread.join()
        self._raise_error()

    def _append(self, item: object) -> None:
        self._items.append(item)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        self._changed.notify_all()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (item := self._next_item()) is not _DONE:
            if self._error is None:  # after an error, keep draining so that submit never waits forever
                try:
                    self._handle(item)
                except BaseException as exc:  # raised again in the submitting thread
                    self._error = exc

    def _next_item(self) -> object:
        """The next item; _DONE once closed or idle for IDLE_S, and then this thread is over."""
        with self._changed:
            self._changed.wait_for(lambda: self._items, timeout=IDLE_S)
            item = self._items.popleft() if self._items else _DONE
            if item is _DONE:
                self._thread = None
            self._changed.notify_all()
            return item
