"""promtool unit tests for the generated rule files: `<env>/tests/rules/<name>.test.yaml`.

One test file per rule file, loading it as `../../prometheus/<name>.rules.yaml` (promtool resolves
`rule_files` against the test file's directory), so `promtool test rules` checks what is deployed.
The tests sit outside `<env>/prometheus/` because everything there is deployed as rules.

The inputs and times come from the model (tolerances, `for`, `stale_after`, thresholds, buckets,
objectives), not from the generated expressions, which are what the tests check; a custom alert's own
PromQL is read for its selector and threshold. The expected labels and annotations are the generated
rule's, templated with the labels of the series the expression returns and the alert's value. Each
group proves one thing and says so in its name. Selftest groups use 1m samples and evaluations; a
failure starts at 2m, so an alert with `for: F` is still pending at 2m+F-1m and fires at 2m+F.

- step_failed, tolerance 0: each step failing alone fires its rule (and only its rule), not before;
  tolerance T > 0: T failing steps fire nothing; T+1 failing steps fire one alert per failing step, in
  runs of T+1 steps until every step's rule has fired once. The failing-steps record is checked too.
- not_reporting: a last run reported 1m less than `stale_after` before the test starts gets too old
  at 2m; a metric missing for this environment (present for another); a run every minute never fires.
- slow_runs: runs in the first bucket do not fire; runs slower than every bucket put the quantile at
  the largest finite bucket, which fires only if that bucket is above the threshold.
- custom `[sum|max|min|avg [by (..)]] (selector) OP number`: at the threshold, and one past it.

An alert that cannot fire as specified (a threshold not below the largest bucket, a tolerance covering
every step of the tier) gets a group named "... cannot fire ..." instead of a firing case. The SLO
groups are in `rule_tests_slo`. An alert whose annotations use template functions other than label
and value placeholders, or a custom alert of another shape, gets no cases.
"""
from __future__ import annotations

from fractions import Fraction

from obsgen import conventions as c
from obsgen import durations, render
from obsgen.artifact import Artifact
from obsgen.compile import rule_test_kit as kit
from obsgen.model import Alert, Environment, Model

STEP = 60  # seconds between samples and between evaluations in the selftest tests
ONSET = 2 * STEP  # when a failure starts: two healthy samples first
TAIL = 10  # samples every series keeps after the last evaluation

Rules = dict[tuple[str, str], kit.Doc]  # (alertname, step_id) -> alerting rule


def compile_rule_tests(model: Model, env: Environment) -> list[Artifact]:
    import yaml

    from obsgen.compile.prometheus import rule_documents
    from obsgen.compile.rule_tests_slo import EVAL as SLO_EVAL
    from obsgen.compile.rule_tests_slo import slo_groups

    docs = rule_documents(model, env)
    files = []
    path = c.rules_file(env, model.service.name)
    if path in docs:
        files.append(_test_file(model, env, path, docs[path], STEP,
                                _selftest_groups(model, env, _alert_rules(docs[path]))))
    for slo in model.slos:
        path = c.rules_file(env, f"slo-{slo.id}")
        if path in docs:
            groups = slo_groups(model, env, slo, docs[path]["groups"])
            files.append(_test_file(model, env, path, docs[path], SLO_EVAL, groups))
    return [f for f in files if f]


def _test_file(model: Model, env: Environment, rules_path: str, rules: kit.Doc, interval: int,
               groups: list[kit.Doc]) -> Artifact | None:
    """The test file of one rule file. promtool evaluates its groups in file order at every step (its own
    order is random), so that rules reading recorded series see the samples of the same step."""
    if not groups:
        return None
    file_name = rules_path.rsplit("/", 1)[1]
    document = {"rule_files": [f"../../prometheus/{file_name}"], "evaluation_interval": kit.dur(interval),
                "group_eval_order": [g["name"] for g in rules["groups"]], "tests": groups}
    name = file_name.removesuffix(".yaml").removesuffix(".rules")
    return Artifact(f"{env.name}/tests/rules/{name}.test.yaml", render.to_yaml(document, model.source))


def _alert_rules(document: kit.Doc) -> Rules:
    return {(r["alert"], str(r.get("labels", {}).get(c.LABEL_STEP, ""))): r
            for g in document["groups"] for r in g["rules"] if "alert" in r}


def _selftest_groups(model: Model, env: Environment, rules: Rules) -> list[kit.Doc]:
    builders = {"step_failed": _step_failed, "not_reporting": _not_reporting, "slow_runs": _slow_runs,
                "custom": _custom}
    groups: list[kit.Doc] = []
    for alert in model.alerts:
        if alert.params_for(env.name).enabled:
            try:
                groups += builders[alert.kind](model, env, alert, rules)
            except kit.UnsupportedTemplate:
                pass
    return groups


