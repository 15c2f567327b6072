"""The Grafana target: dashboards that pass the current Grafana schema, built with grafanalib."""
from __future__ import annotations

import copy
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

from obsgen import conventions
from obsgen import model as m
from obsgen.compile.grafana import PANELS, build_dashboard, compile_grafana, grafanalib_dashboard
from obsgen.compile.grafana_schema import modernise

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "obsgen/schemas/grafana/dashboard.jsonschema.json"  # provenance: its NOTICE
REFERENCE_SPEC = ROOT / "specs/selftest.yaml"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_MACROS = re.compile(r"\$__(range|rate_interval|interval)\b")


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
        metrics=m.Metrics("env", "selftest_step_failed", "selftest_runs_total", "selftest_run_duration_seconds",
                          "selftest_last_run_timestamp_seconds", (5.0, 10.0, 20.0, 30.0, 60.0)),
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


def test_artifact_content_is_the_validated_dashboard_at_env_grafana_path(validator):
    for model, env in cases():
        artifacts = compile_grafana(model, env)
        assert [a.path for a in artifacts] == [f"{env.name}/grafana/{d.id}.json" for d in model.dashboards]
        for artifact, dash in zip(artifacts, model.dashboards):
            assert json.loads(artifact.content) == build_dashboard(model, env, dash)
            assert list(validator.iter_errors(json.loads(artifact.content))) == []


def test_raw_grafanalib_output_does_not_validate(validator):
    for model, env in cases():
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
                promql_parser.parse(GRAFANA_MACROS.sub("5m", expr))
            except ValueError as err:
                pytest.fail(f"{env.name}/{dash.id}: {expr!r}: {err}")


def test_every_query_filters_on_the_environment():
    for model, env, _dash, out in dashboards():
        for expr in exprs(out):
            assert conventions.env_matcher(model, env) in expr, expr


def test_status_maps_zero_to_pass_and_one_or_more_to_fail():
    model = hand_model(panels=("status",))
    panel = build_dashboard(model, model.environments[0], model.dashboards[0])["panels"][0]
    assert panel["type"] == "stat"
    value_map, range_map = panel["fieldConfig"]["defaults"]["mappings"]
    assert value_map["options"]["0"]["text"] == "PASS" and value_map["options"]["0"]["color"] == "green"
    assert range_map["options"]["from"] == 1 and range_map["options"]["to"] is None
    assert range_map["options"]["result"]["text"] == "FAIL" and range_map["options"]["result"]["color"] == "red"


