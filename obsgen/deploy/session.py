"""diff and apply: compile one environment, read every backend, plan, and apply without half-states.

Backends are applied in order (Grafana folder and dashboards, then rules, then
routing). If any step fails, every backend already changed is restored to the
live state captured before writing, in reverse order. A lock file stops two
applies to the same environment at once; every run is recorded in the ledger.

Signals: for as long as a `Run` lasts, SIGTERM (what CI runners and `timeout` send) and SIGHUP raise
`Terminated` -- a KeyboardInterrupt -- in the main thread, so an apply they stop rolls back exactly as
one stopped by Ctrl-C; a signal that arrives while rolling back or recording is noted, not raised, so the
rollback and the ledger entry finish. SIGKILL cannot be handled: the ledger's `started` entry, written
before the first write, is what the next diff or apply finds and names.
"""
from __future__ import annotations

import os
import signal
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from obsgen.deploy import ledger, state
from obsgen.deploy.backends.base import Backend, BackendError, parallel
from obsgen.deploy.plan import BLOCKED, DELETE, Change, Plan, plan
from obsgen.deploy.state import Refused  # noqa: F401  (re-exported for the CLI)
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

    @property
    def urls(self) -> dict[str, str | None]:
        """The URL overrides by backend kind."""
        return {"grafana": self.grafana_url, "prometheus": self.prometheus_url,
                "alertmanager": self.alertmanager_url}


@dataclass
class Session:
    model: Model
    env: str
    backends: list[Backend]
    plan: Plan
    by_backend: dict[str, list[Change]] = field(default_factory=dict)
    run: "Run | None" = None  # the ledger's record of an apply or dry run (None for diff)

    @property
    def notes(self) -> list[str]:
        """What the backends noticed while reading that the user should know."""
        return [note for backend in self.backends for note in backend.notes]

    @property
    def after(self) -> list[str]:
        """What the backends could not confirm yet once their apply was done (e.g. rules not yet evaluated)."""
        return [line for backend in self.backends for line in backend.after]


def open_session(spec: str, env_name: str, overrides: Overrides, only: tuple[str, ...] = (),
                 run: "Run | None" = None, out: Path | None = None) -> Session:
    """Compile the environment (or read it from `out`, when its manifest there shows it up to date), connect
    to its backends, read them all and plan.

    `run`, when given (apply and dry runs), learns the spec's digest as soon as the spec has compiled
    and takes the environment's lock, so that a failure after that point (a held lock, credentials,
    an unreachable backend) is recorded against it."""
    from obsgen.compile import DEPLOYED
    from obsgen.generate import deployable

    build, _ = deployable(spec, env_name, only or tuple(DEPLOYED), out)  # only what is deployed
    if run is not None:
        run.compiled(build.model.digest)  # from here on the run is recorded, under the environment's lock
    env = build.model.environment(env_name)
    preflight(env, overrides, only)
    makers = _makers(build.model, env, overrides)
    backends = [make() for name, make in makers.items() if env.backend(name) and (not only or name in only)]
    if run is not None:  # the ledger records where the run went (a demo's 127.0.0.1 is not dev's Grafana)
        run.targets = {b.name: b.http.base_url for b in backends if getattr(b, "http", None)}
    wanted = [backend.desired(build.artifacts) for backend in backends]
    # the backends are read at the same time; each client bounds its own parallel reads
    lives = parallel(lambda i: backends[i].read(wanted[i]), range(len(backends)))
    result = plan([o for objs in wanted for o in objs], [o for objs in lives for o in objs])
    session = Session(build.model, env_name, backends, result)
    for change in result.changes:
        session.by_backend.setdefault(change.obj.backend, []).append(change)
    if run is not None:
        run.session, session.run = session, run
    return session


def preflight(env: Environment, overrides: Overrides, only: tuple[str, ...] = ()) -> None:
    """Every configuration problem of the backends (a bad URL, credentials the endpoint may not have, a
    token not set or not readable), all in one error before any request; `obsgen doctor` checks more."""
    from obsgen.deploy.access import configuration_problems

    problems = configuration_problems(env, overrides.urls, only)
    if len(problems) == 1:
        raise BackendError(problems[0])
    if problems:
        raise BackendError(f"{len(problems)} problems with the backends of {env.name}, found before any request: "
                           f"{'; '.join(problems)} (`obsgen doctor --env {env.name}` checks every backend)")


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


class ApplyError(BackendError):
    """An apply failed after it may have changed something; says what was restored, and what could not be."""

    def __init__(self, message: str, applied: list[Change], restored: bool, signum: int = 0):
        super().__init__(message)
        self.applied, self.restored, self.signum = applied, restored, signum

    @property
    def result(self) -> str:
        """The ledger's word for it: nothing had changed, all put back, or some backend left changed."""
        if not self.applied:
            return "failed"
        return "rolled-back" if self.restored else "could-not-restore"


