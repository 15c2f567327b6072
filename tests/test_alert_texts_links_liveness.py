"""Alert texts as Prometheus renders them, the dashboard link on every alert, and liveness fitted to the
cadence (issue 10): expectations come from the spec and the README, and texts and firing times are read
from promtool's own alert output (a test case expecting no alerts makes promtool print what fired), never
from the generated rule text."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REFERENCE_SPEC, require_tool, run_tool

ENVS = ("dev", "staging", "prod")
SPEC = yaml.safe_load(REFERENCE_SPEC.read_text())
MARGIN = 10 * 60  # README "Liveness": stale_after defaults to two cadence intervals plus 10m
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(text: str) -> int:
    return sum(int(n) * UNITS[u] for n, u in re.findall(r"(\d+)([smhdw])", text))


def dur(total: int) -> str:
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            out, total = out + f"{total // size}{unit}", total % size
    return out or "0s"


def spec_env(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in spec["environments"] if e["name"] == name)


def cadence(spec: dict[str, Any], name: str) -> int:
    given = spec_env(spec, name).get("cadence") or {}
    return seconds(given.get("every") or given.get("at_least_every") or "1h")


def build(run_cli, spec: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = directory / "generated"
    result = run_cli("build", "--spec", str(path), "--out", str(out))
    assert result.code == 0, result.out + result.err
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from obsgen.cli import main

    out = tmp_path_factory.mktemp("reference") / "generated"
    assert main(["build", "--spec", str(REFERENCE_SPEC), "--out", str(out)]) == 0
    return out


# --- promtool's rendering of the alerts that fire -----------------------------------------------------

_CASE = re.compile(r"^\s+alertname: (\S+), time: (\S+), $", re.M)
_PAIR = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _pairs(text: str) -> dict[str, str]:
    return {k: json.loads(f'"{v}"') for k, v in _PAIR.findall(text)}


def fired(test_file: Path) -> dict[tuple[str, str], list[tuple[dict[str, str], dict[str, str]]]]:
    """Run a promtool test file whose cases expect no alerts: {(alertname, time): [(labels, annotations)]}
    of every alert that fired, as promtool printed it."""
    proc = run_tool(require_tool("promtool"), "test", "rules", str(test_file))
    output = proc.stdout + proc.stderr
    assert "FAILED" in output or proc.returncode == 0, output  # a broken file is not "nothing fired"
    found: dict[tuple[str, str], list[tuple[dict[str, str], dict[str, str]]]] = {}
    matches = list(_CASE.finditer(output))
    for i, m in enumerate(matches):
        block = output[m.end():matches[i + 1].start() if i + 1 < len(matches) else len(output)]
        got = block.split("got:", 1)[1] if "got:" in block else ""
        alerts = re.findall(r"Labels:(\{.*\})\s*\n\s*Annotations:(\{.*\})", got)
        found[(m[1], m[2])] = [(_pairs(labels), _pairs(notes)) for labels, notes in alerts]
    return found


def run_cases(rules_files: Path | list[Path], series: dict[str, str], cases: list[tuple[int, str]],
              directory: Path) -> dict[tuple[str, str], list[tuple[dict[str, str], dict[str, str]]]]:
    files = rules_files if isinstance(rules_files, list) else [rules_files]
    test = {"rule_files": [str(f) for f in files], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": [{"series": s, "values": v} for s, v in series.items()],
        "alert_rule_test": [{"eval_time": dur(at), "alertname": name, "exp_alerts": []} for at, name in cases]}]}
    path = directory / "probe.test.yaml"
    path.write_text(yaml.safe_dump(test))
    return fired(path)


def receivers(config: Path, labels: dict[str, str]) -> list[str]:
    args = [f'{k}="{v}"' for k, v in labels.items()]
    proc = run_tool(require_tool("amtool"), "config", "routes", "test", f"--config.file={config}", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip().split(",")


# --- texts ---------------------------------------------------------------------------------------------

def _without_summaries(spec: dict[str, Any]) -> dict[str, Any]:
    """Every alert on its default text, plus a custom alert whose result has no env label at all."""
    spec = yaml.safe_load(yaml.safe_dump(spec))
    for alert in spec["alerts"]:
        alert.pop("summary", None)
    spec["alerts"].append({"name": "SelftestQueueBacklog", "kind": "custom", "tier": "governance",
                           "expr": 'sum(selftest_queue_depth{env="{{env}}"}) > 5'})
    return spec


@pytest.mark.parametrize("texts", ["defaults", "reference"])
def test_every_rendered_summary_names_its_environment(run_cli, tmp_path: Path, texts: str) -> None:
    """The generated rule tests' inputs make every selftest alert fire; with their expectations emptied,
    promtool prints each alert as rendered, and every summary must name the environment."""
    spec = _without_summaries(SPEC) if texts == "defaults" else SPEC
    out = build(run_cli, spec, tmp_path)
    names = {a["name"] for a in spec["alerts"]} | {f"{a['name']}NoData" for a in spec["alerts"]
                                                    if a["kind"] == "not_reporting"}
    for env in ENVS:
        rendered = []
        for test_file in ("selftest.test.yaml", "selftest-steps.test.yaml"):  # the job's alerts, the steps'
            document = yaml.safe_load((out / env / "tests/rules" / test_file).read_text())
            for group in document["tests"]:
                group.pop("promql_expr_test", None)
                for case in group.get("alert_rule_test", []):
                    case["exp_alerts"] = []
            probe = out / env / "tests/rules/probe.test.yaml"
            probe.write_text(yaml.safe_dump(document))
            rendered += [(name, notes["summary"]) for (name, _), alerts in fired(probe).items() for _, notes in alerts]
        assert {name for name, _ in rendered} == names
        for name, summary in rendered:
            assert re.search(rf"\b{env}\b", summary), (env, name, summary)
            assert "{" not in summary and "$labels" not in summary, (env, name, summary)


def test_the_default_summaries_read_as_the_issue_expects(run_cli, tmp_path: Path) -> None:
    out = build(run_cli, _without_summaries(SPEC), tmp_path)
    rules = [out / "prod/prometheus/selftest.rules.yaml", out / "prod/prometheus/selftest-steps.rules.yaml"]
    seen = run_cases(rules, {
        # core-checks failed at 60 s and has not passed since (as obsgen emit writes a failing run)
        'selftest_step_last_failure_timestamp_seconds{env="prod",step_id="core-checks",tier="kernel"}': "_ 60x9",
        'selftest_step_last_pass_timestamp_seconds{env="prod",step_id="core-checks",tier="kernel"}': "0x10",
        'selftest_queue_depth{env="prod"}': "9x10"}, [(5 * 60, "SelftestKernelStepFailed"),
                                                     (5 * 60, "SelftestQueueBacklog"),
                                                     (5 * 60, "SelftestNotReportingNoData")], tmp_path)
    summaries = {name: [n["summary"] for _, n in alerts] for (name, _), alerts in seen.items()}
    assert summaries == {"SelftestKernelStepFailed": ["KERNEL step core-checks failed in prod"],
                         "SelftestQueueBacklog": ["SelftestQueueBacklog in prod"],
                         "SelftestNotReportingNoData": ["Selftest in prod has not reported any run yet"]}


# --- dashboard_url -------------------------------------------------------------------------------------

def _expected_dashboard(out: Path, env: str, step_id: str) -> str:
    """The environment's Grafana (from the spec) and the uid of the dashboard obsgen generated for it."""
    first = SPEC["dashboards"][0]["id"]
    uid = json.loads((out / env / "grafana" / f"{first}.json").read_text())["uid"]
    base = spec_env(SPEC, env)["backends"]["grafana"]["url"].rstrip("/") + f"/d/{uid}"
    return base if step_id == "all" else f"{base}?var-step={step_id}"


