"""Issue 18: in a shared Alertmanager config obsgen claims only what is exactly its own, warns when its
route hides alerts from another team's route, and never shows an inline secret.

What is obsgen's (for selftest in dev) is written out here from the issue, independently of obsgen's
code: the route directly under the root whose matchers are exactly `service="selftest"` and `env="dev"`
and whose receiver is one of obsgen's (`selftest/dev/...`); the receivers with that prefix; the inhibit
rules written as obsgen writes them. Another team's narrower route for the same service
(`alertname="QASmokeTestFailed"` -> qa-team), an old-style `match:` route and an inhibit rule that also
names an `alertname` merely overlap: they come out of an apply exactly as they went in, and the plan
names them.

Against a real Alertmanager 0.25 (tests/stack.py); Mimir's secret echo against the Mimir double.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import require_tool, run_tool
from stack import Stack
from test_apply_live import one_error_line, titles, variant

from obsgen.compile import amtree

OWNER = amtree.Owner("selftest", "dev")
PREFIX = "selftest/dev/"

QA_ROUTE = """\
    - matchers: ['service="selftest"', 'env="dev"', 'alertname="QASmokeTestFailed"']
      receiver: qa-team
"""
LEGACY_ROUTE = """\
    - match: {service: selftest, env: dev}
      receiver: legacy-team
"""
AUDIT_ROUTE = """\
    - receiver: audit-log   # sees every alert, and lets it go on
      continue: true
"""
QA_RULE = """\
  - source_matchers: ['service="selftest"', 'env="dev"', 'alertname="QASmokeTestFailed"']
    target_matchers: ['service="selftest"', 'env="dev"', 'severity="info"']
    equal: [env]
"""
RECEIVERS = """\
receivers:
  - name: default-sink
  - name: qa-team
  - name: legacy-team
  - name: audit-log
