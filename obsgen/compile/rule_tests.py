"""promtool unit tests for the generated rule files: `<env>/tests/rules/<name>.test.yaml`.

One test file per rule file, loading it as `../../prometheus/<name>.rules.yaml` (promtool resolves
`rule_files` against the test file's directory), so `promtool test rules` checks what is deployed; the
step alerts' file is loaded with the job's file, whose records they read.
The tests sit outside `<env>/prometheus/` because everything there is deployed as rules.

The inputs and times come from the model (tolerances, `for`, `stale_after`, thresholds, buckets,
objectives), not from the generated expressions, which are what the tests check; a custom alert's own
PromQL is read for its selector and threshold. The expected labels and annotations are computed from the
spec's intent (`_intended`: the tier's severity, the page label where the policy pages on any failure,
the spec's summary with the environment filled in, the runbook and dashboard links), never read from the
generated rule, then templated with the labels of the series the expression returns and the alert's
value. Each group proves one thing and says so in its name. Selftest groups use 1m samples and evaluations; a
failure starts at 2m, so an alert with `for: F` is still pending at 2m+F-1m and fires at 2m+F.

- step_failed, tolerance 0: the first step failing alone fires its rule (and only its rule), not before;
  tolerance T > 0: T failing steps fire nothing; T+1 failing steps fire one alert per failing step. Then
  every step's rule fires once, not before: the steps split into SPREAD interleaved halves of at least T+1
  steps, one failing while the other passes, so each rule fires for its own step and stays quiet while its
  neighbours fail. A constant number of groups, because promtool loads and evaluates every rule of the
  file in every group: the tests grow linearly with the steps. The failing-steps record is checked too.
- not_reporting: runs at the environment's cadence, then none: quiet until the last run is `stale_after`
  (default: two cadence intervals plus 10m) old, then fires, paging only where the policy pages on any
  failure; never reported (the metric present only for another environment): the alert stays quiet and
  only the informational `<name>NoData` notice fires, never paging (`rule_tests_liveness`).
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

from obsgen.compile import conventions as c
from obsgen.model import durations
from obsgen.compile import render
from obsgen.model.artifact import Artifact
from obsgen.compile import rule_test_kit as kit
from obsgen.model import Alert, Environment, Model, Step
from obsgen.model.placeholders import fill

STEP = 60  # seconds between samples and between evaluations in the selftest tests
ONSET = 2 * STEP  # when a failure starts: two healthy samples first
TAIL = 10  # samples every series keeps after the last evaluation

Rules = dict[tuple[str, str], kit.Doc]  # (alertname, step_id) -> alerting rule


def compile_rule_tests(model: Model, env: Environment) -> list[Artifact]:
    from obsgen.compile.prometheus import rule_documents
    from obsgen.compile.rule_tests_slo import evaluation_interval, slo_groups

    docs = rule_documents(model, env)
    files = []
    job, steps = c.rules_file(env, model.service.name), c.rules_file(env, c.steps_rules_stem(model.service.name))
    if job in docs:
        rules = _alert_rules(docs[job], docs.get(steps))
        groups = _selftest_groups(model, env, rules, steps=False)
        files.append(_test_file(model, env, [(job, docs[job])], STEP, groups))
        if steps in docs:  # the step alerts read the job file's records
            groups = _selftest_groups(model, env, rules, steps=True)
            files.append(_test_file(model, env, [(job, docs[job]), (steps, docs[steps])], STEP, groups))
    for slo in model.slos:
        path = c.rules_file(env, f"slo-{slo.id}")
        if path in docs:
            groups = slo_groups(model, env, slo, docs[path]["groups"])
            files.append(_test_file(model, env, [(path, docs[path])], evaluation_interval(slo), groups))
    return [f for f in files if f]


def _test_file(model: Model, env: Environment, rule_files: list[tuple[str, kit.Doc]], interval: int,
               groups: list[kit.Doc]) -> Artifact | None:
    """The test file of a rule file (the last of `rule_files`; the others hold records it reads). promtool
    evaluates its groups in file order at every step (its own order is random), so that rules reading
    recorded series see the samples of the same step."""
    if not groups:
        return None
    names = [path.rsplit("/", 1)[1] for path, _ in rule_files]
    document = {"rule_files": [f"../../prometheus/{name}" for name in names],
                "evaluation_interval": kit.dur(interval),
                "group_eval_order": [g["name"] for _, rules in rule_files for g in rules["groups"]],
                "tests": groups}
    name = names[-1].removesuffix(".yaml").removesuffix(".rules")
    return Artifact(f"{env.name}/tests/rules/{name}.test.yaml", render.to_yaml(document, model.source))


def _alert_rules(*documents: kit.Doc | None) -> Rules:
    return {(r["alert"], str(r.get("labels", {}).get(c.LABEL_STEP, ""))): r
            for document in documents if document for g in document["groups"] for r in g["rules"] if "alert" in r}


def _selftest_groups(model: Model, env: Environment, rules: Rules, steps: bool) -> list[kit.Doc]:
    """The groups of the step alerts (`steps`) or of the job's own alerts."""
    from obsgen.compile.rule_tests_liveness import no_passing_run, not_reporting

    builders = {"step_failed": _step_failed, "not_reporting": not_reporting, "no_passing_run": no_passing_run,
                "slow_runs": _slow_runs, "custom": _custom}
    groups: list[kit.Doc] = []
    for alert in model.alerts:
        if alert.params_for(env.name).enabled and (alert.kind == "step_failed") == steps:
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


