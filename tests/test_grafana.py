"""The Grafana target: dashboards that pass the current Grafana schema, built with grafanalib."""
from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import jsonschema
import promql_parser
import pytest

from obsgen.compile import conventions
from obsgen.model.durations import seconds
from obsgen import model as m
from obsgen.compile.grafana import PANELS, build_dashboard, compile_grafana, grafanalib_dashboard
from obsgen.compile.grafana_schema import modernise

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "obsgen/schemas/grafana/dashboard.jsonschema.json"  # provenance: its NOTICE
REFERENCE_SPEC = ROOT / "specs/selftest.yaml"
OTHER_SPECS = ("minimal.yaml", "large.jsonnet")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_MACROS = re.compile(r"\$__(range|rate_interval|interval)\b")
RANGE_SECONDS = "$__range_s"  # Grafana's range in seconds: replaced before GRAFANA_MACROS


def _macros(expr: str, rng: str) -> str:
    """An expression as Grafana sends it over the range `rng`: $__range_s its seconds, the others `rng`."""
    return GRAFANA_MACROS.sub(rng, expr.replace(RANGE_SECONDS, f"{seconds(rng):g}"))


def hand_model(*, slos: tuple[m.SLO, ...] | None = None, panels: tuple[str, ...] = tuple(PANELS)) -> m.Model:
    """A small model built by hand: two steps, tiers kernel and governance, one environment dev, two SLOs."""
    if slos is None:
        slos = (
            m.SLO("pass-rate", "Runs pass.", Fraction(95, 100), "28d", m.SLI("pass_rate"), "Fix it.", "slo-pass-rate"),
            m.SLO("run-duration", "Runs are fast.", Fraction(95, 100), "28d", m.SLI("latency", threshold_seconds=30),
                  "Profile it.", "slo-run-duration"),
        )
    dev = m.Environment(
        name="dev", description="Developer machines.",
        policy=m.Policy(tolerance=(("governance", 3),), page_on_any_failure=False),
        channels=(m.ChannelTarget("pager", routing_key_file="/etc/secrets/pd"),),
        backends=(m.Backend("grafana", "grafana", "http://grafana.dev:3000", token_env="TOKEN"),),
    )
    return m.Model(
        api_version="obsgen/v1",
        service=m.Service("selftest", "platform-team", "https://docs.example.com/selftest.md"),
        metrics=m.Metrics("env", "selftest_step_failed", "selftest_run_duration_seconds",
                          "selftest_last_run_timestamp_seconds"),
        tiers=(
            m.Tier("kernel", "critical", "pager", "incident-kernel-failure", "Always fatal."),
            m.Tier("governance", "warning", "pager", "incident-governance-failure", "Governance drift."),
        ),
        steps=(
            m.Step("core-checks", "kernel", "correctness", "Code quality compromised", "core", "make doctor"),
            m.Step("bdd", "governance", "correctness", "BDD scenarios malformed", "bdd", "fix the scenario"),
        ),
        channels=(m.Channel("pager", "pagerduty", "Page on-call."),),
        environments=(dev,),
        slos=slos,
        slo_alerting=m.SLOAlerting("pager", "pager"),
        alerts=(),
        dashboards=(m.Dashboard("overview", "Selftest overview", ("selftest", "obsgen", "selftest"), panels),),
        source="hand.yaml",
    )


def reference_model() -> m.Model | None:
    """The reference spec through the spec loader, or None while the loader does not exist."""
    try:
        from obsgen.spec import load_spec
    except ImportError:
        return None
    return load_spec(str(REFERENCE_SPEC))


@functools.cache
def cases() -> list[tuple[m.Model, m.Environment]]:
    """(model, environment) for the hand-built model and for every environment of the reference spec."""
    models = [hand_model(), reference_model()]
    return [(model, env) for model in models if model is not None for env in model.environments]