def apply(session: Session, *, prune: bool, force: bool) -> list[Change]:
    """Apply the session's plan, backend by backend; returns the changes applied.

    Whatever goes wrong after the first write -- a refusal, an OS error, an answer that is not what the
    API promises, a bug, Ctrl-C -- every backend already changed (the failing one included, for what it
    had or may have applied) is restored in reverse order, and one ApplyError says what happened.
    A plan with a BLOCKED change (a name obsgen would write, held by something it does not own) is
    refused before the first write. The session's Run, if any, records the apply as started before the
    first write. An ApplyError caused by a signal carries its number in `signum` (Ctrl-C: SIGINT).
    """
    blocked = [(backend, c) for backend in session.backends for c in session.by_backend.get(backend.name, [])
               if c.action == BLOCKED]
    if blocked:
        raise Refused("; ".join(backend.why_blocked(c) for backend, c in blocked))
    done: list[tuple[Backend, list[Change]]] = []
    todo = [(backend, [c for c in session.by_backend.get(backend.name, []) if prune or c.action != DELETE])
            for backend in session.backends]
    todo = [(backend, changes) for backend, changes in todo if changes]
    if session.run is not None and todo:
        session.run.started([c for _, changes in todo for c in changes])
    signals = session.run.signals if session.run is not None else Signals()
    with signals:  # a Run has them already; apply() without one handles them for itself
        try:
            for backend, changes in todo:  # every check that needs no write, before the first write
                backend.prepare(changes)
            for backend, changes in todo:
                try:
                    backend.apply(changes, force=force)
                finally:  # a backend that raised reports what it had (or may have) applied in `applied`
                    done.append((backend, list(getattr(backend, "applied", changes))))
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 -- every failure must roll back
            signals.deferred = True  # a second signal must not stop the rollback
            error = _rolled_back(done, _describe(exc))
            error.signum = signals.signum or (signal.SIGINT if isinstance(exc, KeyboardInterrupt) else 0)
            raise error from None
    return [c for _, changes in done for c in changes]


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread by the handler `Signals` installs: rolled back like Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    def __str__(self) -> str:
        return f"terminated by {signal.Signals(self.signum).name}"


class Signals:
    """SIGTERM and SIGHUP raise Terminated while this is entered (re-entrant; main thread only, where
    Python runs handlers). Once `deferred` is set -- rolling back, recording -- a signal is only noted
    in `signum`: the work in progress finishes, and the caller exits 128 + signum afterwards."""

    CAUGHT = (signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.signum = 0
        self.deferred = False
        self._depth = 0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "Signals":
        self._depth += 1
        if self._depth == 1 and threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.CAUGHT}
        return self

    def __exit__(self, *_exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            for s, previous in self._previous.items():
                signal.signal(s, previous)  # type: ignore[arg-type]
            self._previous = {}

    def _handle(self, signum: int, _frame: object) -> None:
        if self.signum or self.deferred:
            self.signum = self.signum or signum
            return
        self.signum = signum
        raise Terminated(signum)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, Terminated):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, ObsgenError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}" if str(exc) else f"unexpected {type(exc).__name__}"


def _rolled_back(done: list[tuple[Backend, list[Change]]], error: str) -> ApplyError:
    restored, failed = [], []
    for backend, changes in reversed(done):
        if not changes:
            continue  # the backend that failed before changing anything
        try:
            backend.restore(changes)
            restored.append(backend.name)
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 -- go on restoring the others
            failed.append(f"{backend.name}: {_describe(exc)}")
    applied = [c for _, changes in done for c in changes]
    note = f"; restored {', '.join(restored)} to the state before this apply" if restored else ""
    if failed:
        note += f"; COULD NOT RESTORE {'; '.join(failed)} -- run `obsgen diff` to see what is left"
    return ApplyError(f"{error}{note}", applied, restored=not failed)


