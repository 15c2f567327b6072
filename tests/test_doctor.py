"""`obsgen doctor --env E` (issue 12, item 2): every backend of an environment checked at once.

One line per check, ✓ or ✗ (with the fix) or - (not run, because a check it needs failed), then a
summary; exit 0 when every check passed, 2 when any failed. Against the real Prometheus, Alertmanager
and Pushgateway of tests/stack.py and the Grafana and Mimir doubles. Also: diff and apply report every
configuration problem of the environment at once, before any request.
"""
from __future__ import annotations

import getpass
import os
import re
from pathlib import Path

import pytest
import yaml
from conftest import REFERENCE_SPEC
from doubles.grafana import GrafanaDouble
from doubles.mimir import MimirDouble
from hung import HungServer
from stack import Stack

from obsgen.deploy import http

GRAFANA_TOKEN = "glsa_doctor_test_token_0123456789"
MIMIR_TOKEN = "mimir_doctor_test_token_0123456789"
LINE = re.compile(r"(?P<mark>[✓✗!-]) (?P<backend>[^:]+): (?P<what>[^:]+): (?P<detail>.*)")


@pytest.fixture(scope="module")
def stack():
    s = Stack(components=("pushgateway", "alertmanager", "prometheus")).start(wait_for_targets=False)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def grafana():
    with GrafanaDouble(token=GRAFANA_TOKEN) as double:
        yield double


@pytest.fixture(scope="module")
def mimir():
    with MimirDouble(token=MIMIR_TOKEN) as double:
        yield double


@pytest.fixture(autouse=True)
def operator(monkeypatch: pytest.MonkeyPatch) -> None:
    """An operator who set the dev token and overrode nothing else."""
    for name in list(os.environ):
        if name.startswith("OBSGEN_") and name != "OBSGEN_STATE_DIR":
            monkeypatch.delenv(name)
    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", GRAFANA_TOKEN)


def doctor(run_cli, *args: str):
    result = run_cli("doctor", *args)
    lines = result.out.splitlines()
    checks = [LINE.fullmatch(line) for line in lines[:-1]]
    assert all(checks), result.out  # every line but the summary is a check
    return result, {(m["backend"], m["what"]): m for m in checks}, lines[-1] if lines else ""


def dev_flags(stack: Stack, grafana: GrafanaDouble) -> list[str]:
    return ["--env", "dev", "--grafana-url", grafana.url, "--prometheus-url", stack.prometheus_url,
            "--prometheus-rules-dir", str(stack.rules_dir), "--alertmanager-url", stack.alertmanager_url,
            "--alertmanager-config-file", str(stack.alertmanager_config_file)]


def marks(checks) -> dict[tuple[str, str], str]:
    return {key: m["mark"] for key, m in checks.items()}


# --- a healthy environment ---------------------------------------------------------------------------

def test_a_healthy_dev_passes_every_check(run_cli, stack, grafana) -> None:
    result, checks, summary = doctor(run_cli, *dev_flags(stack, grafana), "--pushgateway", stack.pushgateway_url)
    expected = {("Grafana (dev)", what) for what in ("URL", "token", "reachable", "token accepted", "dashboards")}
    expected |= {("Prometheus (dev)", what) for what in ("URL", "token", "reachable", "lifecycle API", "retention",
                                                        "rules_dir")}
    expected |= {("Alertmanager (dev)", what) for what in ("URL", "token", "reachable", "status API", "config_file")}
    expected |= {("Pushgateway", "URL"), ("Pushgateway", "reachable")}
    assert marks(checks) == {key: "✓" for key in expected}, result.out
    assert (result.code, summary) == (0, f"dev: all {len(expected)} checks passed")
    assert result.err == ""


