"""SLIs on requests: a `ratio` SLI counts events unless the spec says it counts runs. The run cadence is a
property of the selftest's runs, not of a request stream: an event SLI gets the SRE workbook's windows and
factors as they are (no fitting, no two-run budget rule), as Sloth gives them.

Sloth's getting-started SLO (service myservice, requests-availability: 99.9 % over Sloth's default 30d,
errors `code=~"(5..|429)"` over all requests) is added to the reference spec. Sloth's alerts for it,
from its documentation: page when the 1h and 5m error ratios both exceed 14.4 x the budget, or the 6h and
30m ratios 6 x; ticket when 1d and 2h exceed 3 x, or 3d and 6h 1 x.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import REFERENCE_SPEC, ROOT

from obsgen.model import slo_windows

SLOTH = {
    "id": "requests-availability",
    "description": "Common SLO based on availability for HTTP request responses.",
    "objective": 0.999,
    "period": "30d",
    "sli": {
        "kind": "ratio",
        "error_query": 'sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[{{window}}]))',
        "total_query": 'sum(rate(http_request_duration_seconds_count{job="myservice"}[{{window}}]))',
    },
}
# (severity, long, short, factor) of Sloth's page and ticket alerts.
SLOTH_ALERTS = [("page", "1h", "5m", "14.4"), ("page", "6h", "30m", "6"),
                ("ticket", "1d", "2h", "3"), ("ticket", "3d", "6h", "1")]


def _spec(tmp_path: Path, **sli: str) -> Path:
    data = yaml.safe_load(REFERENCE_SPEC.read_text())
    data["slos"].append({**SLOTH, "sli": {**SLOTH["sli"], **sli}})
    path = tmp_path / "selftest.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_workbook_windows_over_30d_are_sloths() -> None:
    windows = slo_windows.workbook(30 * 86400)
    assert [(w.severity, w.long, w.short, float(w.factor)) for w in windows] == \
        [(s, long, short, float(f)) for s, long, short, f in SLOTH_ALERTS]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from obsgen.cli import main

    tmp = tmp_path_factory.mktemp("sloth")
    out = tmp / "generated"
    assert main(["build", "--spec", str(_spec(tmp)), "--out", str(out), "-q"]) == 0
    return out


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_sloths_example_slo_builds_in_every_environment_with_sloths_windows_and_factors(built: Path, env: str) -> None:
    rules = yaml.safe_load((built / env / "prometheus" / "slo-requests-availability.rules.yaml").read_text())
    alerts = {r["labels"]["slo_alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    for severity, long, short, factor in SLOTH_ALERTS:
        expr = alerts[severity]["expr"]
        for window in (long, short):
            sel = f'slo:sli_error:ratio_rate{window}{{env="{env}",slo="requests-availability"}}'
            assert f"{sel} > ({factor} * 0.001)" in expr, (severity, window, expr)
    # no two-failed-runs clause: requests are not runs
    assert "increase(" not in alerts["page"]["expr"] and "increase(" not in alerts["ticket"]["expr"]
    records = {r["record"]: r for g in rules["groups"] for r in g["rules"] if "record" in r}
    assert records["slo:sli_error:ratio_rate5m"]["expr"] == (
        '(sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[5m])))\n/\n'
        '((sum(rate(http_request_duration_seconds_count{job="myservice"}[5m]))) > 0)')
    assert "counts events" in alerts["page"]["annotations"]["description"]


def test_generated_rule_tests_feed_an_event_slo_a_request_stream() -> None:
    """The large test spec's custom-ratio SLO (errors and requests of their own metrics; promtool runs its
    generated tests with every other in test_rule_tests): events every sample, not runs at the cadence."""
    tests = sorted(ROOT.glob("tests/goldens/large/*/tests/rules/slo-custom-ratio.test.yaml"))
    assert tests
    for test in tests:
        names = [g["name"] for g in yaml.safe_load(test.read_text())["tests"]]
        assert names and all(": SLO custom-ratio, events every 5m: " in name for name in names), names


def test_a_ratio_that_counts_runs_gets_no_burn_alerts_where_its_budget_is_under_two_runs(run_cli,
                                                                                        tmp_path: Path) -> None:
    spec = _spec(tmp_path, counts="runs")
    result = run_cli("validate", "--spec", str(spec))
    assert result.code == 0
    # staging runs at least every 2h: 30d * 0.001 / 2h = 0.36 runs; dev every 15m: 2.88 runs
    assert ("obsgen: note: SLO requests-availability in staging (runs irregularly, at least every 2h): its error "
            "budget, 0.999 over 30d, is 0.36 run(s), too few to tell a bad run from a bad SLO") in result.err
    assert "SLO requests-availability in dev" not in result.err


def test_counts_events_on_a_run_sli_is_refused(run_cli, tmp_path: Path) -> None:
    data = yaml.safe_load(REFERENCE_SPEC.read_text())
    data["slos"][0]["sli"]["counts"] = "events"
    spec = tmp_path / "selftest.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run_cli("validate", "--spec", str(spec))
    assert result.code == 2
    assert "a pass_rate SLI counts the selftest's runs; counts: events applies only to kind ratio" in result.err


def test_run_based_slos_page_only_where_the_spec_asks_and_event_slos_page_by_default(tmp_path: Path) -> None:
    from obsgen.spec import load_spec

    data = yaml.safe_load(_spec(tmp_path).read_text())
    by_id = {s.id: s for s in load_spec(str(_spec(tmp_path))).slos}
    assert (by_id["pass-rate"].page, by_id["run-duration"].page, by_id["requests-availability"].page) == \
        (False, False, True)
    data["slos"][0]["page"] = True
    data["slos"][2]["page"] = False
    path = tmp_path / "asked.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    by_id = {s.id: s for s in load_spec(str(path)).slos}
    assert (by_id["pass-rate"].page, by_id["requests-availability"].page) == (True, False)


def test_a_new_environments_first_failed_run_spends_one_run_of_budget_not_nineteen_budgets(tmp_path: Path) -> None:
    """dev runs every 15m; 95 % over 28d is B = 28d * 0.05 / 15m = 134.4 runs of budget. The first run of a new
    environment fails: the budget remaining is 1 - 1/134.4 = 0.99256 (it read 1 - 1/0.05 = -19 before), and the
    run counts from its first sample (increase() used to skip a new series' first sample)."""
    import subprocess

    from conftest import require_tool

    rules = ROOT / "generated" / "dev" / "prometheus" / "slo-pass-rate.rules.yaml"
    run = 'selftest_run_timestamp_seconds{env="dev",outcome="page",result="fail",run="600"}'
    test = {"rule_files": [str(rules)], "evaluation_interval": "5m", "tests": [{
        "interval": "5m",
        # the first run ever, at 10m, as obsgen emit writes it: a series of its own, scraped for an hour
        "input_series": [{"series": run, "values": "_x2 600x11"}],
        "promql_expr_test": [{"expr": 'slo:error_budget_remaining:ratio{env="dev",slo="pass-rate"}', "eval_time": "30m",
                              "exp_samples": [{"labels": 'slo:error_budget_remaining:ratio{env="dev",slo="pass-rate"}',
                                               "value": 1 - 1 / 134.4}]}],
    }]}
    path = tmp_path / "budget.test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    proc = subprocess.run([require_tool("promtool"), "test", "rules", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_daily_prod_validates_with_the_reference_objectives_and_two_failing_days_page(run_cli,
                                                                                       tmp_path: Path) -> None:
    """prod declared daily: 95 % over 28d is 1.4 runs of budget. It validates (a note says prod gets no burn-rate
    alerts for the SLOs), and failing days page through the step alerts: core-checks fails on day 1 and day 2
    (the runs as obsgen emit writes them) and SelftestKernelStepFailed fires by the end of day 2."""
    import subprocess

    from conftest import require_tool

    data = yaml.safe_load(REFERENCE_SPEC.read_text())
    next(e for e in data["environments"] if e["name"] == "prod")["cadence"] = {"every": "1d"}
    spec = tmp_path / "selftest.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run_cli("validate", "--spec", str(spec))
    assert result.code == 0, result.err
    assert result.err.count("obsgen: note: SLO ") == 2 and "in prod (runs every 1d)" in result.err
    out = tmp_path / "generated"
    assert run_cli("build", "--spec", str(spec), "--out", str(out), "-q").code == 0
    slo_rules = yaml.safe_load((out / "prod" / "prometheus" / "slo-pass-rate.rules.yaml").read_text())
    assert not [r for g in slo_rules["groups"] for r in g["rules"] if "alert" in r]
    labels = 'env="prod",job="selftest",step_id="core-checks",tier="kernel"'
    day = 86400
    test = {"rule_files": [str(out / "prod" / "prometheus" / f"{name}.rules.yaml") for name in ("selftest", "selftest-steps")],
            "evaluation_interval": "1h",
            "tests": [{"interval": "1h", "input_series": [
                # passed on day 0, failed on day 1 and day 2 (a daily run at midnight)
                {"series": f"selftest_step_last_failure_timestamp_seconds{{{labels}}}",
                 "values": f"_x23 {day}x23 {2 * day}x3"},
                {"series": f"selftest_step_last_pass_timestamp_seconds{{{labels}}}", "values": "0x50"}],
                "promql_expr_test": [{
                    "expr": 'count(ALERTS{alertname="SelftestKernelStepFailed",env="prod",alertstate="firing"})',
                    "eval_time": f"{2 * day - 3600}s", "exp_samples": [{"labels": "{}", "value": 1}]}]}]}
    path = tmp_path / "daily.test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    proc = subprocess.run([require_tool("promtool"), "test", "rules", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
