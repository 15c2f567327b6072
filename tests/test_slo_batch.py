"""SLOs of a batch job: burn windows fitted to the run cadence (numbers worked out by hand), and the
generated promtool tests of a small spec (runs every 15m and every 1h) passing against its rules."""
from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from conftest import require_tool

from obsgen.model import slo_windows

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
slos:  # both page (a run-based SLO pages only where the spec asks): these tests work out the page by hand
  - {id: pass-rate, description: Runs pass., objective: 0.95, period: 28d, sli: {kind: pass_rate}, page: true}
  - {id: run-duration, description: Runs are fast., objective: 0.95, period: 28d,
     sli: {kind: latency, threshold_seconds: 30}, page: true}
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


# --- the scenarios, with expectations worked out by hand ----------------------------------------

STEP = 300  # a sample every 5 minutes
DAY = 86400


KEPT = 3600 // STEP  # samples of a run's own series: a Pushgateway keeps a run's group for an hour


def _counters(end: int, cadence: int, failing) -> dict[str, str]:
    """The runs as `obsgen emit` writes them: one run every `cadence` s (the first at `cadence`), each failing
    (the kernel step: a page) when `failing(t)`, each a series of its own holding its time, sampled every
    STEP from the run on for as long as the Pushgateway keeps it."""
    out = {}
    for t in range(cadence, end + 1, cadence):
        result = 'fail",outcome="page' if failing(t) else 'pass",outcome="pass'
        out[f'selftest_run_timestamp_seconds{{env="{{env}}",result="{result}",run="{t}"}}'] = \
            f"_x{t // STEP} {t}x{KEPT - 1}"
    return out


def _promtool(tmp_path: Path, out: Path, env: str, tests: list[dict]) -> None:
    rules = out / env / "prometheus/slo-pass-rate.rules.yaml"
    # the recording groups first at each evaluation, as the generated tests order them (a live server reads
    # the records of the previous evaluation instead: one interval later)
    order = ["slo-pass-rate-sli", "slo-pass-rate-period", "slo-pass-rate-alerts"]
    # evaluated every 5m (the samples' interval): every check falls on one, and the run-based rules read only
    # the runs' own series, never an earlier evaluation
    doc = {"rule_files": [str(rules)], "evaluation_interval": "5m", "group_eval_order": order, "tests": tests}
    path = tmp_path / f"{env}.test.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = subprocess.run([require_tool("promtool"), "test", "rules", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _series(counters: dict[str, str], env: str) -> list[dict]:
    return [{"series": s.replace("{env}", env), "values": v} for s, v in counters.items()]


@pytest.fixture
def mini(run_cli, tmp_path: Path) -> Path:
    spec = tmp_path / "mini.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    assert run_cli("build", "--spec", str(spec), "--out", str(out)).code == 0
    return out


@pytest.mark.parametrize(("env", "cadence", "windows"), [
    # windows by hand (95 % over 28d): every 15m keeps the workbook's but the 5m short one (1.5 x 15m -> 23m);
    # every hour needs 2h short windows and a 2h long one for the first page (see the tables above)
    ("dev", 900, ["23m", "30m", "1h", "2h", "6h", "1d", "3d"]),
    ("prod", 3600, ["2h", "6h", "1d", "3d"]),
])
def test_three_days_of_passing_runs_give_numbers_at_every_evaluation(mini: Path, tmp_path: Path, env: str,
                                                                     cadence: int, windows: list[str]) -> None:
    end = 3 * DAY
    matchers = f'env="{env}",slo="pass-rate"'
    checks = []
    for at in range(cadence, end + 1, 3 * 3600):  # from the first run on, every 3 hours
        for window in windows:
            checks.append({"expr": f"slo:sli_error:ratio_rate{window}{{{matchers}}}", "eval_time": f"{at}s",
                           "exp_samples": [{"labels": f"slo:sli_error:ratio_rate{window}{{{matchers}}}",
                                            "value": 0}]})
        checks.append({"expr": f"slo:sli_error:ratio_period{{{matchers}}}", "eval_time": f"{at}s",
                       "exp_samples": [{"labels": f"slo:sli_error:ratio_period{{{matchers}}}", "value": 0}]})
        checks.append({"expr": f"slo:error_budget_remaining:ratio{{{matchers}}}", "eval_time": f"{at}s",
                       "exp_samples": [{"labels": f"slo:error_budget_remaining:ratio{{{matchers}}}", "value": 1}]})
    alerts = [{"alertname": name, "eval_time": f"{at}s", "exp_alerts": []}
              for at in range(cadence, end + 1, 6 * 3600) for name in ("SLOBurnRatePage", "SLOBurnRateTicket")]
    _promtool(tmp_path, mini, env, [{"interval": "5m", "input_series": _series(_counters(end, cadence, lambda t: False),
                                                                                  env),
                                     "promql_expr_test": checks, "alert_rule_test": alerts}])