"""


def shared(*routes: str, rules: str = "") -> str:
    text = ("route:\n  receiver: default-sink\n  group_by: [alertname]\n  routes:\n" + "".join(routes)
            + RECEIVERS)
    return text + ("inhibit_rules:\n" + rules if rules else "")


KERNEL = {"alertname": "SelftestKernelStepFailed", "service": "selftest", "env": "dev", "tier": "kernel",
          "severity": "critical", "step_id": "core-checks"}
QA_SMOKE = {"alertname": "QASmokeTestFailed", "service": "selftest", "env": "dev"}


@pytest.fixture(scope="module")
def stack():
    with Stack(components=("alertmanager",), alertmanager_config=shared(QA_ROUTE)) as s:
        yield s


@pytest.fixture
def am(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Stack:
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OBSGEN_ALERTMANAGER_URL", stack.alertmanager_url)
    monkeypatch.setenv("OBSGEN_ALERTMANAGER_CONFIG_FILE", str(stack.alertmanager_config_file))
    return stack


def load(am: Stack, text: str | bytes) -> None:
    if isinstance(text, bytes):
        am.alertmanager_config_file.write_bytes(text)
    else:
        am.write_alertmanager_config(text)
    assert am.reload_alertmanager() == 200


def apply(run_cli, *args: str):
    return run_cli("apply", "--env", "dev", "--yes", "--only", "alertmanager", *args)


def diff(run_cli, *args: str):
    return run_cli("diff", "--env", "dev", "--only", "alertmanager", *args)


def receivers_for(config_file: Path, labels: dict[str, str]) -> str:
    proc = run_tool(require_tool("amtool"), "config", "routes", "test", f"--config.file={config_file}",
                    *(f"{name}={value}" for name, value in labels.items()))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def notes(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("obsgen: note: ")]


def spec_with(tmp_path: Path, **alertmanager):
    def edit(spec):
        dev = next(e for e in spec["environments"] if e["name"] == "dev")
        dev["backends"]["alertmanager"].update(alertmanager)
    return str(variant(tmp_path, edit))


CREATED = sorted([f"+ alertmanager route {PREFIX[:-1]}", f"+ alertmanager inhibit-rules {PREFIX[:-1]}"]
                 + [f"+ alertmanager receiver {PREFIX}{c}" for c in ("pagerduty-oncall", "slack-tickets",
                                                                     "slack-info")])


# ---- claims, offline ---------------------------------------------------------------------------------
@pytest.mark.parametrize("route", [
    {"receiver": "qa-team", "matchers": ['service="selftest"', 'env="dev"', 'alertname="QASmokeTestFailed"']},
    {"receiver": "legacy-team", "match": {"service": "selftest", "env": "dev"}},
    {"receiver": "selftest/dev/slack-info", "match": {"service": "selftest", "env": "dev"}},
    {"receiver": "ops", "matchers": ['service="selftest"', 'env="dev"']},
    {"receiver": "selftest/dev/slack-info", "matchers": ['service="selftest"', 'env="dev"', 'team="qa"']},
], ids=["narrower", "legacy match", "legacy match to obsgen's receiver", "foreign receiver", "extra matcher"])
def test_a_route_that_merely_overlaps_is_not_claimed_and_is_named(route: dict) -> None:
    config = {"route": {"receiver": "x", "routes": [route]}}
    assert amtree.extract(config, OWNER).route is None
    [note] = [n for n in amtree.overlaps(config, OWNER) if n.startswith("route #")]
    assert note.startswith("route #1 (") and f"-> {route['receiver']} overlaps obsgen's route" in note
    assert note.endswith("left as it is")
    place = {"route": {"receiver": "x", "routes": [route]}}
    amtree.place(place, OWNER, route={"matchers": list(OWNER.matchers), "receiver": f"{PREFIX}a"}, drop_route=True)
    assert place["route"]["routes"][1] == route  # placing or dropping obsgen's route never takes it


def test_only_an_inhibit_rule_written_as_obsgen_writes_its_rules_is_claimed() -> None:
    ours = {"source_matchers": ['service="selftest"', 'env="dev"', 'tier="kernel"', 'severity="critical"'],
            "target_matchers": ['service="selftest"', 'env="dev"', 'tier=~"governance|optional"'], "equal": ["env"]}
    qa = yaml.safe_load(QA_RULE)[0]
    legacy = {"source_match": {"service": "selftest", "env": "dev"}, "target_matchers": list(OWNER.matchers)}
    config = {"inhibit_rules": [qa, ours, legacy]}
    assert amtree.extract(config, OWNER).inhibit_rules == [ours]
    assert [n.split(" selects")[0] for n in amtree.overlaps(config, OWNER)] == ["inhibit rule #1", "inhibit rule #3"]
    amtree.place(config, OWNER, inhibit_rules=[])
    assert config["inhibit_rules"] == [qa, legacy]


def test_a_receiver_with_obsgens_prefix_that_only_another_teams_route_uses_is_not_claimed() -> None:
    config = {"route": {"receiver": "x", "routes": [{"receiver": "selftest/dev/qa", "matchers": ['team="qa"']}]},
              "receivers": [{"name": "x"}, {"name": "selftest/dev/qa"}, {"name": "selftest/dev/old"}]}
    assert list(amtree.extract(config, OWNER).receivers) == ["selftest/dev/old"]  # unused: obsgen's, prunable
    assert any("receiver selftest/dev/qa" in n for n in amtree.overlaps(config, OWNER))


# ---- claims, live ------------------------------------------------------------------------------------
def test_other_teams_overlapping_route_legacy_route_and_inhibit_rule_survive_apply(run_cli, am: Stack,
                                                                                  tmp_path: Path) -> None:
    before = shared(QA_ROUTE, LEGACY_ROUTE, rules=QA_RULE)
    load(am, before)
    planned = diff(run_cli, "--exit-code")
    assert planned.code == 1, planned.err
    assert titles(planned.out) == CREATED  # nothing of theirs shows as an update or delete of obsgen's
    said = notes(planned.err)
    assert any('route #1 (service="selftest", env="dev", alertname="QASmokeTestFailed") -> qa-team overlaps '
               "obsgen's route" in n and n.endswith("left as it is") for n in said), said
    assert any("route #2 (" in n and "-> legacy-team overlaps obsgen's route" in n for n in said), said
    assert any("inhibit rule #1 selects selftest/dev's alerts" in n for n in said), said

    result = apply(run_cli, "--spec", spec_with(tmp_path, route={"position": "last"}))
    assert result.code == 0, result.err
    text = am.alertmanager_config_file.read_text()
    for block in (QA_ROUTE, LEGACY_ROUTE, QA_RULE):
        assert block in text, block
    routes = yaml.safe_load(text)["route"]["routes"]
    assert [r["receiver"] for r in routes] == ["qa-team", "legacy-team", f"{PREFIX}slack-info"]
    rules = yaml.safe_load(text)["inhibit_rules"]
    assert rules[0] == yaml.safe_load(QA_RULE)[0] and len(rules) > 1
    # the QA team's smoke test still reaches the QA team; the service's own alerts reach obsgen's
    # receivers except where another team's earlier route takes them
    assert receivers_for(am.alertmanager_config_file, QA_SMOKE) == "qa-team"
    assert receivers_for(am.alertmanager_config_file, {**KERNEL}) == "legacy-team"  # the legacy route comes first
    again = diff(run_cli, "--spec", spec_with(tmp_path, route={"position": "last"}), "--exit-code")
    assert again.code == 0, again.out + again.err


def test_an_update_of_obsgens_route_leaves_the_overlapping_routes(run_cli, am: Stack) -> None:
    load(am, shared(QA_ROUTE))
    assert apply(run_cli).code == 0
    text = am.alertmanager_config_file.read_text()
    assert QA_ROUTE in text
    # the QA route now sits after obsgen's route, and the plan says obsgen's route hides it
    shown = diff(run_cli)
    assert "No changes" in shown.out
    [hidden] = [n for n in notes(shown.err) if "would hide alerts" in n]
    assert "-> qa-team" in hidden and "e.g. QASmokeTestFailed" in hidden
    assert "set `route: {position: last}` on dev's alertmanager backend to keep them seen" in hidden


# ---- shadowing ---------------------------------------------------------------------------------------
def test_a_catch_all_audit_route_with_continue_is_named_and_the_placement_that_keeps_it_is_offered(
        run_cli, am: Stack, tmp_path: Path) -> None:
    load(am, shared(AUDIT_ROUTE))
    planned = diff(run_cli)
    [hidden] = [n for n in notes(planned.err) if "would hide alerts" in n]
    assert hidden == (
        f"obsgen: note: Alertmanager (dev): {am.alertmanager_config_file}: obsgen's route for selftest/dev "
        "(route: {position: first}) comes before route #1 (no matchers: every alert) -> audit-log, which has "
        "`continue: true`, and would hide alerts from it (e.g. SelftestKernelStepFailed): Alertmanager stops at "
        "obsgen's route; set `route: {position: last}` on dev's alertmanager backend to keep them seen "
        "(obsgen's route still gets every alert of selftest in dev)")
    assert apply(run_cli).code == 0
    assert receivers_for(am.alertmanager_config_file, KERNEL) == f"{PREFIX}pagerduty-oncall"  # what the note said

    spec = spec_with(tmp_path, route={"position": "last"})
    followed = apply(run_cli, "--spec", spec)
    assert followed.code == 0, followed.err
    assert not [n for n in notes(followed.err) if "would hide" in n]
    assert receivers_for(am.alertmanager_config_file, KERNEL) == f"audit-log,{PREFIX}pagerduty-oncall"


def test_no_note_when_obsgens_route_lets_alerts_continue(run_cli, am: Stack, tmp_path: Path) -> None:
    load(am, shared(AUDIT_ROUTE))
    spec = spec_with(tmp_path, route={"continue": True})
    shown = diff(run_cli, "--spec", spec)
    assert shown.code == 0 and not [n for n in notes(shown.err) if "would hide" in n], shown.err


# ---- secrets in file mode ---------------------------------------------------------------------------
ROUTING_KEY = "pd-hand-added-SECRET-31f9a0c2"
HOOK = "https://hooks.example/x?token=hand-added-SECRET-5b7e"
CREDENTIAL = "hand-added-credential-SECRET-9c1f"


def test_an_inline_secret_in_obsgens_receiver_never_reaches_a_diff_the_ledger_or_history(
        run_cli, am: Stack, tmp_path: Path) -> None:
    load(am, shared())
    assert apply(run_cli).code == 0
    text = am.alertmanager_config_file.read_text()
    text = re.sub(r"routing_key_file: \S+", f"routing_key: {ROUTING_KEY}", text, count=1)
    at = re.search(rf"^( *)- name: {PREFIX}slack-info\n", text, re.MULTILINE)
    text = (text[:at.end()] + f"{at.group(1)}  webhook_configs:\n{at.group(1)}    - url: '{HOOK}'\n"
            f"{at.group(1)}      http_config:\n{at.group(1)}        authorization:\n"
            f"{at.group(1)}          credentials: {CREDENTIAL}\n" + text[at.end():])
    load(am, text)
    outputs = []
    for fmt in ("text", "markdown", "json"):
        shown = diff(run_cli, "--format", fmt, "--exit-code")
        assert shown.code == 1, shown.err
        outputs += [shown.out, shown.err]
    assert "webhook_configs" in outputs[0] and "routing_key: <secret>" in outputs[0]
    assert json.loads(outputs[4])["changes"]
    applied = apply(run_cli)
    assert applied.code == 0, applied.err
    outputs += [applied.out, applied.err]
    history = run_cli("history", "--env", "dev")
    outputs += [history.out, history.err]
    state = [p.read_text(errors="replace") for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert state
    for secret in (ROUTING_KEY, HOOK, CREDENTIAL, "hand-added-SECRET"):
        assert not any(secret in t for t in outputs + state), secret
    assert ROUTING_KEY not in am.alertmanager_config_file.read_text()  # and apply took them out


def test_an_error_quoting_another_teams_secret_does_not_repeat_it(run_cli, am: Stack, tmp_path: Path) -> None:
    """amtool and Alertmanager quote a URL they cannot parse; obsgen's error line and ledger must not."""
    bad = "https://hooks example/y?token=their-SECRET-7d1e"
    load(am, shared())
    am.write_alertmanager_config(shared() .replace("  - name: audit-log\n",
                                                   f"  - name: audit-log\n    webhook_configs:\n"
                                                   f"      - url: '{bad}'\n"))
    result = apply(run_cli)
    assert result.code == 2
    line = one_error_line(result.err)
    assert "<secret>" in line or "rejects" in line
    state = [p.read_text(errors="replace") for p in (tmp_path / "state").rglob("*") if p.is_file()]
    for text in [line, *state]:
        assert "their-SECRET" not in text and "hooks example" not in text, text