def test_the_overrides_come_from_the_environment_as_for_diff(run_cli, stack, grafana, monkeypatch) -> None:
    monkeypatch.setenv("OBSGEN_GRAFANA_URL", grafana.url)
    monkeypatch.setenv("OBSGEN_PUSHGATEWAY_URL", stack.pushgateway_url)
    result, checks, _ = doctor(run_cli, "--env", "dev", "--only", "grafana")
    assert checks[("Grafana (dev)", "URL")]["detail"] == f"{grafana.url} (from $OBSGEN_GRAFANA_URL)"
    assert checks[("Pushgateway", "URL")]["detail"] == f"{stack.pushgateway_url} (from $OBSGEN_PUSHGATEWAY_URL)"
    assert result.code == 0, result.out


# --- Prometheus: lifecycle API and rules directory -----------------------------------------------------

def test_prometheus_without_the_lifecycle_api_is_a_problem_with_its_fix(run_cli, tmp_path) -> None:
    with Stack(components=("prometheus",), lifecycle=False, discover=False) as locked:
        result, checks, summary = doctor(run_cli, "--env", "dev", "--only", "prometheus", "--prometheus-url",
                                         locked.prometheus_url, "--prometheus-rules-dir", str(locked.rules_dir))
    line = checks[("Prometheus (dev)", "lifecycle API")]
    assert line.group(0) == ("✗ Prometheus (dev): lifecycle API: off: Prometheus refuses POST /-/reload, so apply "
                             "cannot load new rules — fix: start Prometheus with --web.enable-lifecycle")
    assert (result.code, summary) == (2, "dev: 1 problem (Prometheus (dev) lifecycle API); 5 checks passed")


def test_prometheus_keeping_less_than_the_longest_slo_period_is_a_warning_with_its_fix(run_cli) -> None:
    # the reference spec's SLOs are over 28d; Prometheus keeps 15d unless told otherwise
    with Stack(components=("prometheus",), retention=None, discover=False) as default:
        result, checks, summary = doctor(run_cli, "--env", "dev", "--only", "prometheus", "--prometheus-url",
                                         default.prometheus_url, "--prometheus-rules-dir", str(default.rules_dir))
    line = checks[("Prometheus (dev)", "retention")]
    assert line.group(0) == ("! Prometheus (dev): retention: Prometheus keeps 15d, less than SLO pass-rate's period "
                             "of 28d: its error budget and period ratio silently cover 15d only — fix: start "
                             "Prometheus with --storage.tsdb.retention.time=28d or more")
    assert (result.code, summary) == (0, "dev: all 5 checks passed, 1 warning")


def test_prometheus_keeping_the_longest_slo_period_says_so(run_cli, stack, grafana) -> None:
    _, checks, _ = doctor(run_cli, *dev_flags(stack, grafana), "--only", "prometheus")
    assert checks[("Prometheus (dev)", "retention")].group(0) == (
        "✓ Prometheus (dev): retention: Prometheus keeps 30d, at least SLO pass-rate's period of 28d")


def test_prometheus_with_the_lifecycle_api_says_so(run_cli, stack, grafana) -> None:
    _, checks, _ = doctor(run_cli, *dev_flags(stack, grafana), "--only", "prometheus")
    assert checks[("Prometheus (dev)", "lifecycle API")].group(0) == (
        "✓ Prometheus (dev): lifecycle API: on (--web.enable-lifecycle): apply can reload the rules")


def test_a_missing_rules_dir_is_a_problem_and_the_server_is_still_checked(run_cli, stack, grafana, tmp_path) -> None:
    missing = tmp_path / "no-such-dir"
    result, checks, _ = doctor(run_cli, *dev_flags(stack, grafana), "--only", "prometheus",
                               "--prometheus-rules-dir", str(missing))
    assert checks[("Prometheus (dev)", "rules_dir")].group(0) == (
        f"✗ Prometheus (dev): rules_dir: {missing} does not exist — fix: create it where Prometheus's rule_files "
        f"globs look (mkdir -p {missing}), or pass --prometheus-rules-dir")
    assert checks[("Prometheus (dev)", "reachable")]["mark"] == "✓"
    assert result.code == 2


