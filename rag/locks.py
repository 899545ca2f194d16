"""An exclusive lock across processes (flock on a file), waited for up to a deadline."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path

from rag.errors import RagError


@contextlib.contextmanager
def file_lock(path: Path, wait_seconds: float, busy: RagError, poll_seconds: float = 0.1) -> Iterator[None]:
    """Hold an exclusive lock on `path`; raise `busy` if another process holds it past `wait_seconds`.

    Polling rather than a blocking flock keeps the wait bounded and interruptible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise busy from None
                time.sleep(poll_seconds)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()
