"""Building blocks of the generated promtool rule tests, and what Prometheus 2.42 computes for them.

- test documents: groups, alert cases with their exact expected labels and annotations, durations;
- alert templates: `{{ $labels.x }}` / `{{ .Labels.x }}` and `{{ $value }}` / `{{ .Value }}`, expanded
  as Go's text/template does with the labels of the series the alert expression returned (a missing
  label expands to the empty string) and the value printed as Go prints a float64 (`1e+06`, `86460`);
- `rate()` over a counter sampled at a fixed step, with the same float operations as the 2.42 engine
  (extrapolation factor, then one multiplication), so that recorded ratios compare bit for bit;
- promtool's `a+bxn` series notation;
- the small shapes of user-supplied PromQL a test can be derived from (a selector, optionally summed).
"""
from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any, Iterable
from urllib.parse import quote

from obsgen.compile import conventions as c
from obsgen.model import durations
from obsgen.model import Environment, Model

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_ACTION = re.compile(r"\{\{\s*(?:\$labels\.(" + _NAME + r")|\.Labels\.(" + _NAME + r")|\$value|\.Value)\s*\}\}")
_GO_SPACE = " \t\r\n"
# "{{- " trims the white space before the action, " -}}" the white space after it
_ANY_ACTION = re.compile(r"\{\{(?P<left>-[ \t\r\n])?[ \t\r\n]*(?P<body>.*?)[ \t\r\n]*(?P<right>[ \t\r\n]-)?\}\}",
                         re.DOTALL)


Doc = dict[str, Any]


def dur(seconds: int) -> str:
    """A duration as promtool reads it: 0s, 5m, 1d16h."""
    return durations.format_seconds(seconds)


