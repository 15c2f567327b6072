"""promtool unit tests for the generated rule files: `<env>/tests/rules/<name>.test.yaml`.

One test file per rule file, loading it as `../../prometheus/<name>.rules.yaml` (promtool resolves
`rule_files` against the test file's directory), so `promtool test rules` checks what is deployed.
The tests sit outside `<env>/prometheus/` because everything there is deployed as rules.

The inputs and times come from the model (tolerances, `for`, `stale_after`, thresholds, buckets,
objectives), not from the generated expressions, which are what the tests check; a custom alert's own
PromQL is read for its selector and threshold. The expected labels and annotations are computed from the
spec's intent (`_intended`: the tier's severity, the page label where the policy pages on any failure,
the spec's summary with the environment filled in, the runbook and dashboard links), never read from the
generated rule, then templated with the labels of the series the expression returns and the alert's
value. Each group proves one thing and says so in its name. Selftest groups use 1m samples and evaluations; a
failure starts at 2m, so an alert with `for: F` is still pending at 2m+F-1m and fires at 2m+F.

- step_failed, tolerance 0: each step failing alone fires its rule (and only its rule), not before;
  tolerance T > 0: T failing steps fire nothing; T+1 failing steps fire one alert per failing step, in
  runs of T+1 steps until every step's rule has fired once. The failing-steps record is checked too.
- not_reporting: runs at the environment's cadence, then none: quiet through the normal gaps, fires
  `stale_after` (default: two cadence intervals plus 10m) after the last run, paging only where the
  policy pages on any failure; never reported (the metric present only for another environment): the
  alert stays quiet and only the informational `<name>NoData` notice fires, never paging; runs at the
  cadence for several intervals fire neither.
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
from obsgen.model import Alert, Environment, Model, Step
from obsgen.placeholders import fill

STEP = 60  # seconds between samples and between evaluations in the selftest tests
ONSET = 2 * STEP  # when a failure starts: two healthy samples first
TAIL = 10  # samples every series keeps after the last evaluation

Rules = dict[tuple[str, str], kit.Doc]  # (alertname, step_id) -> alerting rule


def compile_rule_tests(model: Model, env: Environment) -> list[Artifact]:
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
    if env.policy.page_on_any_failure and tier.severity != "critical":
        labels[c.LABEL_PAGE] = "oncall"
    params = alert.params_for(env.name)
    if step is not None:
        tolerance = env.policy.tolerance_for(tier.id)
        description = (f"{step.description or step.id} ({step.category or tier.id}); {tolerance} "
                       f"{tier.id.upper()} failure{'s' if tolerance != 1 else ''} tolerated in {env.name}.")
    elif alert.kind == "not_reporting":
        description = (f"The last selftest run in {env.name} reported more than {_stale_text(alert, env)} ago; "
                       f"it runs {env.cadence.describe()}.")
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


def _notice(model: Model, env: Environment, alert: Alert, series_labels: dict[str, str]) -> kit.Doc:
    """The never-reported notice: the least severe tier's labels, never a page label."""
    tier = sorted(model.tiers, key=lambda t: SEVERITY_ORDER.index(t.severity))[-1]
    labels = {c.LABEL_TIER: tier.id, c.LABEL_SEVERITY: tier.severity, c.LABEL_STEP: c.ALL_STEPS,
              c.LABEL_SERVICE: model.service.name, model.metrics.env_label: env.name}
    annotations = {
        "summary": f"Selftest in {env.name} has not reported any run yet",
        "description": (f"No last-run metric for {env.name} in {_lookback_text(alert, env)}: no selftest run "
                        f"has reported since these rules were loaded, or none for {_lookback_text(alert, env)}. "
                        f"Informational; {alert.name} alerts once runs have reported and then stop for "
                        f"{_stale_text(alert, env)}."),
        "remediation": alert.remediation or model.tier(alert.tier).description,
        "runbook_url": model.service.runbook_url(alert.runbook),
        **kit.intended_dashboard(model, env, c.ALL_STEPS),
    }
    return kit.intended(labels, annotations, series_labels, 1.0)


