"""diff and apply: compile one environment, read every backend, plan, and apply without half-states.

Backends are applied in order (Grafana folder and dashboards, then rules, then
routing). If any step fails, every backend already changed is restored to the
live state captured before writing, in reverse order. A lock file stops two
applies to the same environment at once; every run is recorded in the ledger.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from obsgen.deploy import ledger, state
from obsgen.deploy.backends.base import Backend, BackendError, parallel
from obsgen.deploy.plan import DELETE, Change, Plan, plan
from obsgen.errors import ObsgenError
from obsgen.model import Environment, Model


@dataclass(frozen=True)
class Overrides:
    """Per-run endpoint overrides (flags or OBSGEN_* environment variables)."""

    grafana_url: str | None = None
    prometheus_url: str | None = None
    prometheus_rules_dir: str | None = None
    alertmanager_url: str | None = None
    alertmanager_config_file: str | None = None

    @classmethod
    def from_environ(cls) -> "Overrides":
        return cls(**{f: os.environ.get(f"OBSGEN_{f.upper()}") for f in cls.__dataclass_fields__})


@dataclass
class Session:
    model: Model
    env: str
    backends: list[Backend]
    plan: Plan
    by_backend: dict[str, list[Change]] = field(default_factory=dict)


def open_session(spec: str, env_name: str, overrides: Overrides, only: tuple[str, ...] = ()) -> Session:
    from obsgen.generate import compile_spec

    build = compile_spec(spec, [env_name], only=("grafana", "prometheus", "alertmanager"))  # what is deployed
    env = build.model.environment(env_name)
    makers = _makers(build.model, env, overrides)
    backends = [make() for name, make in makers.items() if env.backend(name) and (not only or name in only)]
    wanted = [backend.desired(build.artifacts) for backend in backends]
    # the backends are read at the same time; each client bounds its own parallel reads
    lives = parallel(lambda i: backends[i].read(wanted[i]), range(len(backends)))
    result = plan([o for objs in wanted for o in objs], [o for objs in lives for o in objs])
    session = Session(build.model, env_name, backends, result)
    for change in result.changes:
        session.by_backend.setdefault(change.obj.backend, []).append(change)
    return session


def _makers(model: Model, env: Environment, overrides: Overrides) -> dict[str, Callable[[], Backend]]:
    """One client maker per backend kind, chosen by the backend's mode in the spec."""
    from obsgen.deploy.backends.alertmanager import AlertmanagerBackend
    from obsgen.deploy.backends.grafana import GrafanaBackend
    from obsgen.deploy.backends.mimir_alertmanager import MimirAlertmanagerBackend
    from obsgen.deploy.backends.mimir_ruler import MimirRulerBackend
    from obsgen.deploy.backends.prometheus import PrometheusBackend

    def mode(kind: str) -> str:
        spec = env.backend(kind)
        return spec.mode if spec else ""

    return {
        "grafana": lambda: GrafanaBackend(model, env, overrides.grafana_url),
        "prometheus": (lambda: MimirRulerBackend(model, env, overrides.prometheus_url)) if mode("prometheus") == "mimir"
        else lambda: PrometheusBackend(model, env, overrides.prometheus_url, overrides.prometheus_rules_dir),
        "alertmanager": (lambda: MimirAlertmanagerBackend(model, env, overrides.alertmanager_url))
        if mode("alertmanager") == "mimir"
        else lambda: AlertmanagerBackend(model, env, overrides.alertmanager_url, overrides.alertmanager_config_file),
    }


def apply(session: Session, *, prune: bool, force: bool) -> list[Change]:
    """Apply the session's plan; on failure restore every backend already changed and re-raise."""
    done: list[tuple[Backend, list[Change]]] = []
    try:
        for backend in session.backends:
            changes = [c for c in session.by_backend.get(backend.name, []) if prune or c.action != DELETE]
            if not changes:
                continue
            try:
                backend.apply(changes, force=force)
            finally:
                applied = getattr(backend, "applied", changes)
                done.append((backend, applied))
    except ObsgenError as exc:
        restored, failed = [], []
        for backend, changes in reversed(done):
            if not changes:
                continue  # the backend that failed before changing anything
            try:
                backend.restore(changes)
                restored.append(backend.name)
            except ObsgenError as restore_error:
                failed.append(f"{backend.name}: {restore_error}")
        note = f"; restored {', '.join(restored)} to the state before this apply" if restored else ""
        if failed:
            note += f"; COULD NOT RESTORE {'; '.join(failed)}"
        raise BackendError(f"{exc}{note}") from None
    return [c for _, changes in done for c in changes]


def record(session: Session, mode: str, result: str, error: str = "") -> None:
    ledger.record(state.ledger_path(), env=session.env, spec_sha256=session.model.digest, mode=mode,
                  summary=session.plan.summary(), changes=[c.title for c in session.plan.changes],
                  result=result, error=error)