# --- what the spec intends an alert to carry ----------------------------------------------------------

SEVERITY_ORDER = ("critical", "warning", "info")
LIVENESS_MARGIN = 600  # seconds on top of two cadence intervals: the README's default stale_after


def _intended(model: Model, env: Environment, alert: Alert, series_labels: dict[str, str], value: float,
              step: Step | None = None) -> kit.Doc:
    """The labels and annotations the spec gives a firing alert (its tier's severity; `page=oncall` where
    the environment pages on any failure and the tier is not critical)."""
    tier = model.tier(alert.tier)
    step_id = step.id if step else (alert.step_id or c.ALL_STEPS)
    labels = {c.LABEL_TIER: tier.id, c.LABEL_SEVERITY: tier.severity, c.LABEL_STEP: step_id,
              c.LABEL_SERVICE: model.service.name, model.metrics.env_label: env.name}
    if env.policy.page_on_any_failure and tier.severity != "critical" and not (
            alert.kind == "not_reporting" and _pages_when_failing(model, env)):
        labels[c.LABEL_PAGE] = "oncall"
    params = alert.params_for(env.name)
    if step is not None:
        tolerance = env.policy.tolerance_for(tier.id)
        description = (f"{step.description or step.id} ({step.category or tier.id}); {tolerance} "
                       f"{tier.id.upper()} failure{'s' if tolerance != 1 else ''} tolerated in {env.name}.")
    elif alert.kind == "not_reporting":
        description = (f"The last selftest run in {env.name} reported more than {stale_text(alert, env)} ago; "
                       f"it runs {env.cadence.describe()}.")
    elif alert.kind == "no_passing_run":
        paging = ", ".join(t.id.upper() for t in model.tiers
                           if t.severity == "critical" or env.policy.page_on_any_failure)
        description = (f"No selftest run in {env.name} has passed for more than {stale_text(alert, env)} (it runs "
                       f"{env.cadence.describe()}): every run since failed a tier that pages there ({paging}), "
                       f"or no run reported. It resolves when a run passes.")
    elif alert.kind == "slow_runs":
        description = (f"p{c.fmt_number(params.quantile * 100)} run duration over {params.window} is above "
                       f"{c.fmt_number(params.threshold_seconds)} s.")
    else:
        description = f"Custom alert {alert.name}."
    annotations = {
        "summary": fill(alert.summary, env=env.name),
        "description": description,
        "remediation": step.remediation if step else (alert.remediation or tier.description),
        "runbook_url": model.service.runbook_url(step.runbook or tier.runbook if step else alert.runbook),
        **kit.intended_dashboard(model, env, step_id),
    }
    return kit.intended(labels, annotations, series_labels, value)


def _pages_when_failing(model: Model, env: Environment) -> bool:
    """Whether the spec has a no_passing_run alert enabled in `env` (then a silent job pages through it)."""
    return any(a.kind == "no_passing_run" and a.params_for(env.name).enabled for a in model.alerts)


def stale_seconds(alert: Alert, env: Environment) -> int:
    given = alert.params_for(env.name).stale_after
    return int(durations.seconds(given)) if given else int(2 * env.cadence.seconds) + LIVENESS_MARGIN


def stale_text(alert: Alert, env: Environment) -> str:
    return alert.params_for(env.name).stale_after or kit.dur(stale_seconds(alert, env))


# --- step_failed ------------------------------------------------------------------------------------

