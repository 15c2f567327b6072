"""Vanilla Alertmanager: its config file, reload, confirm through /api/v2/status, restore on refusal.

By default (`owns: subtree`) obsgen owns only its part of the config (see
obsgen.compile.amtree): it reads the config file, compares its route, receivers and
inhibit rules with the generated subtree, and writes back the same document
with just those parts changed -- other teams' routes, receivers, inhibit
rules, templates, time intervals, settings and comments stay as they are.
Before writing, the merged file is checked with `amtool check-config` when
amtool is installed; after the reload, /api/v2/status must show obsgen's parts,
else the previous file is put back -- only while the file still holds exactly what
obsgen wrote (someone else's later edit is kept and reported). The file is shared:
its lock (by real path, obsgen.deploy.state.target_lock) covers each read-modify-write,
whichever environment applies, and a rewrite keeps its owner, group, mode and symlink.

With `owns: whole` obsgen writes the generated standalone config over the
file. Alertmanager re-marshals the config it reports (defaults filled in,
matchers sorted, durations re-written, inline secrets masked), so that mode
compares the running config on the fields obsgen generates.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from obsgen.compile import amtree
from obsgen.compile import conventions as c
from obsgen.deploy.access import writable_path
from obsgen.model.artifact import Artifact
from obsgen.deploy import state
from obsgen.deploy.backends import am_file, am_parts, am_shape, am_yaml
from obsgen.deploy.backends.base import Backend, BackendError, ConflictError, connect
from obsgen.deploy.plan import Change, Obj
from obsgen.output.files import keep_problem, replace_shared
from obsgen.model import Environment, Model

NAME = "alertmanager"
KEY = "alertmanager.yaml"
MAX_CONFIG = 16 * 2**20  # bytes: a shared config is kilobytes; more is a mistake or an attack
WHOLE = "whole"


def generated_config(env: Environment, artifacts: list[Artifact]) -> tuple[Any, bytes] | None:
    """The environment's standalone config in comparable form, and its bytes; None when the build has none."""
    import yaml

    for artifact in artifacts:
        if artifact.path == f"{env.name}/alertmanager/{KEY}":
            return amtree.normal(yaml.safe_load(artifact.content)), artifact.content
    return None


def whole_body(live: dict[str, Any], shape: Any) -> Any:
    """A whole live config compared on the fields the generated one has (all of it when there is none)."""
    live = amtree.normal(live)
    return amtree.normal(amtree.project(live, shape)) if shape is not None else live


