"""Vanilla Prometheus: obsgen's rule files in a shared directory, reload, confirm, restore.

Ownership (see rule_files): obsgen's files in `rules_dir` are those named `<service>-<env>-…` that
carry the marker line `# obsgen: service=<service> env=<env>`. No other file is read, written or
deleted; a file with the name obsgen would write but without its marker stops diff and apply.

Live groups are those /api/v1/rules lists from a file whose *name* is one of obsgen's files in
`rules_dir`, whatever directory the server reports (it may mount the directory elsewhere). Groups
in obsgen's files that the server has not loaded are live too, so that pruning sees them.

Plans are per group; writes are per file. A written file holds the spec's groups in the spec's
order, then every group already in the file that the spec no longer has, unchanged, unless this
apply deletes it (`--prune`); a file left with no group is deleted. After the writes, POST
/-/reload, then wait (at most CONFIRM_TIMEOUT, its reads included) until /api/v1/rules lists
every group of every written file from that file, as written, and none of the deleted ones; then
check no rule of them is in error and evaluate each written rule once as an instant query (see
prometheus_health: a rule can load and still fail at every evaluation). On any failure the files this
apply wrote or deleted are put back and Prometheus is reloaded.

Truthful reloads: before the first write, a Prometheus whose last reload failed (its runtimeinfo says so)
is reloaded once to learn why; if it still fails, the apply stops with that reason and nothing changed. A
reload that fails is explained with the rule files `promtool` rejects, each named as obsgen's or not, and
when it fails the same with obsgen's files put back -- another team's broken file, a broken main config --
the cause is said to be not obsgen's and the rollback is a rollback: Prometheus kept running the rules it had.
"""
from __future__ import annotations

import time
from pathlib import Path, PurePosixPath
from typing import Any

from obsgen.deploy.access import writable_path
from obsgen.model.artifact import Artifact
from obsgen.deploy import normalise
from obsgen.deploy.backends import prometheus_health as health
from obsgen.deploy.backends import rule_files
from obsgen.deploy.backends.base import Backend, BackendError, connect
from obsgen.deploy.plan import DELETE, Change, Obj
from obsgen.output.files import atomic_write
from obsgen.deploy.http import Deadline, waiting
from obsgen.model import Environment, Model

NAME = "prometheus"
CONFIRM_TIMEOUT = 10.0  # seconds after a reload for every written group to be listed by /api/v1/rules
CONFIRM_POLL = 0.2

