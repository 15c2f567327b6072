"""Every URL obsgen is given is checked the same way (issue 12, item 2).

Flags (--grafana-url, --prometheus-url, --alertmanager-url, --pushgateway) and environment variables
(OBSGEN_*_URL) are held to the rules the spec's URLs are held to: http or https, a host, a port that is
a number, nothing a second URL parser could read as another host. A mistake is one line naming the flag
or variable it came from, exit 2, no traceback, and no request is made.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REFERENCE_SPEC, ROOT

REPORT = str(ROOT / "tests" / "reports" / "passing.json")
URL_VARIABLES = ("OBSGEN_GRAFANA_URL", "OBSGEN_PROMETHEUS_URL", "OBSGEN_ALERTMANAGER_URL", "OBSGEN_PUSHGATEWAY_URL")


@pytest.fixture(autouse=True)
def no_url_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in URL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def obsgen(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`obsgen ARGS` in-process: (exit code, stdout, stderr). A usage error ends argument parsing with
    SystemExit, as argparse's own do; its code is the exit code."""
    from obsgen.cli import main

    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


# --- the mistakes of the issue, as a user meets them: a real process --------------------------------

@pytest.mark.parametrize(("args", "line"), [
    (("emit", "--env", "dev", "--report", REPORT, "--pushgateway", "127.0.0.1:9091"),
     "obsgen: error: --pushgateway: '127.0.0.1:9091' is not a URL: write it as http://127.0.0.1:9091"),
    (("diff", "--env", "dev", "--grafana-url", "localhost:3000"),
     "obsgen: error: --grafana-url: 'localhost:3000' is not a URL: write it as http://localhost:3000"),
    (("diff", "--env", "dev", "--prometheus-url", "prometheus:9090"),
     "obsgen: error: --prometheus-url: 'prometheus:9090' is not a URL: write it as http://prometheus:9090"),
    (("drill", "--env", "dev", "--tier", "kernel", "--alertmanager-url", "127.0.0.1:9093"),
     "obsgen: error: --alertmanager-url: '127.0.0.1:9093' is not a URL: write it as http://127.0.0.1:9093"),
])
def test_the_url_mistakes_of_the_issue_are_one_line_and_exit_2(args: tuple[str, ...], line: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in URL_VARIABLES}
    proc = subprocess.run([sys.executable, "-m", "obsgen", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", line + "\n")


# --- every kind of mistake, from a flag or from a variable ------------------------------------------

MISTAKES = [
    ("localhost:3000", "write it as http://localhost:3000"),
    ("127.0.0.1", "write it as http://127.0.0.1"),
    ("", "it is empty"),
    ("ftp://grafana.example.com", "scheme 'ftp' is not http or https"),
    ("http://", "it has no host"),
    ("http://grafana.example.com:99999", "its port is not a number from 1 to 65535"),
    ("http://grafana.example.com:30o0", "its port is not a number from 1 to 65535"),
    ("http://grafana.example.com :3000", "it contains whitespace, a backslash or a control character"),
    ("http://admin:admin@grafana.example.com",
     "user info (user:password@) is not supported; credentials come from token_env / token_file"),
    ("http://grafana.example.com\\@evil.example", "it contains whitespace, a backslash or a control character"),
    ("http://%65vil.example", "its host is ambiguous"),
    ("http://grafana.example.com/?org=1", "a base URL has no ?query or #fragment"),
]


@pytest.mark.parametrize(("url", "why"), MISTAKES)
def test_a_malformed_url_flag_names_the_flag(capsys, url: str, why: str) -> None:
    code, out, err = obsgen(capsys, "diff", "--env", "dev", "--only", "grafana", "--grafana-url", url)
    assert (code, out, err) == (2, "", f"obsgen: error: --grafana-url: {url!r} is not a URL: {why}\n")


@pytest.mark.parametrize(("url", "why"), [m for m in MISTAKES if m[0]])  # an empty variable is an unset one
def test_a_malformed_url_variable_names_the_variable(capsys, monkeypatch, url: str, why: str) -> None:
    monkeypatch.setenv("OBSGEN_GRAFANA_URL", url)
    code, out, err = obsgen(capsys, "diff", "--env", "dev", "--only", "grafana")
    assert (code, out, err) == (2, "", f"obsgen: error: OBSGEN_GRAFANA_URL: {url!r} is not a URL: {why}\n")


# every URL input of every command: (command line, the flag, its variable or None)
INPUTS = [
    (("diff", "--env", "dev"), "--grafana-url", "OBSGEN_GRAFANA_URL"),
    (("diff", "--env", "dev"), "--prometheus-url", "OBSGEN_PROMETHEUS_URL"),
    (("diff", "--env", "dev"), "--alertmanager-url", "OBSGEN_ALERTMANAGER_URL"),
    (("apply", "--env", "dev", "--dry-run"), "--grafana-url", "OBSGEN_GRAFANA_URL"),
    (("apply", "--env", "dev", "--dry-run"), "--prometheus-url", "OBSGEN_PROMETHEUS_URL"),
    (("apply", "--env", "dev", "--dry-run"), "--alertmanager-url", "OBSGEN_ALERTMANAGER_URL"),
    (("doctor", "--env", "dev"), "--grafana-url", "OBSGEN_GRAFANA_URL"),
    (("doctor", "--env", "dev"), "--prometheus-url", "OBSGEN_PROMETHEUS_URL"),
    (("doctor", "--env", "dev"), "--alertmanager-url", "OBSGEN_ALERTMANAGER_URL"),
    (("doctor", "--env", "dev"), "--pushgateway", "OBSGEN_PUSHGATEWAY_URL"),
    (("drill", "--env", "dev", "--tier", "kernel"), "--pushgateway", "OBSGEN_PUSHGATEWAY_URL"),
    (("drill", "--env", "dev", "--tier", "kernel", "--pushgateway", "http://127.0.0.1:9"), "--alertmanager-url",
     "OBSGEN_ALERTMANAGER_URL"),
    (("emit", "--env", "dev", "--report", REPORT), "--pushgateway", None),
]


@pytest.mark.parametrize(("command", "flag", "variable"), INPUTS, ids=lambda v: v if isinstance(v, str) else v[0] if v else "-")
def test_every_url_flag_is_checked(capsys, command: tuple[str, ...], flag: str, variable: str | None) -> None:
    code, out, err = obsgen(capsys, *command, flag, "pushgateway:9091")
    assert (code, out, err) == (2, "", f"obsgen: error: {flag}: 'pushgateway:9091' is not a URL: write it "
                                       f"as http://pushgateway:9091\n")


@pytest.mark.parametrize(("command", "flag", "variable"), [i for i in INPUTS if i[2]],
                         ids=lambda v: v if isinstance(v, str) else v[0] if v else "-")
def test_every_url_variable_is_checked(capsys, monkeypatch, command: tuple[str, ...], flag: str,
                                       variable: str) -> None:
    monkeypatch.setenv(variable, "http://host:port")
    code, out, err = obsgen(capsys, *command)
    assert (code, out, err) == (2, "", f"obsgen: error: {variable}: 'http://host:port' is not a URL: its port is "
                                       f"not a number from 1 to 65535\n")


def test_a_flag_given_is_checked_and_the_variable_it_overrides_is_not_used(capsys, monkeypatch) -> None:
    """The flag wins over the variable; a mistake in the flag names the flag."""
    monkeypatch.setenv("OBSGEN_PUSHGATEWAY_URL", "http://127.0.0.1:9")
    code, _, err = obsgen(capsys, "drill", "--env", "dev", "--tier", "kernel", "--pushgateway", "127.0.0.1:9091")
    assert (code, err) == (2, "obsgen: error: --pushgateway: '127.0.0.1:9091' is not a URL: write it as "
                              "http://127.0.0.1:9091\n")


def test_a_spec_url_the_schema_lets_through_is_checked_at_use_by_the_same_rules(capsys, tmp_path) -> None:
    spec = tmp_path / "selftest.yaml"
    text = REFERENCE_SPEC.read_text()
    assert text.count("http://grafana.dev.example.internal:3000") == 1
    spec.write_text(text.replace("http://grafana.dev.example.internal:3000", "http://grafana.dev.example.internal:0"))
    code, out, err = obsgen(capsys, "diff", "--env", "dev", "--only", "grafana", "--spec", str(spec))
    assert (code, out, err) == (2, "", "obsgen: error: grafana (dev): the spec's URL 'http://grafana.dev.example."
                                       "internal:0' is not an http(s) URL: its port is not a number from 1 to "
                                       "65535\n")


def test_the_url_check_is_one_function_with_the_rules_of_the_spec_urls() -> None:
    from obsgen.deploy.access import checked_url
    from obsgen.errors import ObsgenError

    for good in ("http://127.0.0.1:9091", "https://grafana.example.com", "http://[::1]:3000",
                 "https://mimir.example.com/prefix", "HTTP://Grafana.Example.COM:3000/"):
        assert checked_url(good, "--x") == good
    with pytest.raises(ObsgenError) as caught:
        checked_url("grafana.example.com", "OBSGEN_GRAFANA_URL")
    assert str(caught.value) == ("OBSGEN_GRAFANA_URL: 'grafana.example.com' is not a URL: write it as "
                                 "http://grafana.example.com")