def _step_failed(model: Model, env: Environment, alert: Alert, rules: Rules) -> list[kit.Doc]:
    env_label, tier = model.metrics.env_label, model.tier(alert.tier)
    steps = model.steps_of(alert.tier)
    by_id = {s.id: s for s in steps}
    tolerance = env.policy.tolerance_for(alert.tier)
    for_text, wait = _wait(alert, env)
    fire_at = ONSET + wait
    end = fire_at + 5 * STEP
    samples = end // STEP + TAIL
    name = f"{env.name}: {tier.id.upper()}"

    def labels(step_id: str) -> dict[str, str]:
        return {env_label: env.name, c.LABEL_TIER: tier.id, c.LABEL_STEP: step_id}

    def inputs(failing: list[str], shown: list[str] | None = None, retry: int | None = None) -> dict[str, str]:
        """Series of the `shown` steps (default: every step of the tier) as `obsgen emit` writes them; the
        `failing` ones fail at ONSET (and, with `retry`, pass `retry` seconds later). Every step passed at 0."""
        healthy = ONSET // STEP
        out = {kit.series(model.metrics.step_failed, labels(s.id)): kit.gauge_notation(
            [("0", healthy), ("1", samples - healthy)] if s.id in failing and retry is None else [("0", samples)])
            for s in steps if shown is None or s.id in shown}
        if tolerance > 0:  # the alert reads the newest run's time and each step's last failure
            out[kit.series(model.metrics.last_run_timestamp, {env_label: env.name})] = \
                kit.gauge_notation([("0", healthy), (str(ONSET), samples - healthy)])
            for s in steps:
                if s.id in failing and (shown is None or s.id in shown):
                    out[kit.series(model.metrics.step_last_failure, labels(s.id))] = \
                        f"_x{healthy} " + kit.gauge_notation([(str(ONSET), samples - healthy)])
        if tolerance == 0:  # the alert reads the step's last failure and last pass
            for s in steps:
                if shown is None or s.id in shown:
                    passed = [("0", healthy), (str(ONSET + retry), samples - healthy)] if s.id in failing \
                        and retry is not None else [("0", samples)]
                    out[kit.series(model.metrics.step_last_pass, labels(s.id))] = kit.gauge_notation(passed)
                    if s.id in failing:
                        out[kit.series(model.metrics.step_last_failure, labels(s.id))] = \
                            f"_x{healthy} " + kit.gauge_notation([(str(ONSET), samples - healthy)])
        return out

    def with_neighbour(chunk: list[str]) -> list[str]:
        """The chunk and one passing step (the at-tolerance group shows every step of the tier)."""
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
    value = float(ONSET)  # the failure's time
    ids = [s.id for s in steps]

    def fires(chunk: list[str], what: str, shown: list[str] | None) -> kit.Doc:
        firing = [_intended(model, env, alert, labels(s), value, step=by_id[s]) for s in sorted(chunk)]
        each = " for each failing step" if len(chunk) > 1 else ""
        return kit.group(
            f"{name} {what} fires {alert.name}{each}{_after(for_text, wait, 'before the failure')}",
            STEP, inputs(chunk, shown),
            [kit.alert_case(fire_at - STEP, alert.name, []), kit.alert_case(fire_at, alert.name, firing)]
            + ([kit.alert_case(end, alert.name, firing)] if tolerance == 0 else []),
            [failing_sum(fire_at, len(chunk))])

    if len(steps) >= size:
        edge = ids[:size]  # the first steps, exactly one more than tolerated
        groups.append(fires(edge, f"above tolerance ({size} failing: {', '.join(edge)})" if tolerance else
                            f"step {edge[0]} failing", with_neighbour(edge) if tolerance else None))
        for chunk in _spread(ids, size):
            if set(chunk) != set(edge):
                groups.append(fires(chunk, _spread_text(chunk, len(ids), size), None))
    if tolerance == 0 and steps:
        groups.append(_passing_retry(model, env, alert, steps[0], inputs, labels, value, end, samples))
    return groups


def _passing_retry(model: Model, env: Environment, alert: Alert, step: Step, inputs, labels, value: float,
                   end: int, samples: int) -> kit.Doc:
    """A failure and a passing retry 20 s later, both seen by the same scrape: the alert fires all the same
    (`for` after the failure), and resolves once the failure is older than its hold, the pass being newer."""
    from obsgen.compile.prometheus import failure_hold

    for_text, wait = _wait(alert, env)
    hold = kit.ceil_to(failure_hold(model, env, alert), STEP)
    fire_at, resolved = ONSET + wait, ONSET + hold + STEP
    firing = [_intended(model, env, alert, labels(step.id), value, step=step)]
    return kit.group(
        f"{env.name}: {model.tier(alert.tier).id.upper()} step {step.id} fails and a retry passes 20 s later: "
        f"{alert.name} fires all the same{_after(for_text, wait, 'before the failure')}, and resolves "
        f"{kit.dur(hold)} after the failure", STEP, inputs([step.id], [step.id], retry=20),
        [kit.alert_case(fire_at - STEP, alert.name, []), kit.alert_case(fire_at, alert.name, firing),
         kit.alert_case(resolved, alert.name, [])])