@pytest.mark.parametrize("env", ENVS)
def test_every_generated_alert_links_its_environments_dashboard(reference: Path, env: str) -> None:
    alerts = [rule for path in sorted((reference / env / "prometheus").glob("*.rules.yaml"))
              for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"] if "alert" in rule]
    assert len(alerts) == 16  # the reference SLOs do not page: two tickets, no page
    for rule in alerts:
        step_id = rule["labels"]["step_id"]
        assert rule["annotations"]["dashboard_url"] == _expected_dashboard(reference, env, step_id), rule["alert"]
    config = yaml.safe_load((reference / env / "alertmanager/alertmanager.yaml").read_text())
    pagerduty = next(r for r in config["receivers"]
                     if r["name"] == f"selftest/{env}/pagerduty-oncall")["pagerduty_configs"][0]
    assert {"href": "{{ .CommonAnnotations.dashboard_url }}", "text": "Dashboard"} in pagerduty["links"]
    slack = next(r for r in config["receivers"] if r["name"] == f"selftest/{env}/slack-tickets")["slack_configs"][0]
    assert "{{ .Annotations.dashboard_url }}" in slack["text"]


def test_an_environment_without_grafana_gets_no_dashboard_url(run_cli, tmp_path: Path) -> None:
    spec = yaml.safe_load(yaml.safe_dump(SPEC))
    del spec_env(spec, "staging")["backends"]["grafana"]
    out = build(run_cli, spec, tmp_path)
    for path in (out / "staging/prometheus").glob("*.rules.yaml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            assert all("dashboard_url" not in r.get("annotations", {}) for r in group["rules"]), path
    config = yaml.safe_load((out / "staging/alertmanager/alertmanager.yaml").read_text())
    links = next(r for r in config["receivers"]
                 if r["name"] == "selftest/staging/pagerduty-oncall")["pagerduty_configs"][0]["links"]
    assert [link["text"] for link in links] == ["Runbook"]
    proc = run_tool(require_tool("amtool"), "check-config", str(out / "staging/alertmanager/alertmanager.yaml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- liveness ------------------------------------------------------------------------------------------

def _for(env: str) -> int:
    alert = next(a for a in SPEC["alerts"] if a["kind"] == "not_reporting")
    return seconds(((alert.get("overrides") or {}).get(env) or {}).get("for") or alert.get("for", "0s"))


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_an_environment_that_reported_and_went_quiet_alerts_after_stale_after(reference: Path, tmp_path: Path,
                                                                              env: str) -> None:
    """Two runs a cadence apart, then none: quiet until the last run is stale_after old (plus `for`);
    then it fires, a ticket everywhere: the spec's SelftestNoPassingRun is the page for a silent job (also
    in prod, whose policy pages on any failure)."""
    every = cadence(SPEC, env)
    stale = 2 * every + MARGIN  # no stale_after in the reference spec: the default
    last = every
    active = last + stale + 60  # the first evaluation at which the last run is older than stale_after
    fires = active + _for(env)
    series = {f'selftest_last_run_timestamp_seconds{{env="{env}"}}':
              f"0x{every // 60 - 1} {last}x{(fires + 600) // 60 - every // 60}"}
    seen = run_cases(reference / env / "prometheus/selftest.rules.yaml", series,
                     [(last + every - 60, "SelftestNotReporting"), (fires - 60, "SelftestNotReporting"),
                      (fires, "SelftestNotReporting"), (fires, "SelftestNotReportingNoData")], tmp_path)
    assert set(seen) == {("SelftestNotReporting", dur(fires))}, seen  # nothing before, no notice
    [(labels, notes)] = seen[("SelftestNotReporting", dur(fires))]
    assert (labels["env"], labels["step_id"]) == (env, "all")
    assert env in notes["summary"]
    routed = receivers(reference / env / "alertmanager/alertmanager.yaml", labels)
    assert routed == [f"selftest/{env}/slack-tickets"], routed


@pytest.mark.parametrize("env", ENVS)
def test_an_environment_that_never_reported_gets_a_notice_and_no_page(reference: Path, tmp_path: Path,
                                                                      env: str) -> None:
    late = 2 * (2 * cadence(SPEC, env) + MARGIN)  # well past any stale_after
    seen = run_cases(reference / env / "prometheus/selftest.rules.yaml",
                     {'selftest_last_run_timestamp_seconds{env="elsewhere"}': f"0+60x{late // 60 + 10}"},
                     [(late, "SelftestNotReporting"), (late, "SelftestNotReportingNoData")], tmp_path)
    assert set(seen) == {("SelftestNotReportingNoData", dur(late))}, seen
    [(labels, notes)] = seen[("SelftestNotReportingNoData", dur(late))]
    assert labels["severity"] == "info" and "page" not in labels
    assert notes["summary"] == f"Selftest in {env} has not reported any run yet"
    assert receivers(reference / env / "alertmanager/alertmanager.yaml", labels) == [f"selftest/{env}/slack-info"]
