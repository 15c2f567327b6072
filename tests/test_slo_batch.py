"""SLOs of a batch job: burn windows fitted to the run cadence (numbers worked out by hand), and the
generated promtool tests of a small spec (runs every 15m and every 1h) passing against its rules."""
from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

from conftest import require_tool

from obsgen import slo_windows

P28 = 28 * 86400
O95 = Fraction(95, 100)


def _table(cadence_s: int) -> list[tuple[str, str, str, Fraction, Fraction]]:
    return [(w.severity, w.long, w.short, w.share, w.factor) for w in slo_windows.fit(P28, O95, cadence_s)]


def test_every_15m_keeps_the_workbook_except_the_5m_short_window() -> None:
    # B = 28d * 0.05 / 15m = 134.4 runs; 1/B < 2 %: shares stay; 1.5 * 15m = 22.5m -> 23m short window;
    # enough runs for 2 %: floor(0.02 * 134.4) + 1 = 3 runs = 45m < 1h. Factors 2 % * 672h / 1h = 13.44 ...
    assert slo_windows.budget_runs(P28, O95, 900) == Fraction(672, 5)
    assert _table(900) == [
        ("page", "1h", "23m", Fraction(2, 100), Fraction(1344, 100)),
        ("page", "6h", "30m", Fraction(5, 100), Fraction(56, 10)),
        ("ticket", "1d", "2h", Fraction(10, 100), Fraction(28, 10)),
        ("ticket", "3d", "6h", Fraction(10, 100), Fraction(28, 30)),
    ]


def test_every_hour_raises_the_page_share_to_one_run() -> None:
    # B = 33.6 runs; 1/B = 5/168 > 2 %; short >= 1.5h -> 2h; long >= (floor(1) + 1) * 1h = 2h:
    # factor = (5/168) * 672h / 2h = 10, threshold 10 * 0.05 = 0.5: two failing runs of two, never one.
    # 6h page: 5 % > 1/B; short 2h; (floor(1.68) + 1) * 1h = 2h < 6h: factor 5.6 as in the workbook.
    table = _table(3600)
    assert table[0] == ("page", "2h", "2h", Fraction(5, 168), Fraction(10))
    assert table[1] == ("page", "6h", "2h", Fraction(5, 100), Fraction(56, 10))
    assert table[2] == ("ticket", "1d", "2h", Fraction(10, 100), Fraction(28, 10))
    assert slo_windows.fit(P28, O95, 3600)[0].threshold(O95) == Fraction(1, 2)


def test_at_least_every_2h_lengthens_the_first_page_window() -> None:
    # B = 16.8; 1/B = 5/84 > 5 %; short 3h; long (floor(1) + 1) * 2h = 4h; factor (5/84) * 672 / 4 = 10;
    # 6h page: share 5/84, factor (5/84) * 672 / 6 = 20/3; tickets: short 3h (1d) and 6h (3d).
    assert _table(7200) == [
        ("page", "4h", "3h", Fraction(5, 84), Fraction(10)),
        ("page", "6h", "3h", Fraction(5, 84), Fraction(20, 3)),
        ("ticket", "1d", "3h", Fraction(10, 100), Fraction(28, 10)),
        ("ticket", "3d", "6h", Fraction(10, 100), Fraction(28, 30)),
    ]
    assert slo_windows.windows_used(slo_windows.fit(P28, O95, 7200)) == ["3h", "4h", "6h", "1d", "3d"]


def test_one_failing_run_never_exceeds_a_share() -> None:
    for cadence in (300, 900, 3600, 7200, 6 * 3600, 86400):
        for w in slo_windows.fit(P28, O95, cadence):
            one_run = Fraction(cadence, int(slo_windows.durations.seconds(w.long)))  # 1 of L/T runs
            assert one_run <= w.threshold(O95), (cadence, w)


SPEC = """
apiVersion: obsgen/v1
service: {name: mini, owner: team-mini, runbook_base_url: https://runbooks.example.com/mini}
tiers:
  - {id: kernel, severity: critical, channel: pager}
steps:
  - {id: build, tier: kernel, remediation: Fix the build.}
channels:
  - {id: pager, type: pagerduty}
environments:
  - name: dev
    cadence: {every: 15m}
    channels: {pager: {routing_key_file: /run/secrets/pd-key}}
  - name: prod
    cadence: {every: 1h}
    channels: {pager: {routing_key_file: /run/secrets/pd-key}}
slos:
  - {id: pass-rate, description: Runs pass., objective: 0.95, period: 28d, sli: {kind: pass_rate}}
  - {id: run-duration, description: Runs are fast., objective: 0.95, period: 28d,
     sli: {kind: latency, threshold_seconds: 30}}
slo_alerting: {page_channel: pager, ticket_channel: pager}
alerts:
  - {name: MiniKernelFailed, kind: step_failed, tier: kernel}
"""


def test_generated_slo_rule_tests_pass_for_runs_every_15m_and_every_hour(run_cli, tmp_path: Path) -> None:
    spec = tmp_path / "mini.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    result = run_cli("build", "--spec", str(spec), "--out", str(out))
    assert result.code == 0, result.err
    for env in ("dev", "prod"):
        tests = sorted((out / env / "tests/rules").glob("slo-*.test.yaml"))
        assert len(tests) == 2
        proc = subprocess.run([require_tool("promtool"), "test", "rules", *map(str, tests)], capture_output=True, text=True,
                              cwd=tests[0].parent)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        text = (out / env / "prometheus/slo-pass-rate.rules.yaml").read_text()
        assert "rate(" not in text.replace("increase(", "") and "avg_over_time" not in text