class AlertmanagerBackend(Backend):
    name = NAME

    def __init__(self, model: Model, env: Environment, url: str | None = None, config_file: str | None = None):
        spec, self.http = connect(env, NAME, "Alertmanager", url, mode="alertmanager")
        self.env, self.model, self.whole = env, model, spec.owns == WHOLE
        self.owner = c.am_owner(model, env)
        self.position = env.alertmanager_placement[0]
        self.config_file = Path(config_file or writable_path(spec.config_file, f"Alertmanager ({env.name})", "config_file",
                                                             "--alertmanager-config-file"))
        self.shape: Any = None
        self.standalone: dict[str, Any] = {}
        self.read_bytes: bytes | None = None  # the file as `read` saw it (None: there was none)
        self.indent: tuple[int, int, int] | None = None  # the file's block indentation, kept on write
        self.previous: bytes | None = None
        self.written: bytes | None = None  # what obsgen's own write put in the file (None: nothing yet)
        self.existed = True
        self.applied: list[Change] = []
        self.prepared: tuple[tuple[Change, ...], bytes] | None = None  # changes -> the checked merged file
        self.notes: tuple[str, ...] = ()

    # ---- desired and live ------------------------------------------------------------------
    def desired(self, artifacts: list[Artifact]) -> list[Obj]:
        found = generated_config(self.env, artifacts)
        if found is None:
            return []
        self.shape, content = found
        if self.whole:
            return [Obj(NAME, "alertmanager-config", KEY, self.shape, payload=content)]
        self.standalone = am_parts.generated(self.env.name, artifacts, am_parts.STANDALONE)
        return am_parts.desired_objs(am_parts.generated(self.env.name, artifacts, am_parts.SUBTREE), self.owner)

    def read(self, desired: list[Obj]) -> list[Obj]:
        if self.whole:
            return [Obj(NAME, "alertmanager-config", KEY, whole_body(self._running(), self.shape), payload=None)]
        self.read_bytes = self._file_bytes()
        document = self._parse(self.read_bytes)
        objs = am_parts.live_objs(self._parts(document), self.owner, self.position)
        shapes = {o.ident: o.body for o in desired}
        objs = [am_parts.masked(o, shapes) for o in objs]  # no inline secret in the file reaches a diff
        self.notes = self._sharing_notes(document) + self._bytes_note(desired, objs)
        stale = am_parts.unloaded(objs, self._running(), self.owner, self.position)
        if stale and self.read_bytes is not None:
            self.notes += (f"Alertmanager ({self.env.name}) is not running what {self.config_file} holds for "
                           f"obsgen ({', '.join(stale)}): the file changed since the last reload, or that reload "
                           f"failed; apply writes and reloads it",)
            objs = [Obj(o.backend, o.kind, o.key, {**o.body, "loaded by Alertmanager": False})
                    if o.kind == am_parts.ROUTE else o for o in objs]
        return objs

    def _scrub(self, text: str) -> str:
        """A tool's or server's text with every inline secret of the file (anyone's) hidden: Alertmanager and
        amtool quote a URL they cannot parse, and the error line goes to the terminal and the ledger."""
        from ruamel.yaml.error import YAMLError

        from obsgen.deploy.normalise import scrub, secret_values

        found: set[str] = set()
        for content in (self.read_bytes, self.previous, self.prepared[1] if self.prepared else None):
            try:
                found |= secret_values(am_yaml.yaml().load(content.decode("utf-8", errors="replace"))) \
                    if content else set()
            except YAMLError:  # a file that does not parse has no secrets obsgen can name
                pass
        return scrub(text, found)

    def _bytes_note(self, desired: list[Obj], live: list[Obj]) -> tuple[str, ...]:
        """`diff` says beforehand when `apply` would stop because it cannot keep other teams' bytes."""
        from obsgen.deploy.plan import BLOCKED, plan

        changes = [ch for ch in plan(desired, live).changes if ch.action != BLOCKED]
        if not changes or not self.read_bytes or not self.read_bytes.strip():
            return ()
        kept = am_parts.render(self.read_bytes, self._parse(self.read_bytes), changes, self.owner, self.standalone,
                               self.indent)
        why = self._scrub(am_parts.rewrites(kept, self.config_file))
        return (f"Alertmanager ({self.env.name}): apply would stop: {why}",) if why else ()

    def _sharing_notes(self, document: Any) -> tuple[str, ...]:
        """Other teams' parts that overlap obsgen's (left as they are), and routes obsgen's would hide."""
        from obsgen.deploy.backends import am_notes

        where = f"{self.env.name}'s alertmanager backend"
        found = [f"{self.config_file}: {n}" for n in amtree.overlaps(document, self.owner)]
        found += [f"{self.config_file}: {n}" for n in am_notes.shadowing(
            document, self.owner, self.position, self.env.alertmanager_placement[1],
            am_notes.alert_labels(self.model, self.env, self.owner), where)]
        return tuple(f"Alertmanager ({self.env.name}): {n}" for n in found)

    def _running(self) -> dict[str, Any]:
        """The config Alertmanager runs, from its status. An answer without one is an error, never an
        empty config (that would plan to create what runs already, or pass a broken server as fine)."""
        response = self.http.request("GET", "/api/v2/status")
        status = self.http.json(response, dict)
        if "config" not in status:
            raise self.http.malformed(response, "no `config`")
        config = self.http.expect(response, status["config"], dict, "its `config`")
        if "original" not in config:
            raise self.http.malformed(response, "no `config.original`")
        return config_in(self.http, response, config["original"], "`config.original`")

    def _file_bytes(self) -> bytes | None:
        """The config file's bytes (None: there is none). Only a regular file of at most MAX_CONFIG bytes:
        a FIFO would hang the read, /dev/zero fill memory -- and obsgen would later replace the device."""
        import stat

        try:
            fd = os.open(self.config_file, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens at once, then is refused
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BackendError(f"Alertmanager ({self.env.name}): cannot read {self.config_file}: "
                               f"{exc.strerror}") from None
        with os.fdopen(fd, "rb") as fh:
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise BackendError(f"Alertmanager ({self.env.name}): cannot read {self.config_file}: it is not "
                                       f"a regular file")
                content = fh.read(MAX_CONFIG + 1)
            except OSError as exc:
                raise BackendError(f"Alertmanager ({self.env.name}): cannot read {self.config_file}: "
                                   f"{exc.strerror}") from None
        if len(content) > MAX_CONFIG:
            raise BackendError(f"Alertmanager ({self.env.name}): cannot read {self.config_file}: it is larger than "
                               f"{MAX_CONFIG // 2**20} MiB, which no Alertmanager config is")
        return content

    def _parse(self, content: bytes | None) -> Any:
        """The config file as a comment-keeping document (an empty mapping when there is none)."""
        from ruamel.yaml.error import YAMLError

        if not content or not content.strip():
            return {}
        text = content.decode("utf-8", errors="replace")
        self.indent = am_yaml.indentation(text)
        try:
            document = am_yaml.yaml().load(text)
        except YAMLError as exc:
            raise BackendError(f"Alertmanager ({self.env.name}): {self.config_file} is not valid YAML "
                               f"({str(exc).splitlines()[0]}); fix it before obsgen merges into it") from None
        if document is None:
            return {}
        if not isinstance(document, dict):
            raise BackendError(f"Alertmanager ({self.env.name}): {self.config_file} is not a YAML mapping")
        wrong = am_shape.problem(document)
        if wrong:
            raise BackendError(f"Alertmanager ({self.env.name}): {self.config_file} is not a valid Alertmanager "
                               f"config ({wrong}); fix it before obsgen merges into it")
        return document

    def _parts(self, config: Any) -> amtree.Parts:
        try:
            return am_parts.extract(config, self.owner)
        except amtree.OwnershipError as exc:
            raise BackendError(f"Alertmanager ({self.env.name}): {self.config_file}: {exc}") from None

    # ---- apply and restore -----------------------------------------------------------------
    def _lock(self) -> Any:
        """The shared file's lock (by its real path): dev and staging writing one file exclude each other."""
        return state.target_lock(state.file_target(self.config_file), f"the Alertmanager config {self.config_file}",
                                 f"obsgen apply --env {self.env.name}")

    def apply(self, changes: list[Change], *, force: bool = False) -> list[Change]:
        self.applied = []
        if not changes:
            return []
        with self._lock():
            return self._apply(changes)

    def _apply(self, changes: list[Change]) -> list[Change]:
        self.written = None
        self.previous = self._file_bytes()
        self.existed = self.previous is not None
        if self.whole:
            content = changes[0].obj.payload
        else:
            if self.previous != self.read_bytes:
                raise ConflictError(f"Alertmanager ({self.env.name}): {self.config_file} changed since obsgen "
                                    f"read it; nothing was written, run diff again")
            self.prepare(changes)
            content = self.prepared[1]  # type: ignore[index]
        self.applied = list(changes)  # from the write on, the file may have changed
        self._write_and_reload(content, "the new config")
        if not self.whole:
            self._confirm(changes)
        return list(changes)

    def prepare(self, changes: list[Change]) -> None:
        """The merged file for these changes (from the file as `read` saw it), checked by amtool: run before
        any backend writes, so a config amtool rejects stops the whole apply with nothing changed."""
        self._keepable()
        if self.whole or (self.prepared is not None and self.prepared[0] == tuple(changes)):
            return
        kept = am_parts.render(self.read_bytes, self._parse(self.read_bytes), changes, self.owner, self.standalone,
                               self.indent)
        why = self._scrub(am_parts.rewrites(kept, self.config_file))  # the lines it names may hold a secret
        if why:  # every byte outside obsgen's part stays, or nothing is written
            raise BackendError(f"Alertmanager ({self.env.name}): {why}; nothing was written")
        content = kept.content
        self._check(content)
        self.prepared = (tuple(changes), content)

    def _keepable(self) -> None:
        """Refuse, before any backend writes, a file whose owner or group this user could not keep."""
        problem = keep_problem(self.config_file)
        if problem:
            raise BackendError(f"Alertmanager ({self.env.name}): obsgen will not rewrite {self.config_file}: "
                               f"{problem}")

    def _check(self, content: bytes) -> None:
        """`amtool check-config` on the merged file.

        The copy amtool reads lives in a private temporary directory, never beside the real file: removed
        on every exit (an error, Ctrl-C, SIGTERM raised as an exception), and a SIGKILL leaves it in the
        system's temporary directory, where nobody mistakes it for a config. Relative `templates` globs
        are resolved against the real file's directory first, as Alertmanager resolves them, so the
        organisation's template files are still checked."""
        amtool = shutil.which("amtool")
        if not amtool:
            return
        import tempfile

        checked = am_file.absolute_templates(content, Path(os.path.abspath(self.config_file.parent)), self.indent)
        with tempfile.TemporaryDirectory(prefix="obsgen-amtool-check.") as private:
            tmp = os.path.join(private, self.config_file.name)
            try:
                with open(tmp, "xb") as fh:
                    fh.write(checked)
                proc = subprocess.run([amtool, "check-config", tmp], capture_output=True, text=True, timeout=60)
            except OSError as exc:
                raise BackendError(f"Alertmanager ({self.env.name}): cannot check the merged config for "
                                   f"{self.config_file}: {exc.strerror}") from None
            except subprocess.TimeoutExpired:
                raise BackendError(f"Alertmanager ({self.env.name}): amtool check-config did not finish within "
                                   f"60 s; nothing was written") from None
        if proc.returncode != 0:
            detail = " ".join(self._scrub((proc.stdout + proc.stderr).replace(tmp, str(self.config_file))).split())
            detail = detail[-400:]  # cut after scrubbing: a cut secret would no longer be recognised
            raise BackendError(f"Alertmanager ({self.env.name}): amtool check-config rejects the merged config, "
                               f"so nothing was written: {detail}")

    def _confirm(self, changes: list[Change]) -> None:
        running = {o.ident: o for o in
                   am_parts.live_objs(self._parts(self._running()), self.owner, self.position)}
        missing = [f"{c.obj.kind} {c.obj.key}" for c in changes if c.after is not None and
                   (c.after.ident not in running or
                    amtree.project(running[c.after.ident].body, c.after.body) != c.after.body)]
        if missing:
            raise BackendError(f"Alertmanager ({self.env.name}) reloaded but does not run obsgen's "
                               f"{', '.join(missing)}: is it started with --config.file={self.config_file}?")

    def restore(self, applied: list[Change]) -> None:
        """Put back the file as it was before obsgen's write -- only while it still holds exactly what
        obsgen wrote: an edit someone made since (another team, an apply to another environment) is
        theirs, and is left as it is and reported, never erased."""
        if not applied or self.written is None:
            return  # obsgen's write never happened: the file is as it was
        with self._lock():
            current = self._file_bytes()
            if current == self.previous:  # already back (or put back by someone): let Alertmanager load it
                self._reload("the previous config on restore")
                return
            if current != self.written:
                raise BackendError(f"Alertmanager ({self.env.name}): {am_file.changed(self.written, current)} since "
                                   f"obsgen wrote it (another writer?); left as it is: {self.config_file}")
            if self.existed and self.previous is not None:
                self._write_and_reload(self.previous, "the previous config on restore")
            else:
                try:
                    self.config_file.unlink()
                except FileNotFoundError:
                    pass
            self.written = None

    def _write_and_reload(self, content: bytes, what: str) -> None:
        try:
            replace_shared(self.config_file, content)
        except OSError as exc:
            raise BackendError(f"Alertmanager ({self.env.name}): cannot write {self.config_file}: "
                               f"{exc.strerror}") from None
        self.written = content
        self._reload(what)

    def _reload(self, what: str) -> None:
        response = self.http.request("POST", "/-/reload", ok=(200, 403, 500))
        if response.status_code == 403:
            raise BackendError(f"Alertmanager ({self.env.name}) refused /-/reload (403): start it with "
                               f"--web.enable-lifecycle, or let obsgen write the file and reload it yourself")
        if response.status_code != 200:
            raise BackendError(f"Alertmanager ({self.env.name}) refused {what}: "
                               f"{self._scrub(response.text).strip()[:300]}")


def config_in(http: Any, response: Any, text: Any, what: str) -> dict[str, Any]:
    """An Alertmanager config held as YAML text inside an API answer, checked to be a config: a running
    Alertmanager always has one, so an empty text is as malformed as a number."""
    import yaml

    text = http.expect(response, text, str, f"its {what}")
    if not text.strip():
        raise http.malformed(response, f"an empty {what}")
    try:
        live = yaml.safe_load(text)
    except yaml.YAMLError:
        raise http.malformed(response, f"a {what} that is not YAML") from None
    live = http.expect(response, live, dict, f"its {what}")
    wrong = am_shape.problem(live)
    if wrong:
        raise http.malformed(response, f"a {what} that is no Alertmanager config ({wrong})")
    return live