SPREAD = 2  # groups proving that every step's rule fires: each group costs promtool every rule of the file


def _spread(items: list[str], least: int) -> list[list[str]]:
    """At most SPREAD interleaved chunks (every SPREAD-th item) of at least `least` items covering every
    item: a constant number of groups, so the tests grow linearly with the steps (each group loads and
    evaluates every rule), and each step's rule is quiet while its neighbours in the list fail."""
    count = min(SPREAD, len(items) // least)
    return [items[k::count] for k in range(count)] if count else []


def _spread_text(chunk: list[str], total: int, least: int) -> str:
    """What a spread group shows: its failing steps (the first few named), the others passing."""
    shown = ", ".join(chunk[:5]) + (f" and {len(chunk) - 5} more" if len(chunk) > 5 else "")
    rest = f", the other {total - len(chunk)} passing" if total > len(chunk) else ""
    if least == 1:
        return f"steps {shown} failing together{rest},"
    how = "above" if len(chunk) == least else "well above"
    return f"{how} tolerance ({len(chunk)} failing: {shown}{rest})"


# --- slow_runs, custom -----------------------------------------------------------------

def _slow_runs(model: Model, env: Environment, alert: Alert, rules: Rules) -> list[kit.Doc]:
    params, env_label = alert.params_for(env.name), model.metrics.env_label
    for_text, wait = _wait(alert, env)
    fire_at = ONSET + wait  # a run a minute from ONSET on
    end = fire_at + 5 * STEP
    p = f"p{c.fmt_number(params.quantile * 100)}"
    threshold = params.threshold_seconds
    fast, slow = threshold / 2, threshold + 1
    return [
        kit.group(f"{env.name}: runs of {c.fmt_number(fast)} s every minute ({p} below {c.fmt_number(threshold)} s) "
                  f"do not fire {alert.name}", STEP, run_series(model, env, range(ONSET, end + 1, STEP), end,
                                                              duration=fast),
                  [kit.alert_case(end, alert.name, [])]),
        kit.group(f"{env.name}: runs of {c.fmt_number(slow)} s every minute ({p} = {c.fmt_number(slow)} s > "
                  f"{c.fmt_number(threshold)} s) fire {alert.name}{_after(for_text, wait)}", STEP,
                  run_series(model, env, range(ONSET, end + 1, STEP), end, duration=slow),
                  [kit.alert_case(fire_at - STEP, alert.name, []),
                   kit.alert_case(fire_at, alert.name, [_intended(model, env, alert, {env_label: env.name}, slow)])]),
    ]


def run_series(model: Model, env: Environment, times, end: int, duration: float = 1.0, outcome: str = "pass",
               drill: bool = False, gone: int | None = None) -> dict[str, str]:
    """The per-run series `obsgen emit` writes for runs at `times` (seconds, multiples of STEP), each scraped
    from its run for as long as the Pushgateway keeps the run's group, up to `end` plus TAIL samples, or
    until `gone` (a Pushgateway restart drops every group). A run before 0 is one before the test's window:
    its series shows from 0 while its group lasts."""
    out, last = {}, end // STEP + TAIL if gone is None else gone // STEP
    for t in times:
        labels = {model.metrics.env_label: env.name, c.LABEL_RUN: c.run_id(t), c.LABEL_RESULT: "pass" if outcome == "pass"
                  else "fail", c.LABEL_OUTCOME: outcome, **({c.DRILL_LABEL: "true"} if drill else {})}
        first = max(0, t // STEP)
        shown = min(t // STEP + c.RUN_GROUP_KEEP // STEP, last) - first
        if shown > 0:
            lead = f"_x{first} " if first else ""
            out[kit.series(model.metrics.run_timestamp, labels)] = f"{lead}{t}x{shown - 1}"
            out[kit.series(model.metrics.run_duration, labels)] = f"{lead}{c.fmt_number(duration)}x{shown - 1}"
    return out


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
                   kit.alert_case(fire_at, alert.name, [_intended(model, env, alert, result_labels,
                                                                  float(firing))])]),
    ]
