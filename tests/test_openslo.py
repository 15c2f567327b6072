"""The OpenSLO v1 target: schema-valid documents, burn-rate factors per period, names, determinism."""
from __future__ import annotations

import copy
import dataclasses
import re
from fractions import Fraction
from importlib import resources
from pathlib import Path

import pytest
import yaml

from obsgen.compile.openslo import compile_openslo, openslo_duration, resource_name
from obsgen.compile.openslo_schema import validate_openslo
from obsgen.model import (
    SLI,
    SLO,
    Channel,
    ChannelTarget,
    Dashboard,
    Environment,
    Metrics,
    Model,
    Cadence,
    Policy,
    Service,
    SLOAlerting,
    Step,
    Tier,
)

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_SPEC = ROOT / "specs/selftest.yaml"
RFC1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")



def hand_model(**changes) -> Model:
    """A small model built without the spec loader: two tiers, two steps, one env, two SLOs."""
    model = Model(
        api_version="obsgen/v1",
        service=Service("selftest", "platform-team", "https://docs.example.com/selftest.md"),
        metrics=Metrics(
            env_label="env",
            step_failed="selftest_step_failed",
            run_duration="selftest_run_duration_seconds",
            last_run_timestamp="selftest_last_run_timestamp_seconds",
        ),
        tiers=(
            Tier("kernel", "critical", "pagerduty-oncall", "incident-kernel-failure", "Always fatal."),
            Tier("governance", "warning", "slack-tickets", "incident-governance-failure", "Governance drift."),
        ),
        steps=(
            Step("core-checks", "kernel", "correctness", "Code quality compromised", "core", "Run make doctor."),
            Step("bdd", "governance", "correctness", "BDD scenarios malformed", "bdd", "Fix the scenario."),
        ),
        channels=(
            Channel("pagerduty-oncall", "pagerduty", "Page the on-call engineer."),
            Channel("slack-tickets", "slack", "Ticket channel; fix before the next promotion."),
        ),
        environments=(
            Environment(
                name="dev",
                description="Developer machines.",
                cadence=Cadence("1m"),  # frequent enough for the workbook's windows to stand unchanged
                policy=Policy(tolerance=(("governance", 3),), page_on_any_failure=False),
                channels=(
                    ChannelTarget("pagerduty-oncall", routing_key_file="/etc/am/dev/pd-key"),
                    ChannelTarget("slack-tickets", api_url_file="/etc/am/dev/slack-url", slack_channel="#selftest-dev"),
                ),
                backends=(),
            ),
        ),
        slos=(
            SLO("pass-rate", "Selftest runs pass.", Fraction(95, 100), "28d", SLI("pass_rate"), "Fix the top failure.", "slo-pass-rate"),
            SLO(
                "run-duration",
                "Selftest runs finish in under 30 s.",
                Fraction(95, 100),
                "7d",
                SLI("latency", threshold_seconds=30),
                "Profile the slowest steps.",
                "slo-run-duration",
            ),
        ),
        slo_alerting=SLOAlerting(page_channel="pagerduty-oncall", ticket_channel="slack-tickets"),
        alerts=(),
        dashboards=(Dashboard("overview", "Selftest overview", ("selftest",), ("status",)),),
        source="hand.yaml",
    )
    return dataclasses.replace(model, **changes)


def with_slos(model: Model, *slos: SLO) -> Model:
    return dataclasses.replace(model, slos=slos)


def reference_model() -> Model:
    from obsgen.spec import load_spec

    return load_spec(str(REFERENCE_SPEC))


def documents(content: bytes) -> list[dict]:
    return list(yaml.safe_load_all(content))


def environment_documents(model: Model, env: Environment) -> list[dict]:
    return [doc for artifact in compile_openslo(model, env) for doc in documents(artifact.content)]


def thresholds(model: Model, env: Environment, slo_id: str) -> list[float]:
    docs = documents(next(a for a in compile_openslo(model, env) if a.path.endswith(f"/{slo_id}.yaml")).content)
    return [d["spec"]["condition"]["threshold"] for d in docs if d["kind"] == "AlertCondition"]


def every_environment() -> list[tuple[str, Model | None, Environment | str]]:
    """(test id, model, environment) for the hand-built model and every environment of the reference spec.

    Should the reference spec fail to load, one case carries the error, so that
    the hand-built cases still run and the failure is reported where it belongs.
    """
    cases: list[tuple[str, Model | None, Environment | str]] = [
        (f"hand-{env.name}", m, env) for m in (hand_model(),) for env in m.environments
    ]
    try:
        ref = reference_model()
    except Exception as exc:  # noqa: BLE001 - reported by the fixture
        return [*cases, ("reference", None, f"{REFERENCE_SPEC} did not load: {exc!r}")]
    return cases + [(f"reference-{env.name}", ref, env) for env in ref.environments]