# ---- Mimir: a secret that is not a URL ----------------------------------------------------------------
MIMIR_TOKEN = "mimir_claims_test_token_0123456789"
NOT_A_URL = "https://hooks example/services/T0/B0/SECRET-not-a-url-4c2d"


@pytest.fixture
def mimir_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from conftest import REFERENCE_SPEC
    from doubles.mimir import MimirDouble

    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "pagerduty-routing-key").write_text("pd-routing-key-SECRET-0123456789abcdef\n")
    (secrets / "slack-webhook-url").write_text(NOT_A_URL + "\n")
    spec = tmp_path / "selftest.yaml"
    spec.write_text(REFERENCE_SPEC.read_text().replace("/etc/alertmanager/secrets/prod/", f"{secrets}/"))
    monkeypatch.setenv("OBSGEN_PROD_MIMIR_TOKEN", MIMIR_TOKEN)
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", str(secrets))
    with MimirDouble(token=MIMIR_TOKEN) as double:
        yield double, spec, secrets


def test_mimir_a_secret_that_is_not_a_url_is_named_by_its_field_never_echoed(run_cli, mimir_spec,
                                                                               tmp_path: Path) -> None:
    mimir, spec, secrets = mimir_spec
    result = run_cli("apply", "--env", "prod", "--spec", str(spec), "--only", "alertmanager", "--yes",
                     "--alertmanager-url", mimir.url)
    assert result.code == 2
    line = one_error_line(result.err)
    assert "api_url_file" in line and f"{secrets}/slack-webhook-url" in line
    assert not [r for r in mimir.requests if r[0] == "POST"]  # refused before anything was sent
    history = run_cli("history", "--env", "prod")
    state = [p.read_text(errors="replace") for p in (tmp_path / "state").rglob("*") if p.is_file()]
    for text in [result.out, result.err, history.out, history.err, *state]:
        assert "SECRET-not-a-url" not in text and "hooks example" not in text, text