def _wait(alert: Alert, env: Environment) -> tuple[str, int]:
    text = alert.params_for(env.name).for_
    return text, kit.ceil_to(durations.seconds(text), STEP)


def _after(for_text: str, wait: int, before: str = "") -> str:
    return f" after for {for_text}, not before" if wait else f" at once (for {for_text}), not {before or 'before'}"


# --- step_failed ------------------------------------------------------------------------------------

def _step_failed(model: Model, env: Environment, alert: Alert, rules: Rules) -> list[kit.Doc]:
    env_label, tier = model.metrics.env_label, model.tier(alert.tier)
    steps = model.steps_of(alert.tier)
    tolerance = env.policy.tolerance_for(alert.tier)
    for_text, wait = _wait(alert, env)
    fire_at = ONSET + wait
    end = fire_at + 5 * STEP
    samples = end // STEP + TAIL
    name = f"{env.name}: {tier.id.upper()}"

    def labels(step_id: str) -> dict[str, str]:
        return {env_label: env.name, c.LABEL_TIER: tier.id, c.LABEL_STEP: step_id}

    def inputs(failing: list[str], shown: list[str] | None = None) -> dict[str, str]:
        """Series of the `shown` steps (default: every step of the tier); the `failing` ones fail at ONSET."""
        healthy = ONSET // STEP
        return {kit.series(model.metrics.step_failed, labels(s.id)): kit.gauge_notation(
            [("0", healthy), ("1", samples - healthy)] if s.id in failing else [("0", samples)])
            for s in steps if shown is None or s.id in shown}

    def with_neighbour(chunk: list[str]) -> list[str]:
        """The chunk and one passing step: per-chunk groups stay small, so tests grow linearly with steps
        (the at-tolerance group, or the first chunk group, shows every step of the tier)."""
        rest = [s.id for s in steps if s.id not in chunk]
        return chunk + rest[:1]

    def failing_sum(at: int, count: int) -> kit.Doc:
        record_labels = {env_label: env.name, c.LABEL_TIER: tier.id}
        return kit.expr_case(at, kit.series(c.FAILING_STEPS_RECORD, record_labels),
                             [(kit.series(c.FAILING_STEPS_RECORD, record_labels), count)])

    groups = []
    if tolerance > 0:
        failing = [s.id for s in steps[:tolerance]]
        what = f"at tolerance ({len(failing)} failing) does not fire {alert.name}" if len(steps) > tolerance else \
            f"{alert.name} cannot fire: tolerance {tolerance} covers every step of the tier ({len(steps)} failing)"
        groups.append(kit.group(f"{name} {what}", STEP, inputs(failing), [kit.alert_case(end, alert.name, [])],
                                [failing_sum(end, len(failing))]))
    size = tolerance + 1
    if len(steps) >= size:
        for index, chunk in enumerate(_chunks([s.id for s in steps], size)):
            firing = [kit.expected(rules[(alert.name, s)], labels(s), 1.0) for s in sorted(chunk)]
            what = f"above tolerance ({size} failing: {', '.join(chunk)})" if tolerance else f"step {chunk[0]} failing"
            each = " for each failing step" if size > 1 else ""
            groups.append(kit.group(
                f"{name} {what} fires {alert.name}{each}{_after(for_text, wait, 'before the failure')}",
                STEP, inputs(chunk, None if index == 0 and tolerance == 0 else with_neighbour(chunk)),
                [kit.alert_case(fire_at - STEP, alert.name, []), kit.alert_case(fire_at, alert.name, firing)],
                [failing_sum(fire_at, size)]))
    return groups


def _chunks(items: list[str], size: int) -> list[list[str]]:
    """Consecutive runs of `size` items covering every item; the last run wraps around to the start."""
    return [[items[(start + i) % len(items)] for i in range(size)] for start in range(0, len(items), size)]


# --- not_reporting, slow_runs, custom -----------------------------------------------------------------