@pytest.fixture(params=every_environment(), ids=lambda case: case[0])
def compiled(request) -> tuple[Model, Environment, list[dict]]:
    _id, model, env = request.param
    if model is None:
        pytest.fail(str(env))
    return model, env, environment_documents(model, env)


# --- schema ---------------------------------------------------------------------------------------


def test_every_generated_document_validates_against_the_packaged_openslo_schema(compiled):
    _model, _env, docs = compiled
    assert validate_openslo(docs) == []


def test_the_packaged_schema_carries_its_provenance_and_licence_notice():
    notice = resources.files("obsgen").joinpath("schemas", "openslo", "NOTICE").read_text(encoding="utf-8")
    assert "github.com/OpenSLO/OpenSLO" in notice
    assert "c0f662522fd92c86e8cfd87a3e3a39715a526ab2" in notice
    assert "Apache" in notice


def broken(mutate) -> list[str]:
    model = hand_model()
    docs = environment_documents(model, model.environments[0])
    docs = copy.deepcopy(docs)
    mutate(docs)
    return validate_openslo(docs)


def first(docs: list[dict], kind: str) -> dict:
    return next(d for d in docs if d["kind"] == kind)


def test_a_duration_outside_the_openslo_shorthand_is_reported():
    def mutate(docs):
        first(docs, "SLO")["spec"]["timeWindow"][0]["duration"] = "28days"
        first(docs, "AlertCondition")["spec"]["condition"]["lookbackWindow"] = "0h"

    problems = broken(mutate)
    assert any("$.spec.timeWindow[0].duration" in p and "'28days'" in p for p in problems), problems
    assert any("$.spec.condition.lookbackWindow" in p and "'0h'" in p for p in problems), problems


def test_an_upper_case_name_is_reported():
    problems = broken(lambda docs: first(docs, "AlertPolicy")["metadata"].update(name="Dev-Pass-Rate"))
    assert len(problems) == 1
    assert "$.metadata.name" in problems[0] and "'Dev-Pass-Rate'" in problems[0]


def test_a_policy_with_two_conditions_is_reported_because_openslo_v1_allows_one():
    problems = broken(lambda docs: first(docs, "AlertPolicy")["spec"]["conditions"].append({"conditionRef": "other"}))
    assert len(problems) == 1 and "$.spec.conditions" in problems[0] and "too long" in problems[0]


def test_a_ratio_metric_with_both_good_and_bad_is_reported():
    def mutate(docs):
        ratio = first(docs, "SLO")["spec"]["indicator"]["spec"]["ratioMetric"]
        ratio["good"] = ratio["bad"]

    problems = broken(mutate)
    assert problems and all("$.spec.indicator.spec.ratioMetric" in p for p in problems), problems


def test_an_unknown_kind_and_a_non_object_are_reported_without_crashing():
    problems = validate_openslo([{"apiVersion": "openslo/v1", "kind": "Nope", "metadata": {"name": "x"}, "spec": {}}, [1]])
    assert any(p.startswith("document 1 (Nope x): $.kind:") for p in problems), problems
    assert any(p.startswith("document 2 (? ?): $:") for p in problems), problems


# --- burn rates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("28d", [13.44, 5.6, 2.8, 0.9333333333333333]),
        ("7d", [3.36, 1.4, 0.7, 0.23333333333333334]),
        ("30d", [14.4, 6.0, 3.0, 1.0]),
    ],
)
def test_burn_rate_thresholds_keep_the_budget_shares_and_follow_the_slo_period(period, expected):
    model = hand_model()
    model = with_slos(model, dataclasses.replace(model.slos[0], period=period))
    assert thresholds(model, model.environments[0], "pass-rate") == pytest.approx(expected, abs=1e-9)


def test_the_hand_built_28d_and_7d_slos_get_their_own_factors():
    model = hand_model()
    env = model.environments[0]
    assert thresholds(model, env, "pass-rate") == pytest.approx([13.44, 5.6, 2.8, 14 / 15], abs=1e-9)
    assert thresholds(model, env, "run-duration") == pytest.approx([3.36, 1.4, 0.7, 7 / 30], abs=1e-9)


def test_conditions_use_the_long_window_as_lookback_and_the_short_one_as_alert_after():
    model = hand_model()
    docs = environment_documents(model, model.environments[0])
    conditions = [d["spec"] for d in docs if d["kind"] == "AlertCondition"][:4]
    assert [(c["severity"], c["condition"]["lookbackWindow"], c["condition"]["alertAfter"]) for c in conditions] == [
        ("page", "1h", "5m"),
        ("page", "6h", "30m"),
        ("ticket", "1d", "2h"),
        ("ticket", "3d", "6h"),
    ]
    assert all(c["condition"]["kind"] == "burnrate" and c["condition"]["op"] == "gte" for c in conditions)


