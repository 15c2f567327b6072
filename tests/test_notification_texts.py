"""What every receiver of every environment sends, rendered by the real `amtool template render` from the
committed Alertmanager configs (generated/<env>/alertmanager/subtree.yaml).

A group that holds a firing alert (step bdd) and a resolved one (step ac-status) is what Alertmanager
sends when one step of a group recovers while another still fails: the firing notification must name
only bdd. A resolved notification names what resolved. A fire drill's group says [DRILL]. Every
annotation of the test alerts names its step, so a resolved alert leaking through any field is caught.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, require_tool, run_tool

ENVS = sorted(p.name for p in (ROOT / "generated").iterdir() if (p / "alertmanager" / "subtree.yaml").is_file())
FIRING, RESOLVED = "bdd", "ac-status"
# Alertmanager merges these default PagerDuty details into any `details` that lacks them; their defaults
# dump every alert's labels and annotations ("Labels:/Annotations:"). Alertmanager configuration docs,
# <pagerduty_config>: details default = {firing, resolved, num_firing, num_resolved}.
ALERTMANAGER_DEFAULT_DETAILS = {"firing", "resolved", "num_firing", "num_resolved"}
SEP = "\n@@{}@@\n"


def _alert(env: str, step: str, status: str) -> dict:
    return {
        "status": status,
        "labels": {"alertname": "SelftestGovernanceFailuresAboveTolerance", "env": env, "service": "selftest",
                   "severity": "warning", "step_id": step, "tier": "governance"},
        "annotations": {"summary": f"GOVERNANCE step {step} failed in {env}",
                        "description": f"{step} description", "remediation": f"fix {step}",
                        "runbook_url": f"https://runbooks.example/{step}",
                        "dashboard_url": f"https://grafana.example/d/x?var-step={step}"},
        "startsAt": "2026-01-01T10:00:00Z",
        "endsAt": "2026-01-01T10:20:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph", "fingerprint": step,
    }


def _data(env: str, receiver: str, status: str, drill: bool = False) -> dict:
    alerts = [_alert(env, FIRING, status), _alert(env, RESOLVED, "resolved")]
    common = {"alertname": "SelftestGovernanceFailuresAboveTolerance", "env": env, "service": "selftest",
              "severity": "warning", "tier": "governance", **({"drill": "true"} if drill else {})}
    for alert in alerts:
        alert["labels"].update({"drill": "true"} if drill else {})
    return {"receiver": receiver, "status": status, "alerts": alerts,
            "groupLabels": {"alertname": common["alertname"], "env": env, **({"drill": "true"} if drill else {})},
            "commonLabels": common, "commonAnnotations": {}, "externalURL": "http://alertmanager.example"}


def _fields(receiver: dict) -> dict[str, str]:
    """Every templated field a receiver sends, by name."""
    out: dict[str, str] = {}
    for config in receiver.get("slack_configs", []):
        out.update({"slack.title": config["title"], "slack.text": config["text"]})
    for config in receiver.get("pagerduty_configs", []):
        out["pagerduty.description"] = config["description"]
        out["pagerduty.severity"] = config["severity"]
        out.update({f"pagerduty.details.{k}": v for k, v in config["details"].items()})
        out.update({f"pagerduty.links.{link['text']}": link["href"] for link in config.get("links", [])})
    return out


def _render(tmp_path: Path, fields: dict[str, str], data: dict) -> dict[str, str]:
    (tmp_path / "none.tmpl").write_text("")
    data_file = tmp_path / "data.json"
    data_file.write_text(json.dumps(data))
    text = "".join(SEP.format(name) + template for name, template in fields.items())
    proc = run_tool(require_tool("amtool"), "template", "render", f"--template.glob={tmp_path / 'none.tmpl'}",
                    f"--template.data={data_file}", f"--template.text={text}")
    assert proc.returncode == 0, proc.stderr
    rendered, parts = {}, proc.stdout.split("\n@@")[1:]
    for part in parts:
        name, _, value = part.partition("@@\n")
        rendered[name] = value
    assert set(rendered) == set(fields)
    return rendered


def _receivers(env: str) -> list[dict]:
    return yaml.safe_load((ROOT / "generated" / env / "alertmanager" / "subtree.yaml").read_text())["receivers"]


CASES = [(env, r["name"]) for env in ENVS for r in _receivers(env)]


@pytest.mark.parametrize(("env", "name"), CASES)
def test_a_firing_notification_names_only_the_firing_alert(tmp_path: Path, env: str, name: str) -> None:
    receiver = next(r for r in _receivers(env) if r["name"] == name)
    rendered = _render(tmp_path, _fields(receiver), _data(env, name, "firing"))
    leaks = {field: value for field, value in rendered.items() if RESOLVED in value}
    assert leaks == {}
    about = [v for f, v in rendered.items() if f in ("slack.text", "pagerduty.description")]
    assert about and all(FIRING in value for value in about)
    if "pagerduty.description" in rendered:
        assert rendered["pagerduty.details.firing"] == FIRING
        assert rendered["pagerduty.details.resolved"] == ""
        assert (rendered["pagerduty.details.num_firing"], rendered["pagerduty.details.num_resolved"]) == ("1", "1")
    else:
        assert rendered["slack.title"].startswith("[FIRING:1] SelftestGovernanceFailuresAboveTolerance")
        assert "(1 of this group resolved since the last message)" in rendered["slack.text"]
    assert not any("[DRILL]" in value for value in rendered.values())


@pytest.mark.parametrize(("env", "name"), CASES)
def test_a_resolved_notification_says_what_resolved(tmp_path: Path, env: str, name: str) -> None:
    receiver = next(r for r in _receivers(env) if r["name"] == name)
    rendered = _render(tmp_path, _fields(receiver), _data(env, name, "resolved"))
    if "pagerduty.description" in rendered:
        assert rendered["pagerduty.description"].startswith(
            f"SelftestGovernanceFailuresAboveTolerance ({env}): resolved: ")
        assert rendered["pagerduty.details.firing"] == ""
        assert rendered["pagerduty.details.resolved"] == f"{FIRING}, {RESOLVED}"
        assert not any("Labels:" in value or "Annotations:" in value for value in rendered.values())
    else:
        assert rendered["slack.title"].startswith("[RESOLVED] ")
        text = rendered["slack.text"]
        assert text.startswith("Resolved:\n") and FIRING in text and RESOLVED in text
        assert "Remediation" not in text


@pytest.mark.parametrize(("env", "name"), CASES)
def test_a_drill_notification_says_drill_first(tmp_path: Path, env: str, name: str) -> None:
    receiver = next(r for r in _receivers(env) if r["name"] == name)
    rendered = _render(tmp_path, _fields(receiver), _data(env, name, "firing", drill=True))
    if "pagerduty.description" in rendered:
        assert rendered["pagerduty.description"].startswith("[DRILL] SelftestGovernanceFailuresAboveTolerance")
        assert rendered["pagerduty.details.drill"] == "true"
    else:
        assert rendered["slack.title"].startswith("[FIRING:1] [DRILL] SelftestGovernanceFailuresAboveTolerance")


@pytest.mark.parametrize("env", ENVS)
def test_pagerduty_details_leave_none_of_alertmanagers_raw_defaults(env: str) -> None:
    for receiver in _receivers(env):
        for config in receiver.get("pagerduty_configs", []):
            assert ALERTMANAGER_DEFAULT_DETAILS <= set(config["details"]), receiver["name"]
            assert not any("template" in value for value in config["details"].values())
