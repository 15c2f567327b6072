"""The pure plan: create, update with a line diff, delete only owned objects, safe order."""
from __future__ import annotations

from obsgen.deploy import normalise
from obsgen.deploy.plan import Obj, plan


def dash(key: str, title: str, owned: bool = True) -> Obj:
    return Obj("grafana", "dashboard", key, {"title": title, "panels": [{"id": 1, "title": "Status"}]}, owned)


def test_identical_objects_plan_no_changes() -> None:
    result = plan([dash("a", "A")], [dash("a", "A")])
    assert result.empty
    assert result.summary() == "No changes: the live state matches the spec (1 objects)."


def test_plan_creates_updates_and_deletes_in_a_safe_order() -> None:
    folder = Obj("grafana", "folder", "obsgen", {"title": "Selftest"})
    rules = Obj("prometheus", "rule-group", "selftest/alerts", {"rules": []})
    config = Obj("alertmanager", "alertmanager-config", "alertmanager.yaml", {"route": {}})
    result = plan([config, rules, dash("a", "A2"), folder], [dash("a", "A"), dash("gone", "G")])
    assert [c.title for c in result.changes] == [
        "+ grafana folder obsgen",
        "~ grafana dashboard a",
        "+ prometheus rule-group selftest/alerts",
        "+ alertmanager alertmanager-config alertmanager.yaml",
        "- grafana dashboard gone",
    ]
    assert result.summary() == "Plan: 3 to create, 1 to update, 1 to delete (0 unchanged)."


def test_update_diff_shows_just_the_changed_lines() -> None:
    change = plan([dash("a", "New title")], [dash("a", "Old title")]).changes[0]
    assert [line for line in change.diff() if line[:1] in "+-"] == ["-title: Old title", "+title: New title"]


def test_a_change_inside_a_multi_line_expression_diffs_as_that_one_line() -> None:
    def group(threshold: int) -> Obj:
        expr = normalise.promql(f'max by (env, tier, step_id) (selftest_step_failed{{env="dev",step_id="bdd"}}) > 0 '
                                f'and on (env) count by (env) (max by (env, tier, step_id) '
                                f'(selftest_step_failed{{env="dev",tier="governance"}}) > 0) > {threshold}')
        return Obj("prometheus", "rule-group", "f/g", {"rules": [{"alert": "A", "expr": expr}]})

    change = plan([group(3)], [group(4)]).changes[0]
    assert "\n" in group(3).body["rules"][0]["expr"]  # prettified over several lines
    assert [line for line in change.diff() if line[:1] in "+-"] == ["-        4", "+        3"]


def test_objects_obsgen_does_not_own_are_never_deleted() -> None:
    assert plan([], [dash("theirs", "T", owned=False)]).empty


def test_promql_is_compared_semantically_not_as_text() -> None:
    assert normalise.promql("sum(rate(x[5m]))by(a) > 3") == normalise.promql("sum by (a) (rate(x[5m])) > 3")
    assert normalise.promql("sum(rate(x[5m])) by (a)") != normalise.promql("sum(rate(x[1m])) by (a)")


def test_rule_groups_read_back_from_prometheus_equal_the_generated_ones() -> None:
    generated = {"name": "g", "interval": "1m", "rules": [
        {"alert": "A", "expr": "max by (env) (x{env=\"dev\"}) > 0", "for": "5m", "labels": {"tier": "kernel"},
         "annotations": {"summary": "s"}},
        {"record": "r:sum", "expr": "sum(rate(y[5m]))by(env)"}]}
    read_back = {"name": "g", "interval": 60.0, "rules": [
        {"alert": "A", "expr": 'max by(env) (x{env="dev"}) > 0', "for": 300.0, "labels": {"tier": "kernel"},
         "annotations": {"summary": "s"}},
        {"record": "r:sum", "expr": "sum by (env) (rate(y[5m]))"}]}
    assert normalise.rule_group(generated) == normalise.rule_group(read_back)


def test_grafana_server_fields_are_ignored() -> None:
    assert normalise.dashboard({"id": 3, "version": 7, "title": "T"}) == normalise.dashboard({"title": "T"})


def test_a_desired_key_held_by_an_unowned_object_is_blocked_and_not_diffed() -> None:
    theirs = dash("a", "Theirs", owned=False)
    result = plan([dash("a", "Ours")], [theirs])
    change, = result.changes
    assert change.action == "blocked"
    from obsgen.deploy import report

    assert "Theirs" not in report.text(result, "dev") + report.markdown(result, "dev") + report.as_json(result, "dev")
    assert change.title == "! grafana dashboard a (held by an object obsgen does not own; apply refuses to change it)"
    assert result.summary() == "Plan: 0 to create, 0 to update, 0 to delete, 1 blocked (0 unchanged)."