def _stale_seconds(alert: Alert, env: Environment) -> int:
    given = alert.params_for(env.name).stale_after
    return int(durations.seconds(given)) if given else int(2 * env.cadence.seconds) + LIVENESS_MARGIN


def _stale_text(alert: Alert, env: Environment) -> str:
    return alert.params_for(env.name).stale_after or kit.dur(_stale_seconds(alert, env))


def _lookback_text(alert: Alert, env: Environment) -> str:
    """The README's liveness lookback: at least 7d, and twice stale_after."""
    return durations.format_seconds(max(7 * 86400, 2 * _stale_seconds(alert, env)))


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
    value = float(ONSET) if tolerance == 0 else 1.0  # the failure's time, or the gauge
    if len(steps) >= size:
        for index, chunk in enumerate(_chunks([s.id for s in steps], size)):
            firing = [_intended(model, env, alert, labels(s), value, step=by_id[s]) for s in sorted(chunk)]
            what = f"above tolerance ({size} failing: {', '.join(chunk)})" if tolerance else f"step {chunk[0]} failing"
            each = " for each failing step" if size > 1 else ""
            groups.append(kit.group(
                f"{name} {what} fires {alert.name}{each}{_after(for_text, wait, 'before the failure')}",
                STEP, inputs(chunk, None if index == 0 and tolerance == 0 else with_neighbour(chunk)),
                [kit.alert_case(fire_at - STEP, alert.name, []), kit.alert_case(fire_at, alert.name, firing)]
                + ([kit.alert_case(end, alert.name, firing)] if tolerance == 0 else []),
                [failing_sum(fire_at, size)]))
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


def _chunks(items: list[str], size: int) -> list[list[str]]:
    """Consecutive runs of `size` items covering every item; the last run wraps around to the start."""
    return [[items[(start + i) % len(items)] for i in range(size)] for start in range(0, len(items), size)]


# --- not_reporting, slow_runs, custom -----------------------------------------------------------------

