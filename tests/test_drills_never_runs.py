"""A fire drill is never a real run: the committed rules leave its series out, except the step alert the
drill exists to fire, which carries drill="true" and so stands beside a real alert, never instead of it.

Checked with the real promtool against the committed rules of every environment (generated/), fed
series as `obsgen emit` and `obsgen drill` write them: the real job's group has no drill label, the
drill's group has drill="true". The expected times come from the spec (the environment's cadence and
the not_reporting alert's stale_after and for), not from the generated expressions.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import ROOT, require_tool, run_tool

from obsgen.model import durations
from obsgen.compile.prometheus import stale_after
from obsgen.spec import load_spec

MODEL = load_spec(str(ROOT / "specs" / "selftest.yaml"))
ENVS = [e.name for e in MODEL.environments]
STEP = 60
LIVENESS = next(a for a in MODEL.alerts if a.kind == "not_reporting")
KERNEL = next(a for a in MODEL.alerts if a.kind == "step_failed" and a.tier == "kernel")
KERNEL_STEP = MODEL.steps_of("kernel")[0].id


def _promtool(tmp_path: Path, env: str, tests: list[dict]) -> tuple[int, str]:
    rules = [ROOT / "generated" / env / "prometheus" / f"{name}.rules.yaml" for name in ("selftest", "selftest-steps")]
    doc = {"rule_files": [str(f) for f in rules], "evaluation_interval": "1m", "tests": tests}
    path = tmp_path / f"{env}.test.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = run_tool(require_tool("promtool"), "test", "rules", str(path))
    return proc.returncode, proc.stdout + proc.stderr


def _firing(alertname: str, env: str, extra: str = "") -> str:
    return f'count by (alertname, env{extra}) (ALERTS{{alertname="{alertname}",env="{env}",alertstate="firing"}})'


@pytest.mark.parametrize("env", ENVS)
def test_a_dead_job_with_a_drill_from_30_minutes_on_still_raises_the_liveness_alert(tmp_path: Path, env: str) -> None:
    e = MODEL.environment(env)
    stale = durations.seconds(stale_after(LIVENESS, e))
    wait = durations.seconds(LIVENESS.params_for(env).for_ or "0s")
    fires_by = int(stale + wait) + 2 * STEP  # one evaluation to see it stale, one to spare
    samples = fires_by // STEP + 5
    drill_from = 30 * 60 // STEP
    # The real job reported once at t=0 and died; from 30 min on a drill pushes a fresh last-run time.
    series = [
        {"series": f'{MODEL.metrics.last_run_timestamp}{{env="{env}",job="selftest"}}', "values": f"0x{samples}"},
        {"series": f'{MODEL.metrics.last_run_timestamp}{{env="{env}",job="selftest",drill="true"}}',
         "values": " ".join(["_"] * drill_from) + f" {drill_from * STEP}+{STEP}x{samples - drill_from}"},
    ]
    test = {"interval": "1m", "input_series": series, "promql_expr_test": [
        {"expr": _firing(LIVENESS.name, env), "eval_time": f"{fires_by}s",
         "exp_samples": [{"labels": f'{{alertname="{LIVENESS.name}",env="{env}"}}', "value": 1}]},
        {"expr": _firing(f"{LIVENESS.name}NoData", env), "eval_time": f"{fires_by}s", "exp_samples": []},
    ]}
    code, output = _promtool(tmp_path, env, [test])
    assert code == 0, output


@pytest.mark.parametrize("env", ENVS)
def test_a_drill_fires_its_own_kernel_alert_beside_a_real_one_and_resolves_nothing(tmp_path: Path, env: str) -> None:
    wait = durations.seconds(KERNEL.params_for(env).for_ or "0s")
    at = int(wait) + 3 * STEP
    samples = at // STEP + 5
    failed, passed = MODEL.metrics.step_last_failure, MODEL.metrics.step_last_pass
    labels = f'env="{env}",job="selftest",step_id="{KERNEL_STEP}",tier="kernel"'
    # As obsgen emit writes them: the real run failed the step at 0 s and it has not passed since; a drill
    # group, later, passes it (at 60 s) and then fails it (at 120 s).
    series = [
        {"series": f"{failed}{{{labels}}}", "values": f"0x{samples}"},
        {"series": f"{passed}{{{labels}}}", "values": f"-1x{samples}"},
        {"series": f'{failed}{{{labels},drill="true"}}', "values": f"_x2 120x{samples - 2}"},
        {"series": f'{passed}{{{labels},drill="true"}}', "values": f"_ 60x{samples - 1}"},
    ]
    test = {"interval": "1m", "input_series": series, "promql_expr_test": [
        {"expr": _firing(KERNEL.name, env, ", drill"), "eval_time": f"{at}s", "exp_samples": [
            {"labels": f'{{alertname="{KERNEL.name}",env="{env}"}}', "value": 1},
            {"labels": f'{{alertname="{KERNEL.name}",env="{env}",drill="true"}}', "value": 1}]},
    ]}
    code, output = _promtool(tmp_path, env, [test])
    assert code == 0, output


def test_no_rule_reads_run_data_without_leaving_drills_out() -> None:
    """Every selector of a run metric in the committed rules says drill!="true", except where the step alerts
    (and the failing-steps-in-the-last-run record they read) group by drill instead."""
    names = (MODEL.metrics.run_timestamp, MODEL.metrics.run_duration, MODEL.metrics.last_run_timestamp,
             MODEL.metrics.step_failures_total, MODEL.metrics.step_failed)  # the step times only the step alerts read
    for env in ENVS:
        for path in sorted((ROOT / "generated" / env / "prometheus").glob("*.yaml")):
            for group in yaml.safe_load(path.read_text())["groups"]:
                for rule in group["rules"]:
                    expr = rule["expr"]
                    for name in names:
                        for at in [i for i in range(len(expr)) if expr.startswith(name, i)]:
                            selector = expr[at:expr.index("}", at) + 1]
                            by_drill = name in (MODEL.metrics.step_failed, MODEL.metrics.last_run_timestamp) \
                                and "drill)" in expr
                            step_alert = by_drill and ("alert" in rule or rule.get("record") ==
                                                       "selftest:last_run_failing_steps:count")
                            assert step_alert or 'drill!="true"' in selector, (path.name, rule.get("alert")
                                                                               or rule.get("record"), selector)


def test_a_drill_inhibits_nothing_and_groups_apart() -> None:
    for env in ENVS:
        subtree = yaml.safe_load((ROOT / "generated" / env / "alertmanager" / "subtree.yaml").read_text())
        kernel = [r for r in subtree["inhibit_rules"] if 'tier="kernel"' in r["source_matchers"]]
        assert kernel and all('drill!="true"' in r["source_matchers"] for r in kernel)

        def group_bys(route: dict) -> list[list[str]]:
            return [route["group_by"]] + [g for child in route.get("routes", []) for g in group_bys(child)]
        assert all("drill" in g for g in group_bys(subtree["route"])), env


def test_no_dashboard_panel_reads_run_data_without_leaving_drills_out() -> None:
    import json

    names = (MODEL.metrics.run_timestamp, MODEL.metrics.run_duration, MODEL.metrics.last_run_timestamp,
             MODEL.metrics.step_failures_total, MODEL.metrics.step_failed)
    seen = 0
    for path in sorted((ROOT / "generated").glob("*/grafana/*.json")):
        text = json.dumps(json.loads(path.read_text()))
        for name in names:
            for at in [i for i in range(len(text)) if text.startswith(name, i)]:
                selector = text[at:text.index("}", at) + 1]
                assert 'drill!=\\"true\\"' in selector, (path.name, selector)
                seen += 1
    assert seen > 0
