"""The run bridge: what connects a selftest run to the alerting (`emit`: a run report to metrics; `drill`:
a fire drill through the live Alertmanager; `verify`: the generated rule and routing tests, by promtool and amtool)."""
