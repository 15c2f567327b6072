"""Free text that reaches a Go template renders literally; a summary may only use a safe subset of templates.

Prometheus expands alert annotations, and Alertmanager a Slack channel, as Go templates. Issue 18: a
remediation `Run make {{target}}` passed `validate` and broke `promtool check rules`; `{{ with query "up" }}`
in a description would be run by Prometheus at alert time. Free text is now escaped so that it renders as
written -- proven with promtool, which checks the rule files and runs the generated rule tests that expect the
exact text -- and a summary with anything but label, value and humanize actions is a spec error naming it.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, require_tool, run_tool

MINIMAL = (ROOT / "tests/specs/minimal.yaml").read_text()
REMEDIATION = "Run make {{target}}, then {{- see -}} the {{ with query \"up\" }}{{ . }}{{ end }} docs }}"
DESCRIPTION = '{{ define "x" }}boom{{ end }}{{ template "x" }} {{/* hidden */}} {{'
CHANNEL = "#ops-{{ .Status }}"


def _hostile_spec(tmp_path: Path) -> Path:
    text = (MINIMAL
            .replace("    remediation: Fix the build.", f"    remediation: '{REMEDIATION}'\n"
                                                        f"    description: '{DESCRIPTION}'\n"
                                                        f"    runbook: 'step-{{{{page}}}}'")
            .replace("chat: {api_url_file: /run/secrets/slack-url}",
                     f"chat: {{api_url_file: /run/secrets/slack-url, channel: '{CHANNEL}'}}")
            .replace("remediation: Fix the docs.", "remediation: 'Ask {{ $labels.owner }}'")
            .replace("    for: 10m", "    for: 10m\n    summary: '{{ $labels.step_id }} failed in {{env}}'"))
    spec = tmp_path / "hostile.yaml"
    spec.write_text(text)
    return spec


@pytest.fixture
def built(run_cli, tmp_path: Path) -> Path:
    spec = _hostile_spec(tmp_path)
    assert run_cli("validate", "--spec", str(spec)).code == 0
    out = tmp_path / "out"
    result = run_cli("build", "--spec", str(spec), "--out", str(out))
    assert result.code == 0, result.err
    return out


def test_promtool_accepts_rule_files_whose_free_text_holds_template_syntax(built: Path) -> None:
    require_tool("promtool")
    check = run_tool("promtool", "check", "rules", str(built / "dev/prometheus/mini-steps.rules.yaml"))
    assert check.returncode == 0, check.stdout + check.stderr


def test_free_text_renders_exactly_as_written_when_the_alert_fires(run_cli, built: Path) -> None:
    """The generated rule tests expect each alert's remediation, description and runbook exactly as the spec
    wrote them (computed from the spec, not from the rule file); promtool expands the rules' annotations as
    Prometheus does and compares."""
    tests = yaml.safe_load((built / "dev/tests/rules/mini-steps.test.yaml").read_text())
    expected = [a["exp_annotations"] for g in tests["tests"] for case in g.get("alert_rule_test", [])
                for a in case["exp_alerts"] if a["exp_labels"].get("step_id") == "build"]
    assert expected and all(a["remediation"] == REMEDIATION for a in expected)
    assert all(a["description"].startswith(DESCRIPTION + " (kernel); ") for a in expected)
    assert all(a["runbook_url"] == "https://runbooks.example.com/mini#step-{{page}}" for a in expected)
    docs = [a["exp_annotations"] for g in tests["tests"] for case in g.get("alert_rule_test", [])
            for a in case["exp_alerts"] if a["exp_labels"].get("step_id") == "docs"]
    assert docs and all(a["remediation"] == "Ask {{ $labels.owner }}" for a in docs)
    assert all(a["summary"] == "docs failed in dev" for a in docs)
    require_tool("promtool")
    result = run_cli("verify", "--out", str(built))
    assert result.code == 0, result.out
    assert ", 0 failed" in result.out.splitlines()[-1]


def test_the_alert_catalog_shows_free_text_as_written(built: Path) -> None:
    catalog = (built / "dev/docs/alerts.md").read_text()
    assert "Run make {{target}}" in catalog
    assert CHANNEL in catalog
    assert '{{ "{{" }}' not in catalog


def test_a_slack_channel_holding_template_syntax_is_literal_for_alertmanager(built: Path) -> None:
    config = yaml.safe_load((built / "dev/alertmanager/alertmanager.yaml").read_text())
    channels = [c["channel"] for r in config["receivers"] for c in r.get("slack_configs", [])]
    assert channels == ['#ops-{{ "{{" }} .Status }}']
    require_tool("amtool")
    check = run_tool("amtool", "check-config", str(built / "dev/alertmanager/alertmanager.yaml"))
    assert check.returncode == 0, check.stdout + check.stderr
    (built.parent / "none.tmpl").write_text("")
    data = built.parent / "data.json"
    data.write_text(json.dumps({"receiver": "x", "status": "firing", "alerts": [], "groupLabels": {},
                                "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am"}))
    render = run_tool("amtool", "template", "render", f"--template.glob={built.parent / 'none.tmpl'}",
                      f"--template.data={data}", f"--template.text={channels[0]}")
    assert render.returncode == 0, render.stderr
    assert render.stdout.rstrip("\n") == CHANNEL  # not "#ops-firing"


@pytest.mark.parametrize("summary,shown", [
    ('Up: {{ with query "up" }}{{ . }}{{ end }}', "'{{ with query \"up\" }}' is not allowed"),
    ("Run make {{target}}", "'{{target}}' is not allowed"),
    ('{{ define "x" }}x{{ end }}', "'{{ define \"x\" }}' is not allowed"),
    ('{{ range $labels }}x{{ end }}', "'{{ range $labels }}' is not allowed"),
    ('{{ template "__alert_details" . }}', "'{{ template \"__alert_details\" . }}' is not allowed"),
    ("{{ env }}", "'{{ env }}' is not allowed"),
    ('{{ printf "%s" (query "up") }}', "'{{ printf \"%s\" (query \"up\") }}' is not allowed"),
    ("step {{ $labels.step_id", "'{{ $labels.step_id' opens a template action that never closes"),
])
def test_a_summary_may_only_use_labels_values_and_humanize(run_cli, tmp_path: Path, summary: str,
                                                           shown: str) -> None:
    spec = tmp_path / "summary.yaml"
    quoted = summary.replace("'", "''")
    spec.write_text(MINIMAL.replace("    for: 10m", f"    for: 10m\n    summary: '{quoted}'"))
    result = run_cli("validate", "--spec", str(spec))
    assert result.code == 2
    assert result.err.splitlines() == [
        f"{spec}:41:14: alerts[1].summary: {shown}: a summary may use only {{{{ $labels.<name> }}}}, "
        f"{{{{ $value }}}} (each optionally | humanize, humanize1024, humanizeDuration, humanizePercentage or "
        f"humanizeTimestamp, or as printf \"%.2f\" $value) and {{{{env}}}}; write other text without '{{{{'",
        f"obsgen: 1 problem in {spec}"]


@pytest.mark.parametrize("summary", [
    "{{ $labels.step_id }} failed in {{env}}", "{{- .Labels.env -}} at {{ .Value }}",
    "{{ $value | humanizePercentage }}", "{{ humanizeDuration $value }}", "plain text, no braces }}",
    '{{ printf "%.2f" $value }} on {{ $externalLabels.cluster }}',
])
def test_the_safe_summary_templates_pass_validate_and_promtool(run_cli, tmp_path: Path, summary: str) -> None:
    spec = tmp_path / "summary.yaml"
    spec.write_text(MINIMAL.replace("    for: 10m", f"    for: 10m\n    summary: '{summary}'"))
    assert run_cli("validate", "--spec", str(spec)).code == 0
    out = tmp_path / "out"
    assert run_cli("build", "--spec", str(spec), "--out", str(out)).code == 0
    require_tool("promtool")
    check = run_tool("promtool", "check", "rules", str(out / "dev/prometheus/mini-steps.rules.yaml"))
    assert check.returncode == 0, check.stdout + check.stderr
