"""Reading ahead keeps the order, raises the reader's error where it happened, and stops with its consumer."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from pipewarden.data._ahead import read_ahead


def test_items_come_in_order() -> None:
    assert list(read_ahead(iter(range(50)), depth=3)) == list(range(50))


def test_an_error_in_the_reader_is_raised_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("row 3 is ragged")

    seen: list[int] = []
    with pytest.raises(ValueError, match="row 3 is ragged"):
        seen.extend(read_ahead(items()))  # keeps what came before the error
    assert seen == [1, 2]


def test_a_consumer_that_stops_early_stops_the_reader() -> None:
    produced = []
    closed = threading.Event()

    def items() -> Iterator[int]:
        try:
            for i in range(1_000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    ahead = read_ahead(items(), depth=1)
    assert next(ahead) == 0
    ahead.close()
    assert closed.is_set()
    # The reader got at most the queue's depth and one in hand ahead of the consumer.
    assert len(produced) <= 3
    assert not any(t.name == "pipewarden-read-ahead" and t.is_alive() for t in threading.enumerate())


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth"):
        list(read_ahead(iter(()), depth=0))