def test_conditions_of_an_hourly_job_use_the_fitted_windows_and_say_so():
    # 95 % over 28d at one run an hour is a budget of 33.6 runs: the 1h/5m page must cover at least one
    # run's share (1/33.6) and a short window of 1.5 runs rounded up (2h), so it becomes 2h/2h at
    # (1/33.6) * 672h / 2h = 10x; the 6h/30m page keeps 6h at 5.6x with a 2h short window.
    model = hand_model()
    env = dataclasses.replace(model.environments[0], cadence=Cadence("1h"))
    docs = environment_documents(model, env)
    conditions = [d["spec"] for d in docs if d["kind"] == "AlertCondition"][:2]
    assert [(c["condition"]["lookbackWindow"], c["condition"]["alertAfter"]) for c in conditions] == [
        ("2h", "2h"), ("6h", "2h")]
    assert thresholds(model, env, "pass-rate")[:2] == pytest.approx([10, 5.6], abs=1e-9)
    policies = [d["spec"]["description"] for d in docs if d["kind"] == "AlertPolicy"][:2]
    assert "Fitted to runs every 1h from the workbook's 1h and 5m" in policies[0]
    assert "Fitted to runs every 1h from the workbook's 6h and 30m" in policies[1]  # its short window moved


# --- structure ------------------------------------------------------------------------------------


def test_each_slo_gets_one_file_with_slo_then_policies_with_their_conditions_then_targets():
    model = hand_model()
    artifacts = compile_openslo(model, model.environments[0])
    assert [a.path for a in artifacts] == ["dev/slo/pass-rate.yaml", "dev/slo/run-duration.yaml"]
    kinds = [d["kind"] for d in documents(artifacts[0].content)]
    assert kinds == ["SLO"] + ["AlertPolicy", "AlertCondition"] * 4 + ["AlertNotificationTarget"] * 2


def test_the_slo_document_carries_service_window_budgeting_objective_and_its_policies():
    model = hand_model()
    docs = documents(compile_openslo(model, model.environments[0])[0].content)
    spec = docs[0]["spec"]
    assert spec["service"] == "selftest"
    assert spec["timeWindow"] == [{"duration": "28d", "isRolling": True}]
    assert spec["budgetingMethod"] == "Occurrences"
    assert spec["objectives"] == [{"displayName": "95% over 28d", "target": 0.95}]
    policies = [d["metadata"]["name"] for d in docs if d["kind"] == "AlertPolicy"]
    assert spec["alertPolicies"] == policies
    assert docs[0]["metadata"]["labels"] == {"env": "dev", "owner": "platform-team", "service": "selftest", "slo": "pass-rate"}


def test_a_run_based_sli_counts_the_bad_runs_and_all_runs_of_each_5m():
    # counter: false: each sample is a count of occurrences (the runs whose time lies in the last 5m, one
    # series per run), not a counter to take the rate of
    model = hand_model()
    pass_rate, latency = (documents(a.content)[0] for a in compile_openslo(model, model.environments[0]))
    runs = 'max_over_time(selftest_run_timestamp_seconds{env="dev",drill!="true"}[5m]) > time() - 300'
    ratio = pass_rate["spec"]["indicator"]["spec"]["ratioMetric"]
    assert ratio == {
        "counter": False,
        "bad": {"metricSource": {"type": "Prometheus", "spec": {"query": 'count by (env) (max_over_time('
                                                                         'selftest_run_timestamp_seconds{env="dev",drill!="true",result="fail"}[5m]) > time() - 300)'}}},
        "total": {"metricSource": {"type": "Prometheus", "spec": {"query": f"count by (env) ({runs})"}}},
    }
    ratio = latency["spec"]["indicator"]["spec"]["ratioMetric"]
    assert ratio["bad"]["metricSource"]["spec"]["query"] == (
        'count by (env) (max_over_time(selftest_run_duration_seconds{env="dev",drill!="true"}[5m]) > 30\nand\n'
        f'{runs})')
    assert ratio["total"]["metricSource"]["spec"]["query"] == f"count by (env) ({runs})"
    assert "good" not in ratio


def test_page_policies_notify_the_page_channel_and_ticket_policies_the_ticket_channel():
    model = hand_model()
    docs = documents(compile_openslo(model, model.environments[0])[0].content)
    targets = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "AlertNotificationTarget"}
    by_severity = {}
    for d in docs:
        if d["kind"] == "AlertPolicy":
            by_severity.setdefault(d["metadata"]["labels"]["slo_alert"], set()).add(d["spec"]["notificationTargets"][0]["targetRef"])
    assert {k: [targets[n]["target"] for n in v] for k, v in by_severity.items()} == {"page": ["pagerduty"], "ticket": ["slack"]}
    assert targets["dev-pass-rate-pagerduty-oncall"]["description"] == "Page the on-call engineer."
    assert "#selftest-dev" in targets["dev-pass-rate-slack-tickets"]["description"]