def test_two_hours_of_failing_runs_every_15m_page_without_a_gap_and_clear_one_run_later(mini: Path,
                                                                                         tmp_path: Path) -> None:
    # dev, every 15m, 95 % over 28d. The pages (README): 13.44x over 1h and 23m (threshold 0.672) or 5.6x over
    # 6h and 30m (threshold 0.28), each with at least two failed runs in its long window. Runs at 1d, 1d15m, ...,
    # 1d1h45m fail (eight runs). Before, at 1d25m, the hour holds 2 failed of 4 (0.5) and 6h 2 of 24: no page.
    # At 1d30m the hour holds 3 of 4 (0.75) and the 23m window 2 of 2: it pages, and while runs fail every
    # window holds failed runs above both thresholds. The run at 1d2h passes: the 30m window still holds the
    # failed 1d1h45m run (1 of 2, 0.5 > 0.28) with 8 of 24 failed in 6h (0.33 > 0.28), so the page goes on
    # until the run at 1d2h15m pushes it out: clear one cadence after passing runs resume, and quiet after.
    onset, stop, end = DAY, DAY + 7200, DAY + 4 * 3600
    series = _series(_counters(end, 900, lambda t: onset <= t < stop), "dev")
    labels = {"alertname": "SLOBurnRatePage", "env": "dev", "service": "mini", "severity": "critical",
              "slo": "pass-rate", "slo_alert": "page", "step_id": "all", "tier": "all"}
    firing = range(onset + 1800, stop + 900, STEP)
    quiet = [onset - STEP, onset + 1500, stop + 900, stop + 1800, stop + 3600]
    annotations = {  # the README's texts for this spec: no remediation or runbook anchor of its own, no Grafana
        "summary": "SLO pass-rate in dev is burning its error budget too fast (page)",
        "description": "Runs pass. Objective 95 % over 28d, runs every 15m; burn rate above 13.44x over 1h and 23m "
                       "(2 % of the budget; fitted to the cadence from the workbook's 1h/5m, 2 %); or 5.6x over 6h "
                       "and 30m.",
        "remediation": "Find what consumes the error budget on the dashboard.",
        "runbook_url": "https://runbooks.example.com/mini"}
    alerts = [{"alertname": "SLOBurnRatePage", "eval_time": f"{at}s",
               "exp_alerts": [{"exp_labels": labels, "exp_annotations": annotations}] if at in firing else []}
              for at in [*quiet, *firing]]
    _promtool(tmp_path, mini, "dev", [{"interval": "5m", "input_series": series, "alert_rule_test": alerts}])


def test_hourly_runs_one_failure_alerts_nothing_and_one_in_six_tickets_without_paging(mini: Path,
                                                                                      tmp_path: Path) -> None:
    # prod, every hour, 95 % over 28d (budget 33.6 runs). Pages: 10x over 2h (threshold 0.5) or 5.6x over 6h and
    # 2h (0.28); tickets: 2.8x over 1d and 2h (0.14) or 0.9333x over 3d and 6h (0.0467); each with at least two
    # failed runs in its long window.
    # One failed run at 1d among passing ones: no window ever holds two failed runs: nothing fires.
    # One run in six failing (at 6h, 12h, ...): every 6h window holds exactly one failed run of six (0.167) and
    # the 3d window the same share with at least two failed runs from 12h on: the 3d/6h ticket fires from then.
    # No page: a 2h window holds at most one failed run, and 0.167 over 6h stays under 0.28.
    labels = {"alertname": "SLOBurnRateTicket", "env": "prod", "service": "mini", "severity": "warning",
              "slo": "pass-rate", "slo_alert": "ticket", "step_id": "all", "tier": "all"}
    annotations = {
        "summary": "SLO pass-rate in prod is burning its error budget too fast (ticket)",
        "description": "Runs pass. Objective 95 % over 28d, runs every 1h; burn rate above 2.8x over 1d and 2h; or "
                       "0.9333x over 3d and 6h.",
        "remediation": "Find what consumes the error budget on the dashboard.",
        "runbook_url": "https://runbooks.example.com/mini"}
    one = _series(_counters(2 * DAY, 3600, lambda t: t == DAY), "prod")
    quiet = [{"alertname": name, "eval_time": f"{at}s", "exp_alerts": []}
             for at in range(DAY, 2 * DAY + 1, 3600) for name in ("SLOBurnRatePage", "SLOBurnRateTicket")]
    six = _series(_counters(3 * DAY, 3600, lambda t: t % (6 * 3600) == 0), "prod")
    checks = [{"alertname": "SLOBurnRatePage", "eval_time": f"{at}s", "exp_alerts": []}
              for at in range(3600, 3 * DAY + 1, 2 * 3600)]
    checks += [{"alertname": "SLOBurnRateTicket", "eval_time": f"{at}s",
                "exp_alerts": [{"exp_labels": labels, "exp_annotations": annotations}]}
               for at in range(DAY, 3 * DAY + 1, 6 * 3600)]
    _promtool(tmp_path, mini, "prod", [{"interval": "5m", "input_series": one, "alert_rule_test": quiet},
                                       {"interval": "5m", "input_series": six, "alert_rule_test": checks}])