def test_mimir_a_refusal_quoting_an_inlined_secret_does_not_repeat_it(run_cli, mimir_spec, tmp_path: Path) -> None:
    """Whatever Mimir answers, obsgen's error line shows no value it sent inline."""
    mimir, spec, secrets = mimir_spec
    (secrets / "slack-webhook-url").write_text("https://hooks.slack.example/services/T0/B0/SECRET-valid-8e1f\n")
    mimir.fail_next("POST", "/api/v1/alerts", 400, 'error validating Alertmanager config: parse '
                    '"https://hooks.slack.example/services/T0/B0/SECRET-valid-8e1f": something')
    result = run_cli("apply", "--env", "prod", "--spec", str(spec), "--only", "alertmanager", "--yes",
                     "--alertmanager-url", mimir.url)
    assert result.code == 2
    line = one_error_line(result.err)
    assert "refused the new config" in line and "<secret>" in line
    state = [p.read_text(errors="replace") for p in (tmp_path / "state").rglob("*") if p.is_file()]
    for text in [line, *state]:
        assert "SECRET-valid" not in text, text


def test_a_receiver_named_like_obsgens_that_only_another_route_uses_blocks_the_apply(run_cli, am: Stack) -> None:
    theirs = shared("    - matchers: ['team=\"qa\"']\n      receiver: selftest/dev/slack-info\n")
    theirs = theirs.replace("  - name: audit-log\n", "  - name: audit-log\n  - name: selftest/dev/slack-info\n")
    load(am, theirs)
    shown = diff(run_cli)
    assert "! alertmanager receiver selftest/dev/slack-info (held by an object obsgen does not own" in shown.out
    before = am.alertmanager_config_file.read_bytes()
    refused = apply(run_cli)
    assert refused.code == 2
    [error] = [line for line in refused.err.splitlines() if line.startswith("obsgen: error: ")]
    assert error == ("obsgen: error: alertmanager receiver selftest/dev/slack-info exists but is not obsgen's; "
                     "obsgen never changes it")
    assert any("receiver selftest/dev/slack-info has obsgen's prefix but only another team's route uses it" in n
               for n in notes(refused.err))
    assert am.alertmanager_config_file.read_bytes() == before


@pytest.mark.parametrize("env_name", ["dev", "staging", "prod"])
def test_what_obsgen_generates_is_exactly_what_it_claims(env_name: str) -> None:
    """The claim rules and the compiler agree: the generated route, receivers and inhibit rules -- and
    every label the generated alerts carry -- are recognised as obsgen's, nothing more."""
    from conftest import REFERENCE_SPEC

    from obsgen.compile import conventions as c
    from obsgen.compile.alertmanager import compile_subtree, standalone
    from obsgen.compile.routing_tests import _alerts
    from obsgen.spec import load_spec

    model = load_spec(str(REFERENCE_SPEC))
    env = model.environment(env_name)
    owner = c.am_owner(model, env)
    subtree = compile_subtree(model, env)
    parts = amtree.extract(standalone(model, env, subtree), owner)
    assert parts.route == subtree["route"]
    assert list(parts.receivers) == [r["name"] for r in subtree["receivers"]]
    assert parts.inhibit_rules == subtree["inhibit_rules"] and parts.held == {}
    carried = {name for labels in _alerts(model, env) for name in labels} - {"alertname", "service", "env"}
    assert carried <= amtree.GENERATED_LABELS