def _not_reporting(model: Model, env: Environment, alert: Alert, rules: Rules) -> list[kit.Doc]:
    env_label, metric = model.metrics.env_label, model.metrics.last_run_timestamp
    notice_name = f"{alert.name}NoData"
    stale, stale_text = _stale_seconds(alert, env), _stale_text(alert, env)
    cadence = kit.ceil_to(env.cadence.seconds, STEP)
    for_text, wait = _wait(alert, env)
    mine, other = {env_label: env.name}, {env_label: f"not-{env.name}"}
    pages = env.policy.page_on_any_failure or model.tier(alert.tier).severity == "critical"
    how = "pages" if pages else f"does not page ({model.tier(alert.tier).severity})"

    # Two runs a cadence apart (at 0 and at `cadence`), then none: the last run's age passes stale_after at
    # cadence + stale, so the alert is active from the next evaluation and fires `for` later.
    last = cadence
    fire_at = last + stale + STEP + wait
    samples = fire_at // STEP + TAIL
    stale_group = kit.group(
        f"{env.name}: runs {env.cadence.describe()} then none: {alert.name} fires stale_after {stale_text} "
        f"after the last run{_after(for_text, wait, 'while younger')}, and {how}",
        STEP, {kit.series(metric, mine): kit.gauge_notation([("0", cadence // STEP), (str(last),
                                                                                      samples - cadence // STEP)])},
        [kit.alert_case(last, alert.name, []), kit.alert_case(last + stale, alert.name, []),
         kit.alert_case(fire_at - STEP, alert.name, []),
         kit.alert_case(fire_at, alert.name, [_intended(model, env, alert, mine, float(fire_at - last))]),
         kit.alert_case(fire_at, notice_name, [])])

    # Never reported (another environment's metric does not count): only the notice, never a page.
    end = max(wait, STEP) + stale + STEP
    never_group = kit.group(
        f"{env.name}: never reported: {alert.name} stays quiet and only the notice {notice_name} fires"
        + (_after(for_text, wait) if wait else f" at once (for {for_text})") + ", without a page label",
        STEP, {kit.series(metric, other): f"0+{STEP}x{end // STEP + TAIL}"},
        ([kit.alert_case(wait - STEP, notice_name, [])] if wait else [])
        + [kit.alert_case(wait, notice_name, [_notice(model, env, alert, mine)]),
           kit.alert_case(end, notice_name, [_notice(model, env, alert, mine)]),
           kit.alert_case(end, alert.name, [])])

    # A fire drill is no run: the job dead after its second run, a drill reporting fresh times every minute
    # from then on; the alert fires all the same. And where nothing ever reported, a drill does not count
    # as a first run: the notice fires.
    drill = {**mine, c.DRILL_LABEL: "true"}
    drill_group = kit.group(
        f"{env.name}: runs {env.cadence.describe()} then none, a fire drill reporting every minute after: "
        f"{alert.name} fires all the same, stale_after {stale_text} after the last real run",
        STEP, {kit.series(metric, mine): kit.gauge_notation([("0", cadence // STEP), (str(last),
                                                                                      samples - cadence // STEP)]),
               kit.series(metric, drill): f"{last}+{STEP}x{samples}"},
        [kit.alert_case(fire_at - STEP, alert.name, []),
         kit.alert_case(fire_at, alert.name, [_intended(model, env, alert, mine, float(fire_at - last))])])
    never_drill_group = kit.group(
        f"{env.name}: never reported, a fire drill reporting every minute: the drill is no first run, "
        f"{alert.name} stays quiet and the notice {notice_name} fires",
        STEP, {kit.series(metric, drill): f"0+{STEP}x{end // STEP + TAIL}"},
        [kit.alert_case(end, notice_name, [_notice(model, env, alert, mine)]),
         kit.alert_case(end, alert.name, [])])

    # A Pushgateway restarted without persistence: the last-run series disappears while the alert fires. The
    # rules still see the last run, so the alert keeps firing and the never-reported notice stays quiet.
    gone = fire_at + STEP
    check = gone + 10 * STEP  # well past Prometheus's 5m staleness
    restart_group = kit.group(
        f"{env.name}: runs {env.cadence.describe()} then none, and the last-run series disappears (a Pushgateway "
        f"restart) while {alert.name} fires: it keeps firing, and {notice_name} stays quiet",
        STEP, {kit.series(metric, mine): kit.gauge_notation([("0", cadence // STEP), (str(last),
                                                                                      (gone - last) // STEP)])
               + f" _x{(check - gone) // STEP + TAIL}"},
        [kit.alert_case(check, alert.name, [_intended(model, env, alert, mine, float(check - last))]),
         kit.alert_case(check, notice_name, [])])

    # Runs at the cadence: at the end of the longest normal gap neither alert fires.
    runs = 4
    quiet_at = runs * cadence - STEP  # just before the fifth run
    values = kit.gauge_notation([(str(i * cadence), cadence // STEP) for i in range(runs)]
                                + [(str(runs * cadence), TAIL)])
    fresh_group = kit.group(
        f"{env.name}: runs {env.cadence.describe()} fire neither {alert.name} nor {notice_name}",
        STEP, {kit.series(metric, mine): values},
        [kit.alert_case(quiet_at, alert.name, []), kit.alert_case(quiet_at, notice_name, [])])
    return [stale_group, drill_group, restart_group, never_group, never_drill_group, fresh_group]


def _slow_runs(model: Model, env: Environment, alert: Alert, rules: Rules) -> list[kit.Doc]:
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
             kit.alert_case(fire_at, alert.name, [_intended(model, env, alert, {env_label: env.name},
                                                            float(buckets[-1]))])]))
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
                   kit.alert_case(fire_at, alert.name, [_intended(model, env, alert, result_labels,
                                                                  float(firing))])]),
    ]
