"""Parallel writes (obsgen/deploy/backends/writes.py): bounded, stop at the first failure, and `applied`
holds every change that was or may have been made -- the rollback guarantee of the issue (item 7).

Concurrency is proven with barriers, never with timings: a write waits until N writes are in flight."""
from __future__ import annotations

import threading

import pytest

from obsgen.deploy import http
from obsgen.deploy.backends.writes import NotApplied, write_all
from obsgen.deploy.plan import CREATE, Change, Obj


def changes(count: int) -> list[Change]:
    return [Change(CREATE, None, Obj("grafana", "dashboard", f"d{i:02d}", {})) for i in range(count)]


def keys(applied: list[Change]) -> set[str]:
    return {c.obj.key for c in applied}


def test_writes_run_together_up_to_the_read_bound_and_never_beyond() -> None:
    bound = http.READ_WORKERS
    together = threading.Barrier(bound, timeout=10)  # breaks unless `bound` writes are in flight at once
    lock, state = threading.Lock(), {"now": 0, "most": 0}

    def write(change: Change) -> None:
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        if int(change.obj.key[1:]) < bound:
            together.wait()
        with lock:
            state["now"] -= 1

    applied: list[Change] = []
    write_all(write, changes(3 * bound), applied)
    assert keys(applied) == keys(changes(3 * bound))
    assert state["most"] == bound


def test_one_worker_writes_one_at_a_time_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "READ_WORKERS", 1)  # what the benchmark's sequential baseline does
    order: list[str] = []
    applied: list[Change] = []
    write_all(lambda c: order.append(c.obj.key), changes(5), applied)
    assert order == ["d00", "d01", "d02", "d03", "d04"]
    assert [c.obj.key for c in applied] == order


def test_after_the_first_failure_no_write_starts_those_in_flight_finish_and_it_is_raised(monkeypatch) -> None:
    """d00 fails at once while d01..d03 are in flight; they are held until write_all has seen the failure
    (its `wait` is watched), so whatever it starts after that point would show in `started`."""
    from obsgen.deploy.backends import writes

    seen_failure = threading.Event()
    real_wait = writes.wait

    def watched_wait(futures, **kwargs):
        done, running = real_wait(futures, **kwargs)
        if any(f.exception() is not None for f in done):
            seen_failure.set()
        return done, running

    monkeypatch.setattr(writes, "wait", watched_wait)
    started: list[str] = []

    def write(change: Change) -> None:
        started.append(change.obj.key)
        if change.obj.key == "d00":
            raise http.BackendError("Grafana (dev) answered HTTP 503")
        assert seen_failure.wait(10)

    applied: list[Change] = []
    with pytest.raises(http.BackendError, match="HTTP 503"):
        write_all(write, changes(40), applied, workers=4)
    assert sorted(started) == ["d00", "d01", "d02", "d03"]
    # the failed write may have landed (a 503 says nothing about that): it is counted with the others
    assert keys(applied) == {"d00", "d01", "d02", "d03"}


def test_a_write_refused_outright_or_with_nothing_to_do_is_not_counted() -> None:
    def write(change: Change) -> bool | None:
        if change.obj.key == "d01":
            raise NotApplied("Grafana (dev): 412 name-exists")
        return False if change.obj.key == "d02" else None

    applied: list[Change] = []
    with pytest.raises(NotApplied):
        write_all(write, changes(3), applied, workers=1)
    assert keys(applied) == {"d00"}
    applied = []
    write_all(write, [c for c in changes(3) if c.obj.key != "d01"], applied, workers=3)
    assert keys(applied) == {"d00"}


def test_an_unexpected_exception_in_a_write_counts_it_as_possibly_applied() -> None:
    def write(change: Change) -> None:
        raise KeyError("uid")  # a bug after the request was sent: the change may be live

    applied: list[Change] = []
    with pytest.raises(KeyError):
        write_all(write, changes(1), applied)
    assert keys(applied) == {"d00"}
