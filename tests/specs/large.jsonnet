// A large spec written in Jsonnet: 60 steps over three tiers, 8 SLOs with
// different periods, four environments, a custom alert and two dashboards.
local tiers = ['kernel', 'governance', 'optional'];
local envs = [
  { name: 'dev', tolerance: 5, page: false, cadence: { every: '5m' } },
  { name: 'qa', tolerance: 3, page: false, cadence: { every: '3m' } },  // fast enough to keep the workbook's 5m window
  { name: 'staging', tolerance: 1, page: false, cadence: { at_least_every: '10m' } },
  { name: 'prod', tolerance: 0, page: true, cadence: { at_least_every: '5m' } },
];
local periods = ['7d', '14d', '28d', '30d'];
{
  apiVersion: 'obsgen/v1',
  service: { name: 'bigtest', owner: 'platform', runbook_base_url: 'https://runbooks.example.com/bigtest' },
  metrics: { run_timestamp: 'selftest_run_timestamp_seconds' },
  tiers: [
    { id: 'kernel', severity: 'critical', channel: 'pd', runbook: 'kernel' },
    { id: 'governance', severity: 'warning', channel: 'tickets', runbook: 'governance' },
    { id: 'optional', severity: 'info', channel: 'info', runbook: 'optional' },
  ],
  steps: [
    {
      id: 'step-%03d' % i,
      tier: tiers[i % 3],
      category: if i % 2 == 0 then 'correctness' else 'governance',
      description: 'Generated step %d' % i,
      runbook: 'step-%03d' % i,
      remediation: 'Re-run step %03d with --verbose and fix what it reports.' % i,
    }
    for i in std.range(1, 60)
  ],
  channels: [
    { id: 'pd', type: 'pagerduty' },
    { id: 'tickets', type: 'slack' },
    { id: 'info', type: 'slack' },
  ],
  environments: [
    {
      name: e.name,
      cadence: e.cadence,
      policy: { tolerance: { governance: e.tolerance, optional: 10 }, page_on_any_failure: e.page },
      channels: {
        pd: { routing_key_file: '/run/secrets/%s/pd' % e.name },
        tickets: { api_url_file: '/run/secrets/%s/slack' % e.name, channel: '#big-%s' % e.name },
        info: { api_url_file: '/run/secrets/%s/slack' % e.name, channel: '#big-%s-info' % e.name },
      },
    }
    for e in envs
  ],
  slos: [
    {
      id: 'pass-rate-%d' % i,
      description: 'Pass rate %d.' % i,
      objective: [0.9, 0.95, 0.99, 0.999][i % 4],
      period: periods[i % 4],
      sli: { kind: 'pass_rate' },
    }
    for i in std.range(1, 4)
  ] + [
    {
      id: 'latency-%ds' % t,
      description: 'Runs under %d s.' % t,
      objective: 0.95,
      period: '28d',
      sli: { kind: 'latency', threshold_seconds: t },
    }
    for t in [10, 30, 60]
  ] + [
    {
      id: 'custom-ratio',
      objective: 0.9,
      period: '7d',
      sli: {
        kind: 'ratio',
        error_query: 'sum(rate(bigtest_errors_total{env="{{env}}"}[{{window}}]))',
        total_query: 'sum(rate(bigtest_requests_total{env="{{env}}"}[{{window}}]))',
      },
    },
  ],
  slo_alerting: { page_channel: 'pd', ticket_channel: 'tickets' },
  alerts: [
    { name: 'BigKernelFailed', kind: 'step_failed', tier: 'kernel', 'for': '1m', overrides: { prod: { 'for': '0m' } } },
    { name: 'BigGovernanceFailed', kind: 'step_failed', tier: 'governance', 'for': '5m' },
    { name: 'BigOptionalFailed', kind: 'step_failed', tier: 'optional', 'for': '15m', overrides: { dev: { enabled: false } } },
    { name: 'BigNotReporting', kind: 'not_reporting', tier: 'kernel', stale_after: '1h' },
    { name: 'BigSlow', kind: 'slow_runs', tier: 'governance', threshold_seconds: 120, quantile: 0.99, window: '30m' },
    {
      name: 'BigQueueBacklog',
      kind: 'custom',
      tier: 'governance',
      step_id: 'step-002',
      expr: 'sum by (env) (bigtest_queue_depth{env="{{env}}"}) > 100',
      'for': '15m',
      summary: 'Queue backlog in {{ $labels.env }}',
      remediation: 'Scale the runners.',
      runbook: 'queue-backlog',
    },
  ],
  dashboards: [
    { id: 'overview', title: 'Bigtest overview', tags: ['bigtest'], panels: ['status', 'pass_rate', 'failures_by_tier', 'duration_quantiles', 'error_budget_remaining', 'burn_rate'] },
    { id: 'triage', title: 'Bigtest triage', panels: ['failures_by_step', 'recent_failures', 'time_since_last_failure'] },
  ],
}