def dashboards() -> list[tuple[m.Model, m.Environment, m.Dashboard, dict]]:
    return [(model, env, d, build_dashboard(model, env, d)) for model, env in cases() for d in model.dashboards]


def exprs(dashboard: dict) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA_PATH.read_text()))


def test_dashboard_validates_against_current_grafana_schema(validator):
    for _model, env, dash, out in dashboards():
        errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(out)]
        assert errors == [], f"{env.name}/{dash.id}"


@pytest.mark.parametrize("name", OTHER_SPECS)
def test_every_dashboard_of_the_other_test_specs_validates(validator, name: str):
    from obsgen.spec import load_spec

    model = load_spec(str(ROOT / "tests/specs" / name))
    for env in model.environments:
        for dash in model.dashboards:
            out = build_dashboard(model, env, dash)
            errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(out)]
            assert errors == [], f"{name}: {env.name}/{dash.id}"


def test_artifact_content_is_the_validated_dashboard_at_env_grafana_path(validator):
    for model, env in cases():
        artifacts = compile_grafana(model, env)
        assert [a.path for a in artifacts] == [f"{env.name}/grafana/{d.id}.json" for d in model.dashboards]
        for artifact, dash in zip(artifacts, model.dashboards):
            assert json.loads(artifact.content) == build_dashboard(model, env, dash)
            assert list(validator.iter_errors(json.loads(artifact.content))) == []


def test_raw_grafanalib_output_does_not_validate(validator):
    for model, env in cases():
        if not model.dashboards:
            continue
        raw = grafanalib_dashboard(model, env, model.dashboards[0])
        assert raw["schemaVersion"] == 12
        assert list(validator.iter_errors(raw)), "the transform should be what makes the dashboard valid"


def test_modernise_does_not_change_its_input():
    model = hand_model()
    env = model.environments[0]
    raw = grafanalib_dashboard(model, env, model.dashboards[0])
    before = copy.deepcopy(raw)
    modernise(raw)
    assert raw == before


def test_dashboard_uses_current_schema_version_and_no_instance_fields():
    for _model, _env, _dash, out in dashboards():
        assert out["schemaVersion"] == 39
        assert out.get("id") is None
        for key in ("version", "rows", "style", "hideControls", "__inputs", "sharedCrosshair", "gnetId"):
            assert key not in out


def test_dashboard_uid_is_stable_and_at_most_40_characters():
    for model, env, dash, out in dashboards():
        assert out["uid"] == conventions.dashboard_uid(model, env, dash.id)
        assert 0 < len(out["uid"]) <= 40
        assert build_dashboard(model, env, dash)["uid"] == out["uid"]


def test_reference_spec_compiles_one_dashboard_per_environment():
    ref = reference_model()
    if ref is None:
        pytest.skip("obsgen.spec.load_spec is not available yet")
    paths = [a.path for env in ref.environments for a in compile_grafana(ref, env)]
    assert paths == [f"{env}/grafana/selftest-overview.json" for env in ("dev", "staging", "prod")]


def test_dashboard_uids_differ_between_environments():
    ref = reference_model()
    if ref is None:
        pytest.skip("obsgen.spec.load_spec is not available yet")
    uids = [build_dashboard(ref, env, d)["uid"] for env in ref.environments for d in ref.dashboards]
    assert len(set(uids)) == len(uids)


def test_title_names_the_environment_and_tags_carry_the_owned_tag_and_the_marker_once():
    for model, env, dash, out in dashboards():
        assert out["title"] == f"{dash.title} ({env.name})"
        marker = f"obsgen:{model.service.name}:{env.name}"  # this service's and environment's marker
        assert out["tags"] == sorted(set(dash.tags) | {conventions.OWNED_TAG, marker})


def test_panel_ids_are_unique_and_numbered_1_to_n_in_spec_order():
    for _model, _env, dash, out in dashboards():
        assert [p["id"] for p in out["panels"]] == list(range(1, len(dash.panels) + 1))