def test_one_channel_for_page_and_ticket_gives_one_notification_target():
    model = hand_model(slo_alerting=SLOAlerting(page_channel="slack-tickets", ticket_channel="slack-tickets"))
    docs = environment_documents(model, model.environments[0])
    assert validate_openslo(docs) == []
    assert [d["spec"]["target"] for d in docs if d["kind"] == "AlertNotificationTarget"] == ["slack", "slack"]  # one per SLO file


# --- names ----------------------------------------------------------------------------------------


def all_names(docs: list[dict]) -> list[str]:
    names = [d["metadata"]["name"] for d in docs]
    names += [d["spec"]["indicator"]["metadata"]["name"] for d in docs if d["kind"] == "SLO"]
    return names


def test_names_are_unique_rfc1123_labels_within_an_environment(compiled):
    _model, env, docs = compiled
    names = all_names(docs)
    assert len(names) == len(set(names))
    for name in names:
        assert len(name) <= 63 and RFC1123.match(name), name
        assert name.startswith(f"{env.name}-"), name


def test_every_reference_points_at_a_document_of_the_same_file(compiled):
    model, env, _docs = compiled
    for artifact in compile_openslo(model, env):
        docs = documents(artifact.content)
        names = {kind: {d["metadata"]["name"] for d in docs if d["kind"] == kind} for kind in {d["kind"] for d in docs}}
        slo = first(docs, "SLO")
        assert set(slo["spec"]["alertPolicies"]) == names["AlertPolicy"]
        for policy in (d for d in docs if d["kind"] == "AlertPolicy"):
            assert {c["conditionRef"] for c in policy["spec"]["conditions"]} <= names["AlertCondition"]
            assert {t["targetRef"] for t in policy["spec"]["notificationTargets"]} <= names["AlertNotificationTarget"]


def test_long_ids_are_shortened_with_a_digest_and_stay_unique():
    model = hand_model()
    base = model.slos[0]
    long_a = dataclasses.replace(base, id="a-very-long-service-level-objective-identifier-that-goes-on-and-on-one")
    long_b = dataclasses.replace(base, id="a-very-long-service-level-objective-identifier-that-goes-on-and-on-two")
    model = with_slos(model, long_a, long_b)
    docs = environment_documents(model, model.environments[0])
    names = all_names(docs)
    assert len(names) == len(set(names))
    assert all(len(n) <= 63 and RFC1123.match(n) for n in names), names
    assert validate_openslo(docs) == []


def test_ids_that_would_produce_the_same_name_are_told_apart():
    model = hand_model()
    base = model.slos[0]
    # "a" has a page policy named dev-a-page-1h; an SLO with id "a-page-1h" would be named the same.
    model = with_slos(model, dataclasses.replace(base, id="a"), dataclasses.replace(base, id="a-page-1h"))
    docs = environment_documents(model, model.environments[0])
    names = all_names(docs)
    assert len(names) == len(set(names))
    assert all(len(n) <= 63 and RFC1123.match(n) for n in names), names
    assert "dev-a" in names  # names that did not clash keep their readable form


def test_resource_names_are_slugged_and_hash_shortened():
    assert resource_name("dev", "Pass_Rate", "page", "1h") == "dev-pass-rate-page-1h"
    long = resource_name("dev", "x" * 80)
    assert len(long) == 63 and RFC1123.match(long)
    assert long != resource_name("dev", "x" * 81)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("28d", "28d"), ("5m", "5m"), ("1w", "1w"), ("1h30m", "90m"), ("24h", "24h"), ("1y", "365d"), ("86400s", "1d")],
)
def test_durations_are_written_in_the_openslo_shorthand(text, expected):
    assert openslo_duration(text) == expected


@pytest.mark.parametrize("text", ["90s", "0m", "500ms"])
def test_durations_finer_than_a_minute_are_rejected(text):
    with pytest.raises(ValueError):
        openslo_duration(text)


# --- bytes ----------------------------------------------------------------------------------------


def test_compiling_twice_yields_identical_bytes_with_the_generated_header(compiled):
    model, env, _docs = compiled
    first_run = compile_openslo(model, env)
    second_run = compile_openslo(model, env)
    assert first_run == second_run
    for artifact in first_run:
        assert artifact.content.startswith(b"# Code generated by obsgen")
        assert artifact.content.endswith(b"\n")
        assert artifact.path == f"{env.name}/slo/{artifact.path.rsplit('/', 1)[1]}"
