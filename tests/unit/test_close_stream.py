"""Closing an answer stream whose client left never raises, even mid-`next()`."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import anyio

from api.deps import close_stream


def test_a_stream_busy_in_another_thread_is_left_to_finish() -> None:
    inside, release = threading.Event(), threading.Event()
    closed: list[bool] = []

    def events() -> Iterator[str]:
        try:
            inside.set()
            release.wait(10)
            yield "token"
        finally:
            closed.append(True)

    stream = events()
    worker = threading.Thread(target=next, args=(stream,))
    worker.start()
    assert inside.wait(10)
    anyio.run(close_stream, stream)  # "generator already executing": logged, not raised
    release.set()
    worker.join(10)
    anyio.run(close_stream, stream)  # now it closes
    assert closed == [True]


def test_objects_without_close_are_ignored() -> None:
    anyio.run(close_stream, iter(["a"]))