class PrometheusBackend(Backend):
    name = NAME

    def __init__(self, model: Model, env: Environment, url: str | None = None, rules_dir: str | None = None):
        spec, self.http = connect(env, NAME, "Prometheus", url, mode="prometheus")
        self.env = env
        self.label = f"Prometheus ({env.name})"
        self.rules_dir = Path(rules_dir or writable_path(spec.rules_dir, self.label, "rules_dir", "--prometheus-rules-dir",
                                                         directory=True))
        self.prefix = rule_files.file_prefix(model.service.name, env.name)
        self.marker = rule_files.marker(model.service.name, env.name)
        self.files: dict[str, tuple[bytes, list[dict[str, Any]]]] = {}  # desired: name -> (content, groups)
        self.applied: list[Change] = []
        self.previous: dict[str, bytes | None] = {}  # files this apply wrote or deleted, as they were
        self.reloaded = False  # this apply asked Prometheus to load its files
        self.loaded_new = False  # ... and Prometheus said it did
        self.refused_anyway = False  # restoring, Prometheus refused the files as they were before, too

    # --- desired and live ------------------------------------------------------------------------

    def desired(self, artifacts: list[Artifact]) -> list[Obj]:
        objs = []
        for artifact in artifacts:
            if artifact.path.startswith(f"{self.env.name}/prometheus/"):
                name = self.prefix + artifact.path.rsplit("/", 1)[1]
                groups = rule_files.groups_of(artifact.content)
                self.files[name] = (rule_files.with_marker(artifact.content, self.marker), groups)
                objs += [Obj(NAME, "rule-group", f"{name}/{g['name']}", normalise.rule_group(g),
                             payload=(name, g["name"])) for g in groups]
        return objs

    def read(self, desired: list[Obj]) -> list[Obj]:
        owned = {}
        for name, content in self._local().items():
            if rule_files.is_owned(content, self.marker):
                owned[name] = self._groups(name, content)
            elif name in self.files:
                raise self._foreign(name)
        self.notes = tuple(self._legacy())
        listed = self._listed(set(owned))
        objs = []
        for name in sorted(owned):
            loaded = listed.get(name, {})
            objs += [Obj(NAME, "rule-group", f"{name}/{group}", self._live_body(g), payload=(name, group))
                     for group, g in loaded.items()]
            wanted = {g["name"] for g in self.files.get(name, (b"", []))[1]}
            objs += [Obj(NAME, "rule-group", f"{name}/{g['name']}", self._disk_body(name, g),
                         payload=(name, g["name"]))
                     for g in owned[name] if g["name"] not in loaded and g["name"] not in wanted]
        return objs

    def _legacy(self) -> list[str]:
        """Files obsgen 0.2 deployed here under the generated name (no prefix, no marker): still loaded by
        Prometheus beside the new ones, so their rules would run twice; obsgen cannot tell whose they are."""
        notes = []
        for name in sorted(self.files):
            old = self.rules_dir / name.removeprefix(self.prefix)
            try:
                legacy = old.is_file() and old.read_bytes().startswith(b"# Code generated by obsgen v0.")
            except OSError:
                continue
            if legacy and not rule_files.is_owned(old.read_bytes(), self.marker):
                notes.append(f"{self.label}: {old} looks like a rule file obsgen 0.2 deployed (obsgen now writes "
                             f"{self.rules_dir / name}); if it is this environment's, delete it once the new "
                             f"file is applied, or its rules are evaluated twice")
        return notes

    def _local(self) -> dict[str, bytes]:
        """The files in rules_dir named with this service's and environment's prefix, with their bytes."""
        try:
            paths = sorted(p for p in self.rules_dir.iterdir() if p.name.startswith(self.prefix) and p.is_file())
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise BackendError(f"{self.label}: cannot list rules_dir {self.rules_dir}: {exc.strerror}") from None
        found = {}
        for path in paths:
            content = self._read(path.name)
            if content is not None:
                found[path.name] = content
        return found

    def _read(self, name: str) -> bytes | None:
        path = self.rules_dir / name
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BackendError(f"{self.label}: cannot read {path}: {exc.strerror}") from None

    def _groups(self, name: str, content: bytes) -> list[dict[str, Any]]:
        try:
            return rule_files.groups_of(content)
        except ValueError as exc:
            raise BackendError(f"{self.label}: {self.rules_dir / name} (obsgen's) {exc}; fix or remove it") from None

    def _foreign(self, name: str) -> BackendError:
        return BackendError(f"{self.label}: {self.rules_dir / name} is not obsgen's for this service and "
                            f"environment (no `{self.marker}` line at its top), so obsgen will not overwrite "
                            f"it; move it out of {self.rules_dir}")

    def _disk_body(self, name: str, group: dict[str, Any]) -> Any:
        try:
            return normalise.rule_group(group)
        except (KeyError, TypeError, AttributeError, ValueError):
            raise BackendError(f"{self.label}: group {group['name']} in {self.rules_dir / name} (obsgen's) is "
                               f"not a valid rule group; fix or remove it") from None

    @staticmethod
    def _live_body(group: dict[str, Any]) -> Any:
        rules = [{"alert" if r["type"] == "alerting" else "record": r["name"], "expr": r["query"],
                  "for": r.get("duration") or 0, "labels": r.get("labels") or {},
                  "annotations": r.get("annotations") or {}} for r in group["rules"]]
        return normalise.rule_group({"name": group["name"], "interval": group.get("interval") or 0, "rules": rules})

    def _listed(self, names: set[str], deadline: Deadline | None = None) -> dict[str, dict[str, dict[str, Any]]]:
        """The groups /api/v1/rules lists from files with these names: {file name: {group name: group}}."""
        response = self.http.request("GET", "/api/v1/rules", deadline=deadline)
        data = self.http.expect(response, self.http.json(response, dict).get("data"), dict, "its `data`")
        groups = self.http.expect(response, data.get("groups", []), list, "`data.groups`")
        paths: dict[str, set[str]] = {}
        chosen: dict[str, list[dict[str, Any]]] = {}
        for group in groups:
            self._check_group(response, group)
            name = PurePosixPath(group["file"]).name
            if name in names:
                paths.setdefault(name, set()).add(group["file"])
                chosen.setdefault(name, []).append(group)
        found = {}
        for name, groups_of_name in chosen.items():
            where = self._where(name, paths[name])
            found[name] = {g["name"]: g for g in groups_of_name if g["file"] == where}
        return found

    def _check_group(self, response: Any, group: Any) -> None:
        expect = self.http.expect
        expect(response, group, dict, "a group in `data.groups`")
        for key in ("name", "file"):
            expect(response, group.get(key), str, f"the `{key}` of a group")
        expect(response, group.get("interval", 0), (int, float), f"the interval of group {group['name']}")
        for rule in expect(response, group.get("rules"), list, f"the rules of group {group['name']}"):
            expect(response, rule, dict, f"a rule of group {group['name']}")
            for key in ("type", "name", "query"):
                expect(response, rule.get(key), str, f"the `{key}` of a rule in group {group['name']}")
            expect(response, rule.get("duration", 0), (int, float), f"the duration of a rule in {group['name']}")
            for key in ("labels", "annotations"):
                if rule.get(key) is not None:
                    expect(response, rule[key], dict, f"the `{key}` of a rule in group {group['name']}")

    def _where(self, name: str, paths: set[str]) -> str:
        """The one path the server loads `name` from; when it loads that name from several
        directories, the one that is `rules_dir` here."""
        if len(paths) == 1:
            return next(iter(paths))
        here = (self.rules_dir / name).resolve()
        same = [p for p in paths if Path(p).is_absolute() and Path(p).resolve() == here]
        if len(same) == 1:
            return same[0]
        raise BackendError(f"{self.label} loads {name} from several places ({', '.join(sorted(paths))}); obsgen "
                           f"cannot tell which one is {self.rules_dir}")

    # --- writes ----------------------------------------------------------------------------------

    def prepare(self, changes: list[Change]) -> None:
        """Stop before any write when Prometheus cannot reload now: its last reload failed, and a reload
        (of what it has on disk, before obsgen changed anything) still fails; its reason is named."""
        if health.last_reload_ok(self.http) is not False:
            return
        status, reason = health.reload(self.http)
        if status == 200:
            return  # fixed since: Prometheus reloads again
        why = health.cause(reason, self.rules_dir, self.marker) if status == 500 else \
            f"(POST /-/reload answered HTTP {status}: {reason})"
        raise BackendError(f"{self.label}: its last reload failed, and a reload still fails before obsgen has "
                           f"changed anything: {why}; obsgen writes no rules until Prometheus can reload (it "
                           f"keeps running the rules it had)")

    def apply(self, changes: list[Change], *, force: bool = False) -> list[Change]:
        self.applied, self.previous, self.reloaded = [], {}, False
        self.loaded_new = self.refused_anyway = False
        self.after = ()
        deleted: dict[str, set[str]] = {}
        by_file: dict[str, list[Change]] = {}
        for change in changes:
            name, group = change.obj.payload
            by_file.setdefault(name, []).append(change)
            if change.action == DELETE:
                deleted.setdefault(name, set()).add(group)
        try:
            writes = {name: self._next(name, deleted.get(name, set())) for name in sorted(by_file)}
            for name, (before, after, _) in writes.items():
                self.previous[name] = before
                self.applied += by_file[name]  # changed, or may have been, from here on
                if after != before:
                    self._write(name, after)
            seen = {(n, g): group.get("lastEvaluation") for n, groups in self._listed(set(writes)).items()
                    for g, group in groups.items()}  # to tell Prometheus's first evaluation after the reload
            self._reload()
            self._confirm({name: expected for name, (_, _, expected) in writes.items()}, deleted, seen)
        except BackendError as exc:
            try:
                self.restore(self.applied)
            except BackendError:
                raise exc from None  # `previous` is kept: the session's restore tries again and reports it
            if self.refused_anyway:
                raise BackendError(f"{exc}; it refuses the same with obsgen's files put back, so the cause is not "
                                   f"obsgen's change, and it keeps running the rules it had") from None
            raise
        return self.applied

    def _next(self, name: str, deleted: set[str]) -> tuple[bytes | None, bytes | None, dict[str, Any]]:
        """A file's bytes now, the bytes this apply writes (None: delete it), and the groups it must
        then list, by name: the desired body of a spec group, or None for a kept one (any body)."""
        before = self._read(name)
        if before is not None and not rule_files.is_owned(before, self.marker):
            raise self._foreign(name)
        on_disk = self._groups(name, before) if before is not None else []
        if name in self.files:
            content, spec_groups = self.files[name]
            top = rule_files.head(content)
        else:
            content, spec_groups, top = None, [], rule_files.head(before or b"")
        names = {g["name"] for g in spec_groups}
        kept = [g for g in on_disk if g["name"] not in names and g["name"] not in deleted]
        expected: dict[str, Any] = {g["name"]: normalise.rule_group(g) for g in spec_groups}
        expected.update({g["name"]: None for g in kept})
        if not expected:
            return before, None, expected
        if content is None or kept:
            content = rule_files.render_file(top, spec_groups + kept)
        return before, content, expected

    def _write(self, name: str, content: bytes | None) -> None:
        path = self.rules_dir / name
        try:
            if content is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write(path, content)
        except OSError as exc:
            verb = "delete" if content is None else "write"
            raise BackendError(f"{self.label}: cannot {verb} {path}: {exc.strerror}") from None

    def _reload(self) -> None:
        self.reloaded = True
        status, text = health.reload(self.http)
        if status == 403:
            self.reloaded = False  # refused before loading anything
            raise BackendError(f"{self.label} refused POST /-/reload (HTTP 403{': ' + text[:300] if text else ''}): "
                               f"start Prometheus with --web.enable-lifecycle so that obsgen can reload its "
                               f"rules")
        if status != 200:  # named now, while obsgen's files are still there for promtool to check
            raise BackendError(f"{self.label} refused the new rules: {health.cause(text, self.rules_dir, self.marker)}")
        self.loaded_new = True

    def _confirm(self, expected: dict[str, dict[str, Any]], deleted: dict[str, set[str]],
                 seen: dict[tuple[str, str], Any]) -> None:
        """Wait until every written group is listed from its file as written and every deleted one is gone:
        one deadline for the whole wait, the reads in it included. Then evaluate each written rule once,
        and wait (at most health.evaluation_wait) for Prometheus's own first evaluation of the groups."""
        deadline = Deadline.after(CONFIRM_TIMEOUT)
        with waiting(f"{self.label} to load the new rules", CONFIRM_TIMEOUT):
            listed = self._wait_for_rules(expected, deadline, deleted)
        written = {(n, g) for n, groups in expected.items() for g, body in groups.items() if body is not None}
        rules = [(g, r.get("alert") or r.get("record") or "?", str(r.get("expr", "")))
                 for n in sorted({n for n, _ in written}) for g_ in self.files.get(n, (b"", []))[1]
                 for g in [g_["name"]] if (n, g) in written for r in g_.get("rules") or []]
        errors = health.failing([listed[n][g] for n, g in sorted(written)])
        failed, slow = health.query_errors(self.http, rules)
        if errors or failed:
            raise BackendError(f"{self.label} loaded rules that fail when evaluated: "
                               f"{'; '.join(errors + failed)[:600]}")
        self._watch_evaluation(written, listed, seen, slow)

    def _watch_evaluation(self, written: set[tuple[str, str]], listed: dict[str, dict[str, dict[str, Any]]],
                          seen: dict[tuple[str, str], Any], slow: int) -> None:
        """Up to health.evaluation_wait seconds for Prometheus's first evaluation of every written group;
        a rule in error then fails the apply; groups still not evaluated are said so (in `after`)."""
        intervals = [float(listed[n][g].get("interval") or 0) for n, g in written]
        wait = health.evaluation_wait(intervals)
        deadline = Deadline.after(wait)
        while True:
            left = [(n, g) for n, g in sorted(written) if not health.evaluated(listed[n][g], seen.get((n, g)))]
            done = [listed[n][g] for n, g in written if (n, g) not in left]
            errors = health.failing(done)
            if errors:
                raise BackendError(f"{self.label} evaluated rules that fail: {'; '.join(errors)[:600]}")
            if not left or deadline.left() <= 0:
                break
            time.sleep(min(1.0, deadline.left()))
            listed = self._listed({n for n, _ in written}, Deadline.after(max(deadline.left(), 1.0)))
            if any(g not in listed.get(n, {}) for n, g in written):
                break  # changed under us since it was confirmed: say what was seen
        if left:
            every = [f"{i:g} s" for i in sorted({float(listed[n][g].get("interval") or 0) for n, g in left
                                                  if g in listed.get(n, {})})]
            waited = f"after {wait:g} s " if wait else ""
            unchecked = f" ({slow} did not finish within {health.QUERY_TIMEOUT} and are unchecked)" if slow else ""
            self.after = (f"{self.label}: {len(left)} of the {len(written)} rule groups written not yet evaluated by "
                          f"Prometheus {waited}(they run every {', '.join(every)}); each of their rules was "
                          f"evaluated once as a query, without error{unchecked}",)

    def _wait_for_rules(self, expected: dict[str, dict[str, Any]], deadline: Deadline,
                        deleted: dict[str, set[str]]) -> dict[str, dict[str, dict[str, Any]]]:
        while True:
            listed = self._listed(set(expected), deadline)
            missing = [(n, g) for n, groups in expected.items() for g in groups if g not in listed.get(n, {})]
            differ = [(n, g) for n, groups in expected.items() for g, body in groups.items()
                      if body is not None and g in listed.get(n, {}) and self._live_body(listed[n][g]) != body]
            stale = [(n, g) for n, groups in deleted.items() for g in groups if g in listed.get(n, {})]
            if not (missing or differ or stale):
                return listed
            if deadline.left() > 0:
                time.sleep(min(CONFIRM_POLL, deadline.left()))
            if deadline.left() <= 0:  # the whole wait is spent: say what was still off at its last read
                raise BackendError(health.unconfirmed(self.label, self.rules_dir, CONFIRM_TIMEOUT, missing, differ, stale))

    def restore(self, applied: list[Change]) -> None:
        """Put back the files this apply wrote or deleted (those that differ now), then reload."""
        if not self.previous:
            return
        failed = []
        for name, before in sorted(self.previous.items()):
            try:
                if self._read(name) != before:
                    self._write(name, before)
            except BackendError as exc:
                failed.append(str(exc).removeprefix(f"{self.label}: "))
        if failed:
            raise BackendError(f"{self.label}: {'; '.join(failed)}")
        if self.reloaded:
            status, text = health.reload(self.http)
            if status != 200 and self.loaded_new:  # Prometheus runs the rules this apply wrote
                raise BackendError(f"{self.label}: the previous rule files are back in {self.rules_dir}, but the "
                                   f"reload answered HTTP {status}, so Prometheus still runs the rules this apply "
                                   f"wrote: {health.cause(text, self.rules_dir, self.marker)}")
            # not loaded: Prometheus never took the new rules and runs those it had, now back on disk
            self.refused_anyway = status != 200
        self.previous, self.reloaded = {}, False
