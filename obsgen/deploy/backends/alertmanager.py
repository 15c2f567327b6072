"""Vanilla Alertmanager: its config file, reload, confirm through /api/v2/status, restore on refusal.

By default (`owns: subtree`) obsgen owns only its part of the config (see
obsgen.amtree): it reads the config file, compares its route, receivers and
inhibit rules with the generated subtree, and writes back the same document
with just those parts changed -- other teams' routes, receivers, inhibit
rules, templates, time intervals, settings and comments stay as they are.
Before writing, the merged file is checked with `amtool check-config` when
amtool is installed; after the reload, /api/v2/status must show obsgen's parts,
else the previous file is put back.

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

from obsgen import amtree
from obsgen import conventions as c
from obsgen.artifact import Artifact
from obsgen.deploy.backends import am_parts, am_yaml
from obsgen.deploy.backends.base import Backend, BackendError, ConflictError, connect
from obsgen.deploy.plan import Change, Obj
from obsgen.files import atomic_write
from obsgen.model import Environment, Model

NAME = "alertmanager"
KEY = "alertmanager.yaml"
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
        self.env, self.whole = env, spec.owns == WHOLE
        self.owner = c.am_owner(model, env)
        self.position = env.alertmanager_placement[0]
        self.config_file = Path(config_file or spec.config_file)
        self.shape: Any = None
        self.standalone: dict[str, Any] = {}
        self.read_bytes: bytes | None = None  # the file as `read` saw it (None: there was none)
        self.indent: tuple[int, int, int] | None = None  # the file's block indentation, kept on write
        self.previous: bytes | None = None
        self.existed = True
        self.applied: list[Change] = []
        self.prepared: tuple[tuple[Change, ...], bytes] | None = None  # changes -> the checked merged file
        self.notes = ()

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
        objs = am_parts.live_objs(self._parts(self._parse(self.read_bytes)), self.owner, self.position)
        stale = am_parts.unloaded(objs, self._running(), self.owner, self.position)
        if stale and self.read_bytes is not None:
            self.notes = (f"Alertmanager ({self.env.name}) is not running what {self.config_file} holds for "
                          f"obsgen ({', '.join(stale)}): the file changed since the last reload, or that reload "
                          f"failed; apply writes and reloads it",)
            objs = [Obj(o.backend, o.kind, o.key, {**o.body, "loaded by Alertmanager": False})
                    if o.kind == am_parts.ROUTE else o for o in objs]
        return objs

    def _running(self) -> dict[str, Any]:
        response = self.http.request("GET", "/api/v2/status")
        status = self.http.json(response, dict)
        config = self.http.expect(response, status.get("config") or {}, dict, "its `config`")
        return config_in(self.http, response, config.get("original"), "`config.original`")

    def _file_bytes(self) -> bytes | None:
        try:
            return self.config_file.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BackendError(f"Alertmanager ({self.env.name}): cannot read {self.config_file}: "
                               f"{exc.strerror}") from None

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
        return document

    def _parts(self, config: Any) -> amtree.Parts:
        try:
            return am_parts.extract(config, self.owner)
        except amtree.OwnershipError as exc:
            raise BackendError(f"Alertmanager ({self.env.name}): {self.config_file}: {exc}") from None

    # ---- apply and restore -----------------------------------------------------------------
    def apply(self, changes: list[Change], *, force: bool = False) -> list[Change]:
        self.applied = []
        if not changes:
            return []
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
        if self.whole or (self.prepared is not None and self.prepared[0] == tuple(changes)):
            return
        document = self._parse(self.read_bytes)
        am_yaml.release_comments(document, self.owner)
        document = am_parts.merge(document, changes, self.owner, self.standalone, am_yaml.block)
        content = am_yaml.dump(document, self.indent)
        self._check(content)
        self.prepared = (tuple(changes), content)

    def _check(self, content: bytes) -> None:
        """`amtool check-config` on the merged file, beside the real one (relative template paths hold)."""
        amtool = shutil.which("amtool")
        if not amtool:
            return
        import tempfile

        fd, tmp = tempfile.mkstemp(dir=self.config_file.parent, prefix=f".{self.config_file.name}.obsgen-check.",
                                   suffix=".yml")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
            proc = subprocess.run([amtool, "check-config", tmp], capture_output=True, text=True, timeout=60)
        except OSError as exc:
            raise BackendError(f"Alertmanager ({self.env.name}): cannot check the merged config beside "
                               f"{self.config_file}: {exc.strerror}") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        if proc.returncode != 0:
            detail = " ".join((proc.stdout + proc.stderr).replace(tmp, str(self.config_file)).split())[-400:]
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
        if not applied:
            return
        if self.existed and self.previous is not None:
            self._write_and_reload(self.previous, "the previous config on restore")
        else:
            try:
                self.config_file.unlink()
            except FileNotFoundError:
                pass

    def _write_and_reload(self, content: bytes, what: str) -> None:
        try:
            mode = self.config_file.stat().st_mode & 0o777 if self.config_file.exists() else None
            atomic_write(self.config_file, content)
            if mode is not None:
                os.chmod(self.config_file, mode)
        except OSError as exc:
            raise BackendError(f"Alertmanager ({self.env.name}): cannot write {self.config_file}: "
                               f"{exc.strerror}") from None
        response = self.http.request("POST", "/-/reload", ok=(200, 403, 500))
        if response.status_code == 403:
            raise BackendError(f"Alertmanager ({self.env.name}) refused /-/reload (403): start it with "
                               f"--web.enable-lifecycle, or let obsgen write the file and reload it yourself")
        if response.status_code != 200:
            raise BackendError(f"Alertmanager ({self.env.name}) refused {what}: {response.text.strip()[:300]}")


def config_in(http: Any, response: Any, text: Any, what: str) -> dict[str, Any]:
    """An Alertmanager config held as YAML text inside an API answer, checked to be a mapping."""
    import yaml

    text = http.expect(response, text or "", str, f"its {what}")
    try:
        live = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        raise http.malformed(response, f"a {what} that is not YAML") from None
    return http.expect(response, live, dict, f"its {what}")
