"""What a fire drill found: what it confirmed, what it could not, and its one verdict."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DrillResult:
    env: str
    tier: str
    alertname: str
    steps: list[str]
    expected: list[str]
    receivers: list[str] = field(default_factory=list)
    state: str = ""
    time_to_alert: float | None = None  # push -> the alert in Alertmanager, routed and in its groups
    delivered_after: float | None = None  # push -> Alertmanager sent it, and the drill could tell it was its own
    resolved_after: float | None = None
    problem: str = ""
    unconfirmed: bool = False  # the problem is that delivery could not be told apart, not a fault found
    tenant: str = ""  # Mimir: the tenant whose Alertmanager was read
    confirmed: list[str] = field(default_factory=list)
    not_confirmed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problem

    @property
    def verdict(self) -> str:
        if self.problem:
            return "NOT CONFIRMED" if self.unconfirmed else "FAILED"
        return "OK" if self.delivered_after is not None else "routing confirmed, delivery not observable"


def lines(result: DrillResult) -> list[str]:
    """What the drill confirmed and did not, then its one-line result (`drill ENV TIER: VERDICT: ...`)."""
    out = [f"  confirmed: {text}" for text in result.confirmed]
    out += [f"  not confirmed: {text}" for text in result.not_confirmed]
    name = f"drill {result.env} {result.tier}"
    if result.problem:
        return out + [f"{name}: {result.verdict}: {result.problem}"]
    resolved = (f"resolved {result.resolved_after:.1f} s after the drill group was removed"
                if result.resolved_after is not None else "still active when the timeout ran out")
    sent = f", sent after {result.delivered_after:.1f} s" if result.delivered_after is not None else ""
    tenant = f" (tenant {result.tenant})" if result.tenant else ""
    last = (f"{name}: {result.verdict}: {result.alertname} for {', '.join(result.steps)} reached "
            f"{', '.join(result.receivers)}{tenant} after {result.time_to_alert:.1f} s{sent}; {resolved}")
    return [*out, last]