def test_a_rules_dir_that_is_a_file_is_a_problem(run_cli, stack, grafana, tmp_path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("groups: []\n")
    _, checks, _ = doctor(run_cli, *dev_flags(stack, grafana), "--only", "prometheus",
                          "--prometheus-rules-dir", str(path))
    assert checks[("Prometheus (dev)", "rules_dir")]["detail"].startswith(f"{path} is not a directory — fix: ")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_rules_dir_obsgen_cannot_write_is_a_problem(run_cli, stack, grafana, tmp_path) -> None:
    locked = tmp_path / "rules"
    locked.mkdir(mode=0o555)
    _, checks, _ = doctor(run_cli, *dev_flags(stack, grafana), "--only", "prometheus",
                          "--prometheus-rules-dir", str(locked))
    assert checks[("Prometheus (dev)", "rules_dir")]["detail"].startswith(f"{locked} is not writable by ")


# --- Alertmanager: the config file ---------------------------------------------------------------------

def test_a_missing_alertmanager_config_file_is_a_problem(run_cli, stack, grafana, tmp_path) -> None:
    missing = tmp_path / "alertmanager.yml"
    result, checks, _ = doctor(run_cli, *dev_flags(stack, grafana), "--only", "alertmanager",
                               "--alertmanager-config-file", str(missing))
    assert checks[("Alertmanager (dev)", "config_file")].group(0) == (
        f"✗ Alertmanager (dev): config_file: {missing} does not exist — fix: point the spec's config_file (or "
        f"--alertmanager-config-file) at the file Alertmanager runs with (its --config.file)")
    assert checks[("Alertmanager (dev)", "status API")]["mark"] == "✓"
    assert result.code == 2


def test_an_alertmanager_config_file_that_is_not_a_mapping_is_a_problem(run_cli, stack, grafana, tmp_path) -> None:
    odd = tmp_path / "alertmanager.yml"
    odd.write_text("- route\n- receivers\n")
    _, checks, _ = doctor(run_cli, *dev_flags(stack, grafana), "--only", "alertmanager",
                          "--alertmanager-config-file", str(odd))
    assert checks[("Alertmanager (dev)", "config_file")]["mark"] == "✗"
    assert checks[("Alertmanager (dev)", "config_file")]["detail"].startswith(f"{odd} is not a YAML mapping")


# --- credentials --------------------------------------------------------------------------------------

def test_a_wrong_grafana_token_is_rejected_and_named(run_cli, stack, grafana, monkeypatch) -> None:
    monkeypatch.setenv("OBSGEN_DEV_GRAFANA_TOKEN", "not-the-token")
    result, checks, _ = doctor(run_cli, *dev_flags(stack, grafana), "--only", "grafana")
    assert checks[("Grafana (dev)", "token")]["mark"] == "✓"  # it is set ...
    assert checks[("Grafana (dev)", "token accepted")].group(0) == (  # ... but Grafana refuses it
        "✗ Grafana (dev): token accepted: Grafana (dev) rejected the token (HTTP 401) — fix: the token in "
        "OBSGEN_DEV_GRAFANA_TOKEN is wrong, expired or lacks permission: give it a valid one")
    assert checks[("Grafana (dev)", "dashboards")]["mark"] == "-"
    assert result.code == 2


def test_an_unset_token_is_named_and_nothing_is_sent(run_cli, stack, grafana, monkeypatch) -> None:
    monkeypatch.delenv("OBSGEN_DEV_GRAFANA_TOKEN")
    grafana.reset_requests()
    result, checks, summary = doctor(run_cli, *dev_flags(stack, grafana), "--only", "grafana")
    assert checks[("Grafana (dev)", "token")].group(0) == (
        "✗ Grafana (dev): token: environment variable OBSGEN_DEV_GRAFANA_TOKEN is not set — fix: export "
        "OBSGEN_DEV_GRAFANA_TOKEN=<the Grafana token> where obsgen runs")
    assert checks[("Grafana (dev)", "reachable")].group(0) == (
        "- Grafana (dev): reachable: not checked: the token check failed")
    assert grafana.requests == []
    assert (result.code, summary) == (2, "dev: 1 problem (Grafana (dev) token); 1 check passed, 3 not run")


# --- prod: Mimir, and every problem in one run ---------------------------------------------------------

def prod_spec(tmp_path: Path, grafana_token_file: Path, **mimir: str) -> Path:
    """The reference spec with prod's Grafana token in `grafana_token_file` and its secret files under
    tmp_path/secrets (tmp_path, which holds both, is listed in OBSGEN_SECRET_DIRS by the tests); `mimir` overrides keys of both Mimir backends."""
    data = yaml.safe_load(REFERENCE_SPEC.read_text())
    prod = next(e for e in data["environments"] if e["name"] == "prod")
    prod["backends"]["grafana"]["token_file"] = str(grafana_token_file)
    for kind in ("prometheus", "alertmanager"):
        prod["backends"][kind].update(mimir)
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    for target in prod["channels"].values():
        for key in ("routing_key_file", "api_url_file"):
            if key in target:
                path = secrets / Path(target[key]).name
                path.write_text("https://hooks.example/secret\n")
                target[key] = str(path)
    path = tmp_path / "selftest.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def prod_flags(spec: Path, grafana: GrafanaDouble, mimir: MimirDouble) -> list[str]:
    return ["--spec", str(spec), "--env", "prod", "--grafana-url", grafana.url, "--prometheus-url", mimir.url,
            "--alertmanager-url", mimir.url]


def test_prod_with_two_problems_names_both_in_one_run(run_cli, grafana, mimir, tmp_path, monkeypatch) -> None:
    """A missing Grafana token file AND an unset Mimir token: both named, with their fixes, in one run."""
    token_file = tmp_path / "obsgen-grafana-token"  # never written
    spec = prod_spec(tmp_path, token_file)
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", str(tmp_path))  # the Grafana token file and the secrets under it
    grafana.reset_requests()
    mimir.reset_requests()
    result, checks, summary = doctor(run_cli, *prod_flags(spec, grafana, mimir))
    assert checks[("Grafana (prod)", "token")].group(0) == (
        f"✗ Grafana (prod): token: cannot read token_file {token_file}: No such file or directory — fix: write the "
        f"Grafana token to {token_file}, readable by {getpass.getuser()}, or name another "
        f"file in the spec's token_file")
    for backend in ("Mimir ruler (prod)", "Mimir Alertmanager (prod)"):
        assert checks[(backend, "token")].group(0) == (
            f"✗ {backend}: token: environment variable OBSGEN_PROD_MIMIR_TOKEN is not set — fix: export "
            f"OBSGEN_PROD_MIMIR_TOKEN=<the {backend.removesuffix(' (prod)')} token> where obsgen runs")
    assert {key for key, mark in marks(checks).items() if mark == "✗"} == {
        ("Grafana (prod)", "token"), ("Mimir ruler (prod)", "token"), ("Mimir Alertmanager (prod)", "token")}
    assert checks[("Mimir Alertmanager (prod)", "secret files")]["mark"] == "✓"
    assert result.code == 2
    assert summary.startswith("prod: 3 problems (Grafana (prod) token, Mimir ruler (prod) token, Mimir "
                              "Alertmanager (prod) token); ")
    assert grafana.requests == [] and mimir.requests == []  # no token, no request


def test_a_healthy_prod_on_mimir_passes_and_names_the_tenant(run_cli, grafana, mimir, tmp_path, monkeypatch) -> None:
    token_file = tmp_path / "obsgen-grafana-token"
    token_file.write_text(GRAFANA_TOKEN + "\n")
    spec = prod_spec(tmp_path, token_file)
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", str(tmp_path))  # the Grafana token file and the secrets under it
    monkeypatch.setenv("OBSGEN_PROD_MIMIR_TOKEN", MIMIR_TOKEN)
    result, checks, summary = doctor(run_cli, *prod_flags(spec, grafana, mimir))
    assert {mark for mark in marks(checks).values()} == {"✓"}, result.out
    assert checks[("Mimir ruler (prod)", "tenant")]["detail"] == (
        "the ruler answers for tenant platform (no rule groups yet)")
    assert checks[("Mimir Alertmanager (prod)", "tenant")]["detail"] == (
        "the Alertmanager config API answers for tenant platform (no config yet; apply creates it)")
    assert (result.code, summary) == (0, f"prod: all {len(checks)} checks passed")


def test_a_wrong_mimir_token_and_a_wrong_api_path_are_told_apart(run_cli, grafana, mimir, tmp_path,
                                                                  monkeypatch) -> None:
    token_file = tmp_path / "obsgen-grafana-token"
    token_file.write_text(GRAFANA_TOKEN + "\n")
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", str(tmp_path))  # the Grafana token file and the secrets under it
    monkeypatch.setenv("OBSGEN_PROD_MIMIR_TOKEN", "wrong")
    _, checks, _ = doctor(run_cli, *prod_flags(prod_spec(tmp_path, token_file), grafana, mimir))
    assert checks[("Mimir ruler (prod)", "token accepted")]["detail"].startswith(
        "Mimir ruler (prod) rejected the token (HTTP 401) — fix: ")
    monkeypatch.setenv("OBSGEN_PROD_MIMIR_TOKEN", MIMIR_TOKEN)
    spec = prod_spec(tmp_path, token_file, api_path="/nothing/here")
    result, checks, _ = doctor(run_cli, *prod_flags(spec, grafana, mimir), "--only", "prometheus")
    assert checks[("Mimir ruler (prod)", "tenant")].group(0) == (
        f"✗ Mimir ruler (prod): tenant: no ruler at {mimir.url}/nothing/here (HTTP 404: 404 page not found) — "
        f"fix: set api_path in the spec (Cortex: /api/v1/rules) and check the ruler API is enabled "
        f"(-ruler.enable-api)")
    assert result.code == 2


# --- all at once, each within its deadline ---------------------------------------------------------------

def test_a_hung_backend_is_reported_within_its_deadline_beside_the_others(run_cli, stack, grafana,
                                                                          monkeypatch) -> None:
    monkeypatch.setattr(http, "TIMEOUT", 1.0)
    hung = HungServer()
    try:
        result, checks, _ = doctor(run_cli, *dev_flags(stack, grafana), "--grafana-url", hung.url)
    finally:
        hung.close()
    assert checks[("Grafana (dev)", "reachable")]["detail"].startswith(
        f"Grafana (dev) at {hung.url} did not answer GET /api/search within 1 s — fix: is Grafana running at "
        f"{hung.url}? fix --grafana-url")
    assert checks[("Prometheus (dev)", "lifecycle API")]["mark"] == "✓"  # the others were checked all the same
    assert checks[("Alertmanager (dev)", "status API")]["mark"] == "✓"
    assert result.code == 2


def test_an_unknown_environment_is_one_line(run_cli) -> None:
    result = run_cli("doctor", "--env", "qa")
    assert (result.code, result.out) == (2, "")
    assert result.err == "obsgen: error: unknown environment 'qa' (the spec defines: dev, staging, prod)\n"


# --- diff and apply: every configuration problem at once, before any request --------------------------------

@pytest.mark.parametrize("command", [("diff",), ("apply", "--dry-run")])
def test_diff_and_apply_name_every_configuration_problem_before_any_request(run_cli, grafana, mimir, tmp_path,
                                                                           monkeypatch, command) -> None:
    token_file = tmp_path / "obsgen-grafana-token"  # never written
    spec = prod_spec(tmp_path, token_file)
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", str(tmp_path))  # the Grafana token file and the secrets under it
    grafana.reset_requests()
    mimir.reset_requests()
    result = run_cli(*command, *prod_flags(spec, grafana, mimir))
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        f"obsgen: error: 2 problems with the backends of prod, found before any request: grafana (prod): cannot "
        f"read token_file {token_file}: No such file or directory; prometheus and alertmanager (prod): environment "
        f"variable OBSGEN_PROD_MIMIR_TOKEN is not set (`obsgen doctor --env prod` checks every backend)\n")
    assert grafana.requests == [] and mimir.requests == []


def test_doctor_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    from obsgen.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["doctor", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "obsgen doctor --env" in out.split("examples:")[1]
