"""Run counts and burn-rate states of the SLO rule tests, in integers, worked out once per case.

Runs come every T seconds (the first at T), so the runs at or before τ are the first ⌊τ/T⌋ and a window's
failed and total runs are two differences of a prefix sum. A burn condition holds when both of its windows'
error ratios are above its threshold p/q: failed/total > p/q is failed·q > p·total, exact as the Fractions
it replaces. A run-counting ratio must be above p/q + slo_windows.TIE (the rules' margin: a ratio exactly on the
threshold is below it) and the long window must hold slo_windows.MIN_FAILED_RUNS failed runs; for an SLI on
events a ratio within TIE of the threshold leaves the state unknown (None: the float comparison decides).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterator, Sequence

from obsgen.model import durations, slo_windows

State = tuple[bool | None, tuple[bool, ...]]  # fires (None: unknown), and the terms it is made of


class Runs:
    """The runs up to `end`: one every `cadence` seconds from `cadence` on, failed where `fails(t)`."""

    def __init__(self, cadence: int, end: int, fails: Callable[[int], bool]):
        self.cadence = cadence
        self.times = range(cadence, end + 1, cadence)
        self.failed = [bool(fails(t)) for t in self.times]
        self.prefix = list(itertools.accumulate(self.failed, initial=0))  # failed runs among the first k
        self._counts: dict[tuple[int, range], list[tuple[int, int]]] = {}

    def __iter__(self) -> Iterator[tuple[int, bool]]:
        return zip(self.times, self.failed)

    def counts(self, window: int, times: range) -> list[tuple[int, int]]:
        """(failed, all) runs in the window of each of `times` (a run at r is in the window of τ when
        τ - window < r <= τ); worked out once per window and times, as the page and the ticket share them."""
        key = (window, times)
        if key not in self._counts:
            cadence, last, prefix = self.cadence, len(self.times), self.prefix
            his = [min(max(at // cadence, 0), last) for at in times]
            los = [min(max((at - window) // cadence, 0), last) for at in times]
            self._counts[key] = [(prefix[hi] - prefix[lo], hi - lo) for lo, hi in zip(los, his)]
        return self._counts[key]


@dataclass(frozen=True)
class _Condition:
    """One burn condition: both windows' ratios above num/den (tie: the threshold itself, for events)."""

    long: int
    short: int
    num: int
    den: int
    tie_num: int
    tie_den: int

    def on_threshold(self, failed: int, total: int) -> bool:
        """|failed/total - threshold| < TIE: for an SLI on events, the float comparison decides."""
        tie = slo_windows.TIE
        return total > 0 and (abs(failed * self.tie_den - self.tie_num * total) * tie.denominator
                              < tie.numerator * total * self.tie_den)


def _condition(window: slo_windows.BurnWindow, objective: Fraction, run_based: bool) -> _Condition:
    threshold = window.threshold(objective)
    above = threshold + slo_windows.TIE if run_based else threshold  # the rule's margin: ties stay below
    return _Condition(int(durations.seconds(window.long)), int(durations.seconds(window.short)),
                      above.numerator, above.denominator, threshold.numerator, threshold.denominator)


@dataclass(frozen=True)
class Alerting:
    """When one severity's burn-rate alert fires, from the run counts."""

    conditions: tuple[_Condition, ...]
    run_based: bool
    exists: bool  # False: no such rule (an SLO that does not page, or too few runs): never fires

    @classmethod
    def of(cls, windows: Sequence[slo_windows.BurnWindow], severity: str, objective: Fraction, run_based: bool,
           exists: bool) -> "Alerting":
        return cls(tuple(_condition(w, Fraction(objective), run_based) for w in windows if w.severity == severity),
                   run_based, exists)

    def states(self, runs: Runs, times: range) -> list[State]:
        """At each of `times`: whether the alert fires (None where a ratio on an event threshold decides) and
        the terms it is made of: for each condition, its long and its short ratio above the threshold, and
        enough failed runs in the long window (MIN_FAILED_RUNS, run-based); it fires when a condition's three
        terms hold."""
        if not self.exists or not self.conditions:
            return [(False, ())] * len(times)
        columns: list[list[bool]] = []
        unknown = [False] * len(times)
        for cond in self.conditions:
            long = runs.counts(cond.long, times)
            for counts in (long, runs.counts(cond.short, times)):
                columns.append([total > 0 and failed * cond.den > cond.num * total for failed, total in counts])
                if not self.run_based:
                    unknown = [u or cond.on_threshold(*count) for u, count in zip(unknown, counts)]
            columns.append([failed >= slo_windows.MIN_FAILED_RUNS or not self.run_based for failed, _ in long])
        rows = list(zip(*columns))
        return [(None if u else any(all(row[i:i + 3]) for i in range(0, len(row), 3)), row)
                for u, row in zip(unknown, rows)]


def _marks(known: list[tuple[int, bool, tuple[bool, ...]]]) -> Iterator[int]:
    """Indexes of `known` that follow a change: of the alert's state (every one), or of its terms from one
    combination to another for the first time (a periodic toggle of a short window is shown once)."""
    seen = set()
    for i in range(1, len(known)):
        (_, was, before), (_, now, after) = known[i - 1], known[i]
        if was != now or (before != after and (before, after) not in seen):
            seen.add((before, after))
            yield i


def pinned(times: Sequence[int], states: Sequence[State]) -> list[tuple[int, bool]]:
    """The (time, state) pairs to check: the first and the last known state, and both sides of every change
    of the state and of the first change of its terms from one combination to another: where one condition
    starts or stops holding, the alert is checked before and after even if another keeps it firing (dropping
    either would show). Unknown states (None) are skipped."""
    known = [(t, s, terms) for t, (s, terms) in zip(times, states) if s is not None]
    keep = {0, len(known) - 1} if known else set()
    for i in _marks(known):
        keep.update((i - 1, i))
    return [known[i][:2] for i in sorted(keep)]


def last_change(times: Sequence[int], states: Sequence[State]) -> int:
    """The last of `times` that `pinned` checks for a change (0 if there is none)."""
    known = [(t, s, terms) for t, (s, terms) in zip(times, states) if s is not None]
    return max([0] + [known[i][0] for i in _marks(known)])