def ceil_to(seconds: float, step: int) -> int:
    return int(-(-seconds // step) * step)


def group(name: str, interval: int, inputs: dict[str, str], alerts: Iterable[Doc] = (),
          exprs: Iterable[Doc] = ()) -> Doc:
    """One test group: `inputs` maps series selectors to promtool values. promtool 2.42 names the group of
    a failed alert case but only the expression of a failed expression case: the expression ends with a
    PromQL comment naming the group."""
    doc: Doc = {"name": name, "interval": dur(interval),
                "input_series": [{"series": s, "values": v} for s, v in inputs.items()]}
    if alerts := list(alerts):
        doc["alert_rule_test"] = alerts
    if exprs := list(exprs):
        doc["promql_expr_test"] = [{**e, "expr": f"{e['expr']}  # {name}"} for e in exprs]
    return doc


def alert_case(at: int, alertname: str, expected: list[Doc]) -> Doc:
    return {"eval_time": dur(at), "alertname": alertname, "exp_alerts": expected}


def expr_case(at: int, expr: str, samples: list[tuple[str, float]]) -> Doc:
    return {"eval_time": dur(at), "expr": expr,
            "exp_samples": [{"labels": labels, "value": value} for labels, value in samples]}


def expected(rule: Doc, series_labels: dict[str, str], value: float) -> Doc:
    """A firing alert of `rule` for one result series: the full label set and the templated annotations."""
    labels = {k: v for k, v in series_labels.items() if k != "__name__"}
    labels.update({k: expand(str(v), series_labels, value) for k, v in rule.get("labels", {}).items()})
    return {"exp_labels": labels,
            "exp_annotations": {k: expand(str(v), series_labels, value)
                                for k, v in rule.get("annotations", {}).items()}}


def intended(labels: dict[str, str], annotations: dict[str, str], series_labels: dict[str, str],
             value: float) -> Doc:
    """A firing alert as the spec intends it: `labels` and `annotations` are computed from the model, not
    read from the generated rule. The summary is templated as Prometheus does with the result series and
    value; every other annotation is free text that must arrive exactly as written."""
    merged = {k: v for k, v in series_labels.items() if k != "__name__"}
    merged.update({k: expand(v, series_labels, value) for k, v in labels.items()})
    return {"exp_labels": merged,
            "exp_annotations": {k: expand(v, series_labels, value) if k == "summary" else v
                                for k, v in annotations.items()}}


class UnsupportedTemplate(ValueError):
    """An annotation uses template actions other than label and value placeholders."""


def expand(template: str, labels: dict[str, str], value: float) -> str:
    """An alert label or annotation after templating, as Go's text/template reads it: an action runs from
    `{{` (with `{{- ` trimming the white space before it) to the first `}}` (with ` -}}` trimming the white
    space after it); the actions known here are a label, the value, and the string "{{" that
    obsgen.spec.templates.literal writes for a literal `{{`."""
    out, pos, trim = [], 0, False
    for m in _ANY_ACTION.finditer(template):
        text = template[pos:m.start()]
        text = text.lstrip(_GO_SPACE) if trim else text
        out.append(text.rstrip(_GO_SPACE) if m["left"] else text)
        out.append(_action(m["body"], labels, value, template))
        pos, trim = m.end(), bool(m["right"])
    tail = template[pos:]
    out.append(tail.lstrip(_GO_SPACE) if trim else tail)
    if any("{{" in piece for piece in out[::2]):  # an action that never closes
        raise UnsupportedTemplate(template)
    return "".join(out)


def _action(body: str, labels: dict[str, str], value: float, template: str) -> str:
    if body == '"{{"':
        return "{{"
    m = _ACTION.fullmatch("{{" + body + "}}")
    if not m:
        raise UnsupportedTemplate(template)
    return labels.get(m[1] or m[2], "") if m[1] or m[2] else go_float(value)


def go_float(value: float) -> str:
    """A float64 as Go's fmt prints it with %v: shortest digits, exponent form below 1e-4 and from 1e6."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple))
    exponent += len(digits) - len(digits.rstrip("0"))
    digits = digits.rstrip("0")
    point = len(digits) + exponent  # value = 0.<digits> * 10**point
    exp10 = point - 1
    if exp10 < -4 or exp10 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'+' if exp10 >= 0 else '-'}{abs(exp10):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def rate(values: list[int], step: int, at: int, window: int) -> float | None:
    """rate(counter[window]) at `at` seconds, the counter sampled every `step` seconds from 0."""
    first = max(0, -(-(at - window) // step))  # the range includes its start in 2.42
    last = at // step
    if last >= len(values):
        raise ValueError(f"the series ends before {at}s")
    if last - first < 1:
        return None
    points = values[first:last + 1]
    result = float(points[-1] - points[0])
    to_start = float(first * step - (at - window))
    to_end = float(at - last * step)
    sampled = float((last - first) * step)
    average = sampled / (len(points) - 1)
    if result > 0 and points[0] >= 0:
        to_start = min(to_start, sampled * (points[0] / result))  # never extrapolate below zero
    threshold = average * 1.1
    interval = sampled + (to_start if to_start < threshold else average / 2)
    interval += to_end if to_end < threshold else average / 2
    factor = interval / sampled
    factor /= window
    return result * factor


def counter_notation(increments: list[tuple[int, int]]) -> str:
    """promtool values of a counter from 0: (steps, increment per step) segments -> '0+3x10 33+5x3'."""
    parts, value = [], 0
    for n, (steps, inc) in enumerate(increments):
        start = value if n == 0 else value + inc
        count = steps if n == 0 else steps - 1
        if count >= 0:
            parts.append(f"{start}+{inc}x{count}" if count else str(start))
        value += steps * inc
    return " ".join(parts)


def counter_values(increments: list[tuple[int, int]]) -> list[int]:
    """The samples `counter_notation` describes, one per step from 0."""
    values = [0]
    for steps, inc in increments:
        for _ in range(steps):
            values.append(values[-1] + inc)
    return values


def gauge_notation(runs: list[tuple[str, int]]) -> str:
    """promtool values of a gauge: (value, samples) runs -> '0x1 1x20' (two 0s, then 21 1s)."""
    return " ".join(f"{value}x{count - 1}" if count > 1 else value for value, count in runs if count > 0)


def series(metric: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# --- user-supplied PromQL shapes -------------------------------------------------------------------

_SELECTOR = r"([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{([^}]*)\})?"
_MATCHER = re.compile(r'\s*(' + _NAME + r')\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_AGGREGATED = re.compile(r"^\s*(sum|max|min|avg)\s*(?:by\s*\(([^)]*)\))?\s*\(\s*" + _SELECTOR + r"\s*\)\s*$")
_BARE = re.compile(r"^\s*" + _SELECTOR + r"\s*$")
_COMPARISON = re.compile(r"^(.*?)\s*(>=|<=|>|<)\s*(-?[0-9]+(?:\.[0-9]+)?)\s*$", re.S)
_RATE_SUM = re.compile(r"^\s*sum\s*(?:by\s*\(([^)]*)\))?\s*\(\s*rate\s*\(\s*" + _SELECTOR
                       + r"\s*\[\s*\{\{window\}\}\s*\]\s*\)\s*\)\s*$")


def matchers(text: str | None) -> dict[str, str] | None:
    """Equality matchers of a selector as labels; None if it has any other kind."""
    text = (text or "").strip().rstrip(",")
    found, pos = {}, 0
    while pos < len(text):
        m = _MATCHER.match(text, pos)
        if not m:
            return None
        found[m.group(1)] = re.sub(r"\\(.)", r"\1", m.group(2))
        pos = m.end()
    return found


def _output_labels(by: str | None, aggregated: bool, metric: str, labels: dict[str, str]) -> dict[str, str]:
    if not aggregated:
        return {"__name__": metric, **labels}
    keep = {name.strip() for name in (by or "").split(",") if name.strip()}
    return {k: v for k, v in labels.items() if k in keep}


def threshold_alert(expr: str) -> tuple[str, dict[str, str], dict[str, str], str, str] | None:
    """`[sum|max|min|avg [by (..)]] (metric{a="b"}) OP number` -> (metric, series labels, output labels,
    operator, threshold); None for any other shape."""
    comparison = _COMPARISON.match(expr.strip())
    if not comparison:
        return None
    vector, op, number = comparison.groups()
    aggregated = _AGGREGATED.match(vector)
    if aggregated:
        _, by, metric, inner = aggregated.groups()
    else:
        bare = _BARE.match(vector)
        if not bare:
            return None
        by, (metric, inner) = None, bare.groups()
    labels = matchers(inner)
    if labels is None:
        return None
    return metric, labels, _output_labels(by, bool(aggregated), metric, labels), op, number


def summed_rate(query: str) -> tuple[str, dict[str, str], dict[str, str]] | None:
    """`sum [by (..)] (rate(metric{a="b"}[{{window}}]))` -> (metric, series labels, output labels)."""
    m = _RATE_SUM.match(query)
    if not m:
        return None
    by, metric, inner = m.groups()
    labels = matchers(inner)
    if labels is None:
        return None
    return metric, labels, _output_labels(by, True, metric, labels)


def intended_dashboard(model: Model, env: Environment, step_id: str) -> dict[str, str]:
    """The README's dashboard_url: the environment's Grafana, `/d/<uid>` of the spec's first dashboard,
    `?var-step=<step>` for an alert about one step; none without a grafana backend."""
    grafana = env.backend("grafana")
    if grafana is None or not model.dashboards:
        return {}
    url = grafana.url.rstrip("/") + "/d/" + c.dashboard_uid(model, env, model.dashboards[0].id)
    return {"dashboard_url": url if step_id == c.ALL_STEPS else f"{url}?var-step={quote(step_id, safe='')}"}


def values_notation(values: list[int]) -> str:
    """promtool values of integer samples, each stretch of equal steps in its expanding form:
    [100, 101, 102, 102, 102] -> '100+1x2 102x1' (a+bxn: a, then n more samples b apart; axn: a, n+1 times)."""
    parts, i = [], 0
    while i < len(values):
        step = values[i + 1] - values[i] if i + 1 < len(values) else 0
        j = i
        while j + 1 < len(values) and values[j + 1] - values[j] == step:
            j += 1
        n, start = j - i, values[i]
        parts.append(str(start) if n == 0 else f"{start}x{n}" if step == 0
                     else f"{start}{'+' if step > 0 else '-'}{abs(step)}x{n}")
        i = j + 1
    return " ".join(parts)
