"""Reading ahead: the next chunk of a file is read on a second thread while this one checks the current one.

Parsing a chunk (pyarrow's CSV and Parquet readers) and checking one (numpy and pyarrow kernels) both
release the GIL for most of their time, so on two cores the two overlap. At most `depth` chunks wait
beyond the one being checked, so memory stays bounded by the chunk size. An error in the reader is raised
to the consumer where the chunk it failed on would have been; a consumer that stops early stops the
reader too.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

__all__ = ["read_ahead"]

T = TypeVar("T")

_POLL = 0.1  # seconds between the reader's looks at whether the consumer has gone


class _Done:
    """The reader's last word: the iterator ended, or raised `error`."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


def read_ahead(items: Iterator[T], *, depth: int = 1) -> Iterator[T]:
    """Yield what `items` yields, producing up to `depth` items ahead on a daemon thread."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, not {depth}")
    waiting: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            put(_Done(exc))
            return
        put(_Done(None))

    worker = threading.Thread(target=produce, name="pipewarden-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = waiting.get()
            if isinstance(item, _Done):
                if item.error is not None:
                    raise item.error
                return
            yield item  # type: ignore[misc]  # everything but _Done came from `items`
    finally:
        stop.set()
        worker.join()
        close = getattr(items, "close", None)
        if close is not None:
            close()
