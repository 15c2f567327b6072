"""The selftest report bridge: a `--json-v2` run report in, the metrics the spec names out.

    report = load_report("selftest-report.json", model)
    done = emit_to_pushgateway(model, "dev", report, "http://pushgateway:9091")   # or emit_to_textfile
    done.counted   # False when the target had already counted this run: nothing was written

The report's format is the JSON Schema obsgen ships (`schema_text()`, `obsgen emit --print-schema`,
obsgen/schemas/report/); a report is checked against it and then against the spec (every step it names is
a spec step of the spec's tier), every problem at once (`checks`). A spec step absent from the report is
not an error: see `missing_steps`.

The series, named by `model.metrics`, each labelled `<env_label>="<env>"` (plus any extra labels):

- `step_failed{step_id, tier}` gauge: 1 when the step failed (FAIL or TIMEOUT) in the last run that ran it,
  0 when it passed or was skipped (the runner does not count a skip as a failure either). A spec step absent
  from the report (a `--step`, `--until` or `--kernel-only` run) keeps its value from the previous
  exposition, and has no series before a run reports it: a partial run says nothing about the steps it did
  not run, so it must neither raise nor clear their alerts. A step the spec does not know is an error.
- `step_failures_total{step_id, tier}` counter: runs in which the step failed, one series per spec step
  (0 until it fails), so that dashboards count failed runs with increase() rather than gauge samples. A
  fire drill (`accumulate=False`) leaves it at 0.
- `run_timestamp{run, result, outcome}` and `run_duration{run, result, outcome}` gauges, one series per run:
  the run's time and its duration in seconds. `run` is the run's time (`run_id`), `result` pass or fail under
  the environment's policy, `outcome` pass, ticket or page (`run_outcome`: page when a tier whose failures
  page there fails). Prometheus counts runs as distinct series (`count(max_over_time(...[w]) > time() - w)`),
  so nothing is read, added and written back: a Pushgateway gets each run as a group of its own
  (job, env, run=<time>), deleted an hour after its push; a textfile keeps the last 16 runs.
- `last_run_timestamp` gauge: the time of the newest run counted, the report's time, else `now`. It never
  moves back.
- `recent_runs{recent="1".."16"}` gauge: the times of the last runs counted at this target, newest first.

A run is known by its report's time (`metadata.timestamp`) and is counted once, in order (`place`): a report
whose time is one of the recent runs' was counted already (REPLAYED: nothing is written); a report older
than the newest run counted arrived late (OLDER: nothing is written either, so it neither moves
`last_run_timestamp` back nor counts a run the rates have already passed; the caller says so). A report
without a time cannot be told from a replay and is counted every time.

A run fails when it breaks the environment's policy (`queries.run_limits`, which the dashboard's Status
reads too), the bar the generated step alerts use and what the
selftest's exit status means per environment in the seeds: a failing step of a critical tier (KERNEL), more
failing steps of a warning tier (GOVERNANCE) than the environment tolerates, or a failing step of an
informational tier (OPTIONAL) where the environment pages on any failure (prod). The pass-rate SLO then
burns on exactly the runs that block. The environment's own series (step gauges and times, last run, recent
runs, the per-step failure counter the dashboards read) are rewritten from the previous exposition for the
same target; the per-run series are never rewritten, and a textfile is read and written under a lock.

The exposition, the textfile and the Pushgateway protocol are prometheus_client's (imported on first use):
a CollectorRegistry, `write_to_textfile`, `push_to_gateway` and `delete_from_gateway`, the last two sending
through obsgen's own HTTP client (its timeouts and one-line errors).
"""
from __future__ import annotations

from obsgen.run.emit.exposition import (COUNTED, LABEL_RECENT, LABEL_RUN, OLDER, RECENT_RUNS, REPLAYED, Emitted,
                                    already_counted, exposition, parse_exposition, place, registry, run_id,
                                    run_registry)
from obsgen.run.emit.publish import (DRILL_GROUPING, RUN_GROUP_KEEP, check_grouping, check_textfile, delete_group,
                                 emit_to_pushgateway, emit_to_textfile, fetch_group, push, read_textfile,
                                 write_textfile)
from obsgen.run.emit.checks import FAILED, RUNNER_SEVERITY, RUNNER_TIERS, STATUSES, schema_text
from obsgen.run.emit.report import (LABEL_OUTCOME, LABEL_RESULT, PAGE, PASS, TICKET, Report, ReportError, StepResult,
                                check_report, describe_run, format_time, load_report, missing_steps, parse_report,
                                run_outcome, run_result, run_time, stale_report, synthetic_report)

__all__ = [
    "COUNTED", "DRILL_GROUPING", "FAILED", "LABEL_OUTCOME", "LABEL_RECENT", "LABEL_RESULT", "LABEL_RUN", "OLDER",
    "PAGE", "PASS", "RECENT_RUNS", "REPLAYED", "RUNNER_SEVERITY", "RUNNER_TIERS", "RUN_GROUP_KEEP", "STATUSES",
    "TICKET", "Emitted", "Report", "ReportError", "StepResult", "already_counted", "check_grouping",
    "check_report", "check_textfile", "delete_group", "describe_run", "emit_to_pushgateway", "emit_to_textfile",
    "exposition", "fetch_group", "format_time", "load_report", "missing_steps", "parse_exposition",
    "parse_report", "place", "push", "read_textfile", "registry", "run_id", "run_outcome", "run_registry",
    "run_result", "run_time", "schema_text", "stale_report", "synthetic_report", "write_textfile",
]
