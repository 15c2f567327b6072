"""Burn-rate windows fitted to a batch job's run cadence (pure arithmetic, shared by rules, OpenSLO, docs, tests).

The SRE workbook's multiwindow alerts assume a steady stream of events. A batch job runs every T seconds, so
for an SLO with period P and budget b = 1 - objective the whole budget is B = P*b/T runs. Each workbook window
(severity, long L0, short S0, budget share s0) becomes:

- share  s = max(s0, 1/B): one failing run alone never exceeds a share;
- short  S = max(S0, 1.5*T rounded up to a whole minute, or hour from 1h): it holds a run while runs continue;
- long   L = max(L0, S, (floor(s*B) + 1)*T) rounded up likewise: enough runs fit to reach the threshold;
- factor = s*P/L, threshold = factor*b (the error ratio both windows must exceed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from obsgen.model import durations

# Multiwindow multi-burn-rate alerts (Google SRE workbook): severity, long window,
# short window, share of the error budget consumed in the long window.
WORKBOOK: tuple[tuple[str, str, str, Fraction], ...] = (
    ("page", "1h", "5m", Fraction(2, 100)),
    ("page", "6h", "30m", Fraction(5, 100)),
    ("ticket", "1d", "2h", Fraction(10, 100)),
    ("ticket", "3d", "6h", Fraction(10, 100)),
)
MIN_BUDGET_RUNS = 2  # a budget of fewer runs than this cannot tell a bad run from a bad SLO
MIN_FAILED_RUNS = 2  # a burn-rate alert also needs this many failed runs in its long window
TIE = Fraction(1, 10**9)  # a run-counting error ratio must exceed a threshold by this much to be above it


@dataclass(frozen=True)
class BurnWindow:
    """One burn-rate condition as used: both windows' error ratios above `factor * budget`."""

    severity: str  # page | ticket
    long: str  # duration text, e.g. "1h"
    short: str
    share: Fraction  # of the error budget consumed in the long window at `factor`
    factor: Fraction
    workbook: tuple[str, str, Fraction]  # the workbook's (long, short, share) this one was fitted from

    @property
    def changed(self) -> bool:
        """Whether the cadence moved a window or the share away from the workbook's."""
        return (self.long, self.short, self.share) != self.workbook

    def threshold(self, objective: Fraction) -> Fraction:
        return self.factor * (1 - Fraction(objective))


def readable_ceil(seconds: float) -> int:
    """`seconds` rounded up to a whole minute below an hour, to a whole hour from an hour."""
    unit = 60 if seconds < 3600 else 3600
    return int(math.ceil(Fraction(seconds) / unit)) * unit


def budget_runs(period_s: float, objective: Fraction, cadence_s: float) -> Fraction:
    """B = P*b/T: the error budget of one period counted in runs."""
    return Fraction(int(period_s)) * (1 - Fraction(objective)) / Fraction(cadence_s)


@lru_cache(maxsize=256)  # every SLO panel of every dashboard asks again
def fit(period_s: float, objective: Fraction, cadence_s: float) -> tuple[BurnWindow, ...]:
    """The workbook's burn windows fitted to a job that runs every `cadence_s` seconds."""
    if cadence_s <= 0:
        raise ValueError("the cadence must be positive")
    runs = budget_runs(period_s, objective, cadence_s)
    period = Fraction(int(period_s))
    short_floor = readable_ceil(Fraction(3, 2) * Fraction(cadence_s))
    fitted = []
    for severity, long0, short0, share0 in WORKBOOK:
        share = max(share0, 1 / runs)
        short = max(int(durations.seconds(short0)), short_floor)
        enough = (math.floor(share * runs) + 1) * Fraction(cadence_s)
        long = readable_ceil(max(int(durations.seconds(long0)), short, enough))
        fitted.append(BurnWindow(severity, durations.format_seconds(long), durations.format_seconds(short),
                                 share, share * period / long, (long0, short0, share0)))
    return tuple(fitted)


@lru_cache(maxsize=64)
def workbook(period_s: float) -> tuple[BurnWindow, ...]:
    """The workbook's burn windows as they are, for an SLI that counts events (a request stream): over 30d
    the factors are 14.4, 6, 3 and 1."""
    period = Fraction(int(period_s))
    return tuple(BurnWindow(severity, long0, short0, share0, share0 * period / int(durations.seconds(long0)),
                            (long0, short0, share0)) for severity, long0, short0, share0 in WORKBOOK)


def windows_used(fitted: tuple[BurnWindow, ...]) -> list[str]:
    """Every distinct window of `fitted`, shortest first."""
    return sorted({w for b in fitted for w in (b.long, b.short)}, key=durations.seconds)


def describe(window: BurnWindow, times: str = "x") -> str:
    """`13.44x over 1h and 5m`, with the workbook's windows named where the cadence changed them."""
    text = f"{_num(window.factor)}{times} over {window.long}"
    if window.long != window.short:
        text += f" and {window.short}"
    if window.changed:
        long0, short0, share0 = window.workbook
        text += (f" ({_num(window.share * 100)} % of the budget; fitted to the cadence from the workbook's "
                 f"{long0}/{short0}, {_num(share0 * 100)} %)")
    return text


def _num(value: Fraction) -> str:
    """A short number for texts: 13.44, 10, 6.67."""
    return f"{float(value):.4g}"