def test_pass_rate_threshold_follows_the_pass_rate_slo_objective():
    strict = m.SLO("pass-rate", "Runs pass.", Fraction(99, 100), "28d", m.SLI("pass_rate"), "Fix it.", "slo")
    for slos, target in (((strict,), 99.0), ((), 95.0)):
        model = hand_model(slos=slos, panels=("pass_rate",))
        panel = build_dashboard(model, model.environments[0], model.dashboards[0])["panels"][0]
        assert panel["type"] == "gauge"
        assert panel["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == target


def test_error_budget_has_one_query_per_slo_on_the_period_ratio_record():
    model = hand_model(panels=("error_budget_remaining",))
    env = model.environments[0]
    panel = build_dashboard(model, env, model.dashboards[0])["panels"][0]
    assert [t["legendFormat"] for t in panel["targets"]] == [s.id for s in model.slos]
    for slo, target in zip(model.slos, panel["targets"]):
        assert conventions.selector(conventions.SLO_ERROR_RATIO_PERIOD, conventions.slo_matchers(model, env, slo)) in target["expr"]
        assert "/ 0.05" in target["expr"]


def test_burn_rate_has_a_1h_and_a_6h_query_per_slo():
    model = hand_model(panels=("burn_rate",))
    panel = build_dashboard(model, model.environments[0], model.dashboards[0])["panels"][0]
    legends = [t["legendFormat"] for t in panel["targets"]]
    assert legends == [f"{s.id} {w}" for s in model.slos for w in ("1h", "6h")]
    assert all(conventions.slo_error_ratio_record(t["legendFormat"].split()[1]) in t["expr"] for t in panel["targets"])


def test_unknown_panel_kind_raises_value_error():
    model = hand_model(panels=("status", "pie_of_the_day"))
    with pytest.raises(ValueError, match="pie_of_the_day"):
        compile_grafana(model, model.environments[0])


def test_importing_the_grafana_target_does_not_import_grafanalib():
    code = "import sys, obsgen.compile.grafana; assert 'grafanalib' not in sys.modules, 'grafanalib imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_panel_queries_answer_known_series_under_promtool(tmp_path):
    model = hand_model()
    env = model.environments[0]
    out = build_dashboard(model, env, model.dashboards[0])
    expr = {p["title"]: [GRAFANA_MACROS.sub("1h", t["expr"]) for t in p["targets"]] for p in out["panels"]}
    one_minute = {"interval": "1m", "input_series": [
        # core-checks fails at 2 and 3 min; bdd fails from 1 min on; half of the runs fail.
        {"series": 'selftest_step_failed{env="dev",tier="kernel",step_id="core-checks"}', "values": "0 0 1 1 0 0 0 0 0 0"},
        {"series": 'selftest_step_failed{env="dev",tier="governance",step_id="bdd"}', "values": "0 1 1 1 1 1 1 1 1 1"},
        {"series": 'selftest_runs_total{env="dev",result="pass"}', "values": "0+1x9"},
        {"series": 'selftest_runs_total{env="dev",result="fail"}', "values": "0+1x9"},
        {"series": 'slo:sli_error:ratio_period{env="dev",slo="pass-rate"}', "values": "0.01+0x9"},
        {"series": 'slo:sli_error:ratio_period{env="dev",slo="run-duration"}', "values": " ".join(["NaN"] * 10)},
    ], "promql_expr_test": [
        {"expr": expr["Status"][0], "eval_time": "9m", "exp_samples": [{"labels": "{}", "value": 1}]},
        {"expr": expr["Pass rate"][0], "eval_time": "9m", "exp_samples": [{"labels": "{}", "value": 50}]},
        {"expr": expr["Failures by step"][0], "eval_time": "9m", "exp_samples": [
            {"labels": '{step_id="bdd",tier="governance"}', "value": 9},
            {"labels": '{step_id="core-checks",tier="kernel"}', "value": 2}]},
        {"expr": expr["Recent failures (24 h)"][0], "eval_time": "9m", "exp_samples": [
            {"labels": '{step_id="bdd",tier="governance"}', "value": 540000},
            {"labels": '{step_id="core-checks",tier="kernel"}', "value": 180000}]},
        {"expr": expr["Error budget remaining"][0], "eval_time": "9m",
         "exp_samples": [{"labels": '{env="dev",slo="pass-rate"}', "value": 0.8}]},
        {"expr": expr["Error budget remaining"][1], "eval_time": "9m", "exp_samples": []},  # no traffic: no NaN
    ]}
    short_failure = {"interval": "1m", "input_series": [
        {"series": 'selftest_step_failed{env="dev",tier="kernel",step_id="core-checks"}',
         "values": "0 0 1 1 " + " ".join(["0"] * 120)},
    ], "promql_expr_test": [
        # a two-minute failure between subquery steps is still found, at most 5 m late
        {"expr": expr["Time since last failure"][0], "eval_time": "2h",
         "exp_samples": [{"labels": "{}", "value": (7200 - 300) / 3600}]},
    ]}
    tests = tmp_path / "panels.test.yaml"
    tests.write_text(json.dumps({"rule_files": [], "evaluation_interval": "1m", "tests": [one_minute, short_failure]}))
    result = subprocess.run(["promtool", "test", "rules", str(tests)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_schema_is_the_copy_its_notice_names() -> None:
    import hashlib

    notice = SCHEMA_PATH.with_name("NOTICE").read_text(encoding="utf-8")
    assert "grafana/grafana-foundation-sdk" in notice and "Apache License, Version 2.0" in notice
    assert f"sha256: {hashlib.sha256(SCHEMA_PATH.read_bytes()).hexdigest()}" in notice