def test_panels_fit_the_24_column_grid_without_overlapping():
    for _model, _env, _dash, out in dashboards():
        cells = set()
        for p in out["panels"]:
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & mine, p["title"]
            cells |= mine


def test_every_panel_and_target_uses_the_datasource_variable_object():
    for _model, _env, _dash, out in dashboards():
        for p in out["panels"]:
            assert p["datasource"] == DATASOURCE
            assert p["targets"], p["title"]
            for t in p["targets"]:
                assert t["datasource"] == DATASOURCE


def test_dashboard_has_a_prometheus_datasource_template_variable():
    for _model, _env, _dash, out in dashboards():
        variables = {v["name"]: v for v in out["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        assert isinstance(out["annotations"]["list"], list)


def test_a_multi_value_step_variable_from_the_step_ids_narrows_the_per_step_panels():
    for model, env, _dash, out in dashboards():
        variables = {v["name"]: v for v in out["templating"]["list"]}
        step = variables["step"]  # the URL parameter var-step=<step_id> sets it
        assert (step["type"], step["multi"], step["includeAll"]) == ("query", True, True)
        assert step["current"]["value"] == ["$__all"] and step["allValue"] == ".*"
        assert step["datasource"] == DATASOURCE
        assert step["query"] == f'label_values({model.metrics.step_failed}{{{conventions.run_matchers(model, env)}}}, step_id)'
        per_step = {"Failures by step", "Recent failures (24 h)", "Time since last failure"}
        for p in out["panels"]:
            narrowed = ['step_id=~"$step"' in t["expr"] for t in p["targets"]]
            assert all(narrowed) if p["title"] in per_step else not any(narrowed), p["title"]


def test_per_step_panels_count_with_the_failure_counter_never_gauge_samples():
    model = hand_model()
    env = model.environments[0]
    for title in ("Failures by step", "Recent failures (24 h)"):
        [count] = [t["expr"] for t in _panel(model, env, title)["targets"] if "increase(" in t["expr"]
                   and model.metrics.step_failures_total in t["expr"] and "last_run" not in t["expr"]]
        assert "sum_over_time" not in count and model.metrics.step_failed not in count


def test_compiling_twice_yields_identical_bytes():
    for model, env in cases():
        assert compile_grafana(model, env) == compile_grafana(model, env)


def test_every_panel_kind_in_the_spec_produces_one_panel_with_a_distinct_title():
    for _model, _env, dash, out in dashboards():
        titles = [p["title"] for p in out["panels"]]
        assert len(titles) == len(dash.panels)
        assert len(set(titles)) == len(titles)
        assert all(p.get("description") for p in out["panels"])


def test_every_promql_expression_parses():
    for _model, env, dash, out in dashboards():
        for expr in exprs(out):
            try:
                promql_parser.parse(_macros(expr, "5m"))
            except ValueError as err:
                pytest.fail(f"{env.name}/{dash.id}: {expr!r}: {err}")


def test_every_query_filters_on_the_environment():
    for model, env, _dash, out in dashboards():
        for expr in exprs(out):
            assert conventions.env_matcher(model, env) in expr, expr


def _mapped(panel: dict, value: float) -> str:
    """The text a stat panel shows for `value` through its value and range mappings (first match wins)."""
    for mapping in panel["fieldConfig"]["defaults"].get("mappings", []):
        options = mapping["options"]
        if mapping["type"] == "value" and f"{value:g}" in options:
            return options[f"{value:g}"]["text"]
        if mapping["type"] == "range" and options["from"] <= value and (options["to"] is None or value <= options["to"]):
            return options["result"]["text"]
    return f"{value:g}"


def _panel(model: m.Model, env: m.Environment, title: str) -> dict:
    [panel] = [p for p in build_dashboard(model, env, model.dashboards[0])["panels"] if p["title"] == title]
    return panel


def test_status_names_pass_fail_and_the_tolerated_failures_of_the_environment_policy():
    ref = reference_model()
    # dev tolerates 3 governance failures, staging 1, prod none (and prod counts optional failures too).
    expected = {
        "dev": {-1: "FAIL", 0: "PASS", 1: "PASS (1 governance failure tolerated)",
                2: "PASS (2 governance failures tolerated)", 3: "PASS (3 governance failures tolerated)"},
        "staging": {-1: "FAIL", 0: "PASS", 1: "PASS (1 governance failure tolerated)"},
        "prod": {-1: "FAIL", 0: "PASS"},
    }
    for env in ref.environments:
        panel = _panel(ref, env, "Status")
        assert panel["type"] == "stat" and panel["fieldConfig"]["defaults"]["noValue"] == "No runs"
        [value_map] = panel["fieldConfig"]["defaults"]["mappings"]
        assert {float(k): v["text"] for k, v in value_map["options"].items()} == expected[env.name]
        colors = {v["text"]: v["color"] for v in value_map["options"].values()}
        assert colors.pop("FAIL") == "red" and set(colors.values()) == {"green"}


def test_status_with_two_tolerant_tiers_names_both_and_caps_the_mappings():
    model = hand_model(panels=("status",))
    env = model.environments[0]
    two = m.Environment(env.name, env.description, m.Policy((("governance", 2), ("optional", 1)), True),
                        env.channels, env.backends)
    model = m.Model(**{**model.__dict__, "environments": (two,),
                       "tiers": model.tiers + (m.Tier("optional", "info", "pager", "opt", "Nice to have."),)})
    panel = _panel(model, two, "Status")
    texts = {_mapped(panel, v) for v in range(-1, 6)}
    assert texts == {"FAIL", "PASS", "PASS (1 governance failure tolerated)", "PASS (2 governance failures tolerated)",
                     "PASS (1 optional failure tolerated)", "PASS (1 governance failure, 1 optional failure tolerated)",
                     "PASS (2 governance failures, 1 optional failure tolerated)"}


def test_pass_rate_threshold_follows_the_pass_rate_slo_objective():
    strict = m.SLO("pass-rate", "Runs pass.", Fraction(99, 100), "28d", m.SLI("pass_rate"), "Fix it.", "slo")
    for slos, target in (((strict,), 99.0), ((), 95.0)):
        model = hand_model(slos=slos, panels=("pass_rate",))
        panel = build_dashboard(model, model.environments[0], model.dashboards[0])["panels"][0]
        assert panel["type"] == "gauge"
        assert panel["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == target


def test_error_budget_reads_the_recorded_budget_remaining_of_each_slo_and_says_no_runs():
    model = hand_model(panels=("error_budget_remaining",))
    env = model.environments[0]
    panel = build_dashboard(model, env, model.dashboards[0])["panels"][0]
    assert [t["legendFormat"] for t in panel["targets"]] == [s.id for s in model.slos]
    for slo, target in zip(model.slos, panel["targets"]):
        # the record is 1 while the period has had no run, so the panel needs no filter that could hide it
        assert target["expr"] == conventions.selector(conventions.SLO_BUDGET_REMAINING,
                                                      conventions.slo_matchers(model, env, slo))
    assert panel["fieldConfig"]["defaults"]["noValue"] == "No runs"


def test_burn_rate_plots_the_page_windows_fitted_to_an_hourly_cadence():
    # dev runs every hour (the default cadence); 95 % over 28d is a budget of 28*24*0.05 = 33.6 runs. The
    # workbook's 1h/5m page (2 %) needs a share of at least one run (1/33.6) and a short window of 1.5
    # cadences rounded up (2h), so its long window becomes 2h; the 6h/30m page (5 %) keeps 6h.
    model = hand_model(panels=("burn_rate",))
    panel = build_dashboard(model, model.environments[0], model.dashboards[0])["panels"][0]
    legends = [t["legendFormat"] for t in panel["targets"]]
    assert legends == [f"{s.id} {w}" for s in model.slos for w in ("2h", "6h")]
    assert all(conventions.slo_error_ratio_record(t["legendFormat"].split()[1]) in t["expr"] for t in panel["targets"])
    assert all(t["expr"].endswith(" / 0.05") for t in panel["targets"])  # a burn rate: the ratio over the budget


def test_unknown_panel_kind_raises_value_error():
    model = hand_model(panels=("status", "pie_of_the_day"))
    with pytest.raises(ValueError, match="pie_of_the_day"):
        compile_grafana(model, model.environments[0])


def test_importing_the_grafana_target_does_not_import_grafanalib():
    code = "import sys, obsgen.compile.grafana; assert 'grafanalib' not in sys.modules, 'grafanalib imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")


def _promtool(tmp_path: Path, *groups: dict) -> None:
    """Run promtool's expression tests (no rules) and fail with its report when one does not hold."""
    tests = tmp_path / "panels.test.yaml"
    tests.write_text(json.dumps({"rule_files": [], "evaluation_interval": "1m", "tests": list(groups)}))
    result = subprocess.run(["promtool", "test", "rules", str(tests)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _queries(model: m.Model, env: m.Environment, rng: str, step: str = ".*") -> dict[str, list[str]]:
    """Every panel's queries as Grafana sends them: $__range is `rng`, $step the regex Grafana makes of the
    variable (`.*` for All; the step id itself for var-step=<step_id>)."""
    out = build_dashboard(model, env, model.dashboards[0])
    return {p["title"]: [_macros(t["expr"], rng).replace("$step", step) for t in p["targets"]]
            for p in out["panels"]}


# A history of 16 runs of the hand model in dev, every 15 minutes at minute 7, 22, ..., 232. bdd
# (governance, tolerated) fails in the runs at 22, 82, 97 and 172 min; core-checks (kernel) in the run at
# 127 min, so that run fails. Before the history: 5 bdd and 2 core-checks failures (the per-step counters). Every run takes 12 s, and each run's own series are scraped for an hour after it (a Pushgateway
# keeps a run's group that long).
RUN_MINUTES = [7 + 15 * i for i in range(16)]
FAILED_IN = {"bdd": {22, 82, 97, 172}, "core-checks": {127}}
TIERS = {"bdd": "governance", "core-checks": "kernel"}
BEFORE = {"bdd": 5, "core-checks": 2}
HORIZON = 250  # minutes of samples


def _history(scrape_minutes: int) -> list[dict]:
    """The series Prometheus scrapes from that history (a Pushgateway or textfile holds the last run's
    metrics between runs), one sample every `scrape_minutes`."""
    times = range(0, HORIZON + 1, scrape_minutes)
    values: dict[str, list[float]] = {}

    def add(series: str, value: float | None) -> None:
        values.setdefault(series, []).append(value)

    for t in times:
        runs = [r for r in RUN_MINUTES if r <= t]
        for step, tier in TIERS.items():
            labels = f'env="dev",step_id="{step}",tier="{tier}"'
            add(f"selftest_step_failures_total{{{labels}}}", BEFORE[step] + sum(r in FAILED_IN[step] for r in runs))
            add(f"selftest_step_failed{{{labels}}}", float(bool(runs) and runs[-1] in FAILED_IN[step]))
        add('selftest_last_run_timestamp_seconds{env="dev"}', 60 * runs[-1] if runs else 0)
        for r in RUN_MINUTES:  # only a kernel failure fails a dev run; it pages
            result = "fail\",outcome=\"page" if r in FAILED_IN["core-checks"] else "pass\",outcome=\"pass"
            labels = f'env="dev",result="{result}",run="{60 * r}"'
            shown = r <= t < r + 60
            add(f"selftest_run_timestamp_seconds{{{labels}}}", 60.0 * r if shown else None)
            add(f"selftest_run_duration_seconds{{{labels}}}", 12.0 if shown else None)
    return [{"series": k, "values": " ".join("_" if v is None else f"{v:g}" for v in vs)} for k, vs in values.items()]


@needs_promtool
@pytest.mark.parametrize("scrape_minutes", [1, 5])
def test_per_step_panels_count_failed_runs_whatever_the_scrape_interval(tmp_path, scrape_minutes: int):
    model = hand_model()
    env = model.environments[0]
    # Evaluated at 242 min over the last 3 h (from 62 min): the runs at 67..232 min, 12 of them. Failed runs
    # in that window: bdd 3 (82, 97, 172), core-checks 1 (127); one run failed, 11 passed.
    at, rng = "242m", "3h"
    q = _queries(model, env, rng)
    bdd = '{step_id="bdd",tier="governance"}'
    core = '{step_id="core-checks",tier="kernel"}'
    cases = [
        (q["Failures by step"][0], [(bdd, 3), (core, 1)]),
        (q["Failures by step"][1], [(bdd, 172 * 60 * 1000), (core, 127 * 60 * 1000)]),  # the failing runs' times
        (_queries(model, env, rng, step="bdd")["Failures by step"][0], [(bdd, 3)]),  # var-step=bdd
        (q["Pass rate"][0], [("{}", 100 * 11 / 12)]),
        (q["Status"][0], [("{}", 0)]),  # the last run (232 min) passed, nothing failing
        (q["Run duration"][0], [("{}", 12)]),  # every run took 12 s
        # Recent failures look back 24 h, beyond the history: every failure in it counts.
        (q["Recent failures (24 h)"][1], [(bdd, 4), (core, 1)]),
        (q["Recent failures (24 h)"][0], [(bdd, 172 * 60 * 1000), (core, 127 * 60 * 1000)]),
    ]
    _promtool(tmp_path, {"interval": f"{scrape_minutes}m", "input_series": _history(scrape_minutes),
                         "promql_expr_test": [
                             {"expr": expr, "eval_time": at,
                              "exp_samples": [{"labels": labels, "value": value} for labels, value in samples]}
                             for expr, samples in cases]})


@needs_promtool
def test_an_empty_window_gives_no_sample_never_nan(tmp_path):
    model = hand_model()
    env = model.environments[0]
    # The history, then 150 minutes without a run (the last run's metrics still scraped); at 400 min the
    # last 10 minutes, and the duration panel's 2 h windows (two of dev's hourly cadences), hold no run.
    q = _queries(model, env, "10m")
    empty = [q["Pass rate"][0], *q["Failures by step"], *q["Run duration"]]
    quiet = [{**s, "values": f"{s['values']} " + ("_x150" if s["values"].endswith("_") else
                                                   f"{s['values'].split()[-1]}+0x150")} for s in _history(1)]
    _promtool(tmp_path, {"interval": "1m", "input_series": quiet, "promql_expr_test": [
        {"expr": expr, "eval_time": "400m", "exp_samples": []} for expr in empty
    ] + [
        # the last run's verdict and the last day's failures are still there
        {"expr": q["Status"][0], "eval_time": "400m", "exp_samples": [{"labels": "{}", "value": 0}]},
        {"expr": q["Recent failures (24 h)"][1], "eval_time": "400m", "exp_samples": [
            {"labels": '{step_id="bdd",tier="governance"}', "value": 4},
            {"labels": '{step_id="core-checks",tier="kernel"}', "value": 1}]},
    ]})
    for title in ("Pass rate", "Failures by step", "Run duration", "Status", "Failing steps by tier"):
        assert _panel(model, env, title)["fieldConfig"]["defaults"]["noValue"] == "No runs", title


@needs_promtool
def test_time_since_last_failure_says_none_with_runs_and_no_runs_without(tmp_path):
    model = hand_model()
    env = model.environments[0]
    panel = _panel(model, env, "Time since last failure")
    [expr] = _queries(model, env, "1h")["Time since last failure"]
    [core] = _queries(model, env, "1h", step="core-checks")["Time since last failure"]
    short_failure = {"interval": "1m", "input_series": [
        {"series": 'selftest_step_failed{env="dev",tier="kernel",step_id="core-checks"}',
         "values": "0 0 1 1 " + " ".join(["0"] * 120)},
        {"series": 'selftest_step_failed{env="dev",tier="governance",step_id="bdd"}', "values": "0+0x124"},
        {"series": 'selftest_last_run_timestamp_seconds{env="dev"}', "values": "0 60 120 180 240+0x120"},
    ], "promql_expr_test": [
        # a two-minute failure between subquery steps is still found, at most 5 m late
        {"expr": expr, "eval_time": "2h", "exp_samples": [{"labels": "{}", "value": (7200 - 300) / 3600}]},
        {"expr": core, "eval_time": "2h", "exp_samples": [{"labels": "{}", "value": (7200 - 300) / 3600}]},
        # narrowed to bdd, which never failed: runs but no failure
        {"expr": expr.replace('step_id=~".*"', 'step_id=~"bdd"'), "eval_time": "2h",
         "exp_samples": [{"labels": "{}", "value": -1}]},
    ]}
    no_runs = {"interval": "1m", "input_series": [{"series": 'unrelated{env="dev"}', "values": "1+0x10"}],
               "promql_expr_test": [{"expr": expr, "eval_time": "10m", "exp_samples": []}]}
    _promtool(tmp_path, short_failure, no_runs)
    assert _mapped(panel, -1) == "None in 14d"
    assert panel["fieldConfig"]["defaults"]["noValue"] == "No runs"


REPORTS = ROOT / "tests/reports"


@needs_promtool
@pytest.mark.parametrize("report,expected", [
    ("passing.json", {"dev": "PASS", "staging": "PASS", "prod": "PASS"}),
    ("kernel-failed.json", {"dev": "FAIL", "staging": "FAIL", "prod": "FAIL"}),
    # bdd and ac-status (governance) and ac-coverage (optional) fail: dev tolerates 3 governance failures,
    # staging 1, prod none (and prod counts optional failures).
    ("governance-failed.json", {"dev": "PASS (2 governance failures tolerated)", "staging": "FAIL", "prod": "FAIL"}),
])
def test_status_reads_the_last_run_by_the_policy_obsgen_emit_uses(tmp_path, report: str, expected: dict[str, str]):
    from obsgen.run import emit

    ref = reference_model()
    run = emit.load_report(str(REPORTS / report), ref)
    groups = []
    for env in ref.environments:
        assert emit.run_result(ref, env.name, run) == ("fail" if expected[env.name] == "FAIL" else "pass")
        panel = _panel(ref, env, "Status")
        [code] = [v for v in range(-1, 10) if _mapped(panel, v) == expected[env.name]]
        gauges = [(n, labels, v) for n, labels, v in emit.parse_exposition(emit.exposition(ref, env.name, run))
                  if n == ref.metrics.step_failed]
        series = [{"series": n + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}",
                   "values": f"{v:g}+0x300"} for n, labels, v in gauges]  # kept between runs
        groups.append({"interval": "1m", "input_series": series, "promql_expr_test": [
            # right after the run and hours later, before the next one
            {"expr": panel["targets"][0]["expr"], "eval_time": t, "exp_samples": [{"labels": "{}", "value": code}]}
            for t in ("1m", "5h")]})
    _promtool(tmp_path, *groups)


def test_the_dashboard_schema_is_the_copy_its_notice_names() -> None:
    import hashlib

    notice = SCHEMA_PATH.with_name("NOTICE").read_text(encoding="utf-8")
    assert "grafana/grafana-foundation-sdk" in notice and "Apache License, Version 2.0" in notice
    assert f"sha256: {hashlib.sha256(SCHEMA_PATH.read_bytes()).hexdigest()}" in notice