def _not_reporting(model: Model, env: Environment, alert: Alert, rules: Rules) -> list[kit.Doc]:
    rule = rules[(alert.name, alert.step_id or c.ALL_STEPS)]
    env_label, metric = model.metrics.env_label, model.metrics.last_run_timestamp
    stale_text = alert.params_for(env.name).stale_after
    stale = int(durations.seconds(stale_text))
    for_text, wait = _wait(alert, env)
    last_run = STEP - stale  # the last run happened before the test starts: its age passes stale_after after 1m
    fire_at = ONSET + wait
    samples = fire_at // STEP + TAIL
    mine = {env_label: env.name}
    other = {env_label: f"not-{env.name}"}
    stale_group = kit.group(
        f"{env.name}: last run older than stale_after {stale_text} fires {alert.name}"
        f"{_after(for_text, wait, 'while younger')}",
        STEP, {kit.series(metric, mine): kit.gauge_notation([(str(last_run), samples)])},
        [kit.alert_case(fire_at - STEP, alert.name, []),
         kit.alert_case(fire_at, alert.name, [kit.expected(rule, mine, float(fire_at - last_run))])])
    absent_cases = [kit.alert_case(wait - STEP, alert.name, [])] if wait else []
    absent_group = kit.group(
        f"{env.name}: no last-run metric for {env.name} (another environment's does not count) fires "
        f"{alert.name}" + (_after(for_text, wait) if wait else f" at once (for {for_text})"),
        STEP, {kit.series(metric, other): f"0+{STEP}x{wait // STEP + TAIL}"},
        absent_cases + [kit.alert_case(wait, alert.name, [kit.expected(rule, mine, 1.0)])])
    fresh_group = kit.group(
        f"{env.name}: a run every minute does not fire {alert.name}",
        STEP, {kit.series(metric, mine): f"0+{STEP}x{samples - 1}"}, [kit.alert_case(fire_at, alert.name, [])])
    return [stale_group, absent_group, fresh_group]


def _slow_runs(model: Model, env: Environment, alert: Alert, rules: Rules) -> list[kit.Doc]:
    rule = rules[(alert.name, alert.step_id or c.ALL_STEPS)]
    params, env_label = alert.params_for(env.name), model.metrics.env_label
    for_text, wait = _wait(alert, env)
    fire_at = STEP + wait  # the first rate needs the samples at 0 and 1m
    end = fire_at + 5 * STEP
    samples = end // STEP + TAIL
    buckets = sorted(model.metrics.duration_buckets)
    p = f"p{c.fmt_number(params.quantile * 100)}"
    threshold = c.fmt_number(params.threshold_seconds)

    def inputs(first_bucket: int) -> dict[str, str]:  # one run a minute, each in bucket `first_bucket`
        les = [c.fmt_number(b) for b in buckets] + ["+Inf"]
        return {kit.series(model.metrics.run_duration + "_bucket", {env_label: env.name, "le": le}):
                f"0+{int(i >= first_bucket)}x{samples - 1}" for i, le in enumerate(les)}

    groups = []
    fast = buckets[0] * params.quantile  # every run in the first bucket
    if fast < params.threshold_seconds:
        groups.append(kit.group(
            f"{env.name}: runs within the first bucket ({p} = {c.fmt_number(fast)} s) do not fire {alert.name}",
            STEP, inputs(0), [kit.alert_case(end, alert.name, [])]))
    top = c.fmt_number(buckets[-1])
    if buckets[-1] > params.threshold_seconds:  # slower than every bucket: the quantile is the largest bound
        groups.append(kit.group(
            f"{env.name}: runs slower than every bucket ({p} = {top} s > {threshold} s) fire {alert.name}"
            f"{_after(for_text, wait)}",
            STEP, inputs(len(buckets)),
            [kit.alert_case(fire_at - STEP, alert.name, []),
             kit.alert_case(fire_at, alert.name, [kit.expected(rule, {env_label: env.name}, float(buckets[-1]))])]))
    else:
        groups.append(kit.group(
            f"{env.name}: {alert.name} cannot fire: runs slower than every bucket give {p} = {top} s "
            f"(the largest finite bucket), not above {threshold} s",
            STEP, inputs(len(buckets)), [kit.alert_case(end, alert.name, [])]))
    return groups


def _custom(model: Model, env: Environment, alert: Alert, rules: Rules) -> list[kit.Doc]:
    rule = rules[(alert.name, alert.step_id or c.ALL_STEPS)]
    shape = kit.threshold_alert(rule["expr"])
    if not shape:
        return []
    metric, labels, result_labels, op, number = shape
    limit = Fraction(number)
    firing, quiet = {">": (limit + 1, limit), ">=": (limit, limit - 1),
                     "<": (limit - 1, limit), "<=": (limit, limit + 1)}[op]
    for_text, wait = _wait(alert, env)
    fire_at = ONSET + wait
    end = fire_at + 5 * STEP
    samples = end // STEP + TAIL
    selector = kit.series(metric, labels)
    fmt = c.fmt_number
    when = f"(fires when {op} {number})"
    return [
        kit.group(f"{env.name}: {alert.name} at {fmt(quiet)} {when} does not fire", STEP,
                  {selector: kit.gauge_notation([(fmt(quiet), samples)])}, [kit.alert_case(end, alert.name, [])]),
        kit.group(f"{env.name}: {alert.name} at {fmt(firing)} {when} fires{_after(for_text, wait)}", STEP,
                  {selector: kit.gauge_notation([(fmt(quiet), ONSET // STEP),
                                                 (fmt(firing), samples - ONSET // STEP)])},
                  [kit.alert_case(fire_at - STEP, alert.name, []),
                   kit.alert_case(fire_at, alert.name, [kit.expected(rule, result_labels, float(firing))])]),
    ]