@dataclass
class Run:
    """One apply or dry run as the ledger records it, whatever its end: use as a context manager.

    Set `result` on the way out of a normal end (ok, no-changes, planned, declined) and `applied` after
    a successful apply; an exception records itself (an ApplyError as rolled-back, could-not-restore or
    failed; a refusal such as a held lock or a missing confirmation as refused; anything else as
    failed). Nothing is recorded when the spec did not compile: there is no environment of a spec to
    record it against. `apply` records the run as started before its first write (`started`), and the
    end completes that entry. While it lasts, SIGTERM and SIGHUP raise Terminated (see `Signals`).

    Under the lock, the applies the ledger has as started and never ended (`leftovers`) are known to be
    dead: `notes` names them, and an apply's end marks them interrupted, superseded by its own entry.
    The ledger failing at the end never replaces the run's own outcome: it is kept in `ledger_problem`
    for the caller to report beside it.
    """

    env: str
    mode: str  # apply | dry-run
    digest: str = ""
    session: Session | None = None
    applied: list[Change] = field(default_factory=list)
    result: str = ""
    entry: int | None = None  # the ledger entry `started` wrote
    targets: dict[str, str] = field(default_factory=dict)  # backend -> the URL it is reached at
    leftovers: list[ledger.Entry] = field(default_factory=list)
    ledger_problem: str = ""
    signals: Signals = field(default_factory=Signals)

    _locks: ExitStack = field(default_factory=ExitStack)

    def __enter__(self) -> "Run":
        state.checked_env(self.env)
        ledger.ensure(state.ledger_path())  # an unwritable state directory stops the run before any change
        self.signals.__enter__()
        return self

    def compiled(self, digest: str) -> None:
        self.digest = digest
        self._locks.enter_context(state.env_lock(self.env))
        # under the lock no other apply to this environment runs: every entry still started is dead
        self.leftovers = [replace(e, result="interrupted") for e in ledger.unfinished(state.ledger_path(), self.env)]

    @property
    def notes(self) -> list[str]:
        """What the applies the ledger has as never finished planned; the plan shows what they left."""
        repairs = "this apply repairs it" if self.mode == "apply" else "an apply repairs it"
        return [leftover_note(e, repairs) for e in self.leftovers]

    def started(self, changes: list[Change]) -> None:
        """Write the started entry; a signal meanwhile is held until `entry` is known, then raised."""
        plan_ = self.session.plan if self.session else None
        self.signals.deferred = True
        try:
            self.entry = ledger.start(state.ledger_path(), env=self.env, spec_sha256=self.digest,
                                      summary=plan_.summary() if plan_ else "", planned=[c.title for c in changes],
                                      targets=self.targets)
        finally:
            self.signals.deferred = False
        if self.signals.signum:
            raise Terminated(self.signals.signum)

    def __exit__(self, kind: type | None, exc: BaseException | None, _tb: object) -> None:
        self.signals.deferred = True  # the ledger entry is written whatever arrives now
        try:
            self._record(exc)
        finally:
            self._locks.close()
            self.signals.__exit__()

    def _record(self, exc: BaseException | None) -> None:
        if not self.digest:
            return
        error = ""
        if exc is not None:
            error = _describe(exc)
            if isinstance(exc, ApplyError):
                self.applied, self.result = exc.applied, exc.result
            else:
                self.result = "refused" if isinstance(exc, state.Refused) else "failed"
        self.result = self.result or "failed"
        plan_ = self.session.plan if self.session else None
        path = state.ledger_path()
        try:
            entry = ledger.record(path, env=self.env, spec_sha256=self.digest, mode=self.mode,
                                  summary=plan_.summary() if plan_ else "(no plan: the backends were not read)",
                                  planned=[c.title for c in plan_.changes] if plan_ else [],
                                  changes=[c.title for c in self.applied], result=self.result, error=error,
                                  entry=self.entry, targets=self.targets)
            if self.mode == "apply" and self.leftovers:
                ledger.supersede(path, [e.id for e in self.leftovers], entry, self.result)
        except ObsgenError as problem:
            self.ledger_problem = str(problem)


SHOWN = 8  # planned changes a note names before "and N more"


def leftover_note(entry: ledger.Entry, repairs: str) -> str:
    """One line about an apply the ledger has as started and not ended."""
    titles = ", ".join(entry.planned[:SHOWN]) + (f" and {len(entry.planned) - SHOWN} more"
                                                 if len(entry.planned) > SHOWN else "")
    count = f"{len(entry.planned)} change{'' if len(entry.planned) == 1 else 's'}"
    if entry.result == "started":  # its process may still run (another host, or alive here)
        return (f"an apply to {entry.env} started {entry.at} by {entry.who} (ledger entry {entry.id}, pid "
                f"{entry.pid} on {entry.host}) has not recorded its end: it is running, or was killed; it planned "
                f"{count}: {titles}")
    return (f"the apply to {entry.env} started {entry.at} by {entry.who} (ledger entry {entry.id}) never finished "
            f"(killed?); it planned {count}: {titles}; what it left is in the plan below; {repairs}")


def unfinished_notes(env: str) -> list[str]:
    """For diff: the applies to `env` that never recorded their end (a ledger that cannot be read is a note too)."""
    try:
        return [leftover_note(e, "an apply repairs it") for e in ledger.unfinished(state.ledger_path(), env)]
    except ObsgenError as exc:
        return [f"{exc}: cannot tell whether an earlier apply was interrupted"]
