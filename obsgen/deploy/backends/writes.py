"""Writes to independent objects, in parallel and bounded like the reads, keeping what was applied.

`write_all` runs one write per change with at most `obsgen.deploy.http.READ_WORKERS` in flight (read when it is
called, so one request at a time is a matter of setting it to 1). On the first failure it starts no new
write, waits for those in flight, and raises that first failure. Every change whose write succeeded, or
failed in a way that leaves its effect unknown (an answer lost or cut short, a 5xx, any exception along
the way), is appended to the backend's `applied` list under a lock: the session's rollback then sees every
change that was or may have been made. Only a write the server refused outright raises `NotApplied`
and is left out; a write that found nothing to do returns False and is left out too.
"""
from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable

from obsgen.deploy import http
from obsgen.deploy.plan import Change
from obsgen.deploy.http import BackendError


class NotApplied(BackendError):
    """The server answered and refused this write: nothing was changed."""


def write_all(write: Callable[[Change], bool | None], changes: list[Change], applied: list[Change],
              workers: int | None = None) -> None:
    """`write(change)` for every change, at most `workers` at once (default READ_WORKERS); see the module."""
    lock = threading.Lock()

    def one(change: Change) -> None:
        try:
            changed = write(change)
        except NotApplied:
            raise
        except BaseException:
            with lock:
                applied.append(change)  # the write may have landed: rollback must look
            raise
        if changed is not False:
            with lock:
                applied.append(change)

    limit = http.READ_WORKERS if workers is None else workers
    if limit <= 1 or len(changes) <= 1:
        for change in changes:
            one(change)
        return
    pending = iter(changes)
    first: BaseException | None = None
    with ThreadPoolExecutor(max_workers=min(limit, len(changes))) as pool:
        running: set[Future[None]] = set()
        try:
            while True:
                while first is None and len(running) < limit:
                    change = next(pending, None)
                    if change is None:
                        break
                    running.add(pool.submit(one, change))
                if not running:
                    break
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    if first is None and future.exception() is not None:
                        first = future.exception()
        except BaseException:  # Ctrl-C while waiting: start nothing more, let those in flight record themselves
            wait(running)
            raise
    if first is not None:
        raise first
