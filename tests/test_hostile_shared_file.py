"""The shared Alertmanager config file as a shared resource (issue 18), against real Alertmanager.

Several writers share the file: other teams editing it by hand, and obsgen applying to dev and to
staging, which name the same file in the reference spec. So:

- a restore puts the old file back only while it holds exactly what obsgen wrote; an edit made since is
  left as it is and reported as could-not-restore, naming the file;
- one lock per file (by its real path), not per environment: a second obsgen writing the same file
  waits for the first, and after a bounded wait is refused with who holds it; a Mimir tenant likewise;
- the file keeps its owner, group and mode, and a symlink stays a symlink; where the owner could not
  be kept, obsgen refuses before writing;
- the copy `amtool check-config` reads never lands in the Alertmanager directory, and is gone when the
  apply ends however it ends (Ctrl-C, SIGTERM); a SIGKILL leaves nothing in that directory either.
"""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, require_tool
from stack import Stack
from test_apply_live import one_error_line
from test_shared_alertmanager import SHARED, am, apply, stack, untouched  # noqa: F401  (am, stack: fixtures)

from obsgen.deploy import state

THEIRS = "    - matchers: ['team=\"billing\"']\n      receiver: default-sink\n"  # another team's route
WAIT = 60  # seconds: an upper bound for a subprocess to end, never a measured duration


def obsgen_route(text: str) -> bool:
    routes = (yaml.safe_load(text).get("route") or {}).get("routes") or []
    return any('service="selftest"' in (r.get("matchers") or []) for r in routes)


def with_billing(text: str) -> str:
    """`text` with the billing team's route added as the root's last route (by hand, as a person would)."""
    at = text.index("receivers:")
    return text[:at] + THEIRS + text[at:]


@pytest.fixture
def detached(am: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """obsgen pointed at a copy of the shared config that Alertmanager does not load: the reload succeeds,
    but Alertmanager then does not run obsgen's parts, so every apply fails its confirmation and restores."""
    copy = tmp_path / "detached" / "alertmanager.yml"
    copy.parent.mkdir()
    copy.write_text(SHARED)
    (copy.parent / "templates").symlink_to(am.tmp / "templates")
    monkeypatch.setenv("OBSGEN_ALERTMANAGER_CONFIG_FILE", str(copy))
    return copy


def on_reload(monkeypatch: pytest.MonkeyPatch, action) -> None:
    """Run `action` right after each successful POST /-/reload obsgen sends (another writer at that moment)."""
    from obsgen.deploy.http import Http

    real = Http.request

    def request(self, method, path, **kwargs):
        response = real(self, method, path, **kwargs)
        if (method, path) == ("POST", "/-/reload"):
            action()
        return response

    monkeypatch.setattr(Http, "request", request)


# ---- restore only what is still obsgen's ------------------------------------------------------------

def test_a_failed_confirmation_restores_the_file_obsgen_wrote_byte_for_byte(run_cli, detached: Path) -> None:
    result = apply(run_cli)
    assert result.code == 2
    line = one_error_line(result.err)
    assert "does not run obsgen's" in line and "restored alertmanager" in line and "COULD NOT" not in line, line
    assert detached.read_text() == SHARED


def test_an_edit_made_after_obsgens_write_is_left_as_it_is_and_reported(run_cli, detached: Path, monkeypatch,
                                                                         tmp_path: Path) -> None:
    edits: list[str] = []
    written: list[str] = []

    def another_team_edits() -> None:
        if not edits:  # once: after obsgen's own write and reload
            written.append(detached.read_text())
            edits.append(with_billing(written[0]))
            detached.write_text(edits[0])

    on_reload(monkeypatch, another_team_edits)
    result = apply(run_cli)
    assert result.code == 2
    line = one_error_line(result.err)
    assert "does not run obsgen's" in line, line  # the real failure, first
    first = written[0].splitlines().index("receivers:") + 1  # where the billing route went in
    assert f"COULD NOT RESTORE alertmanager: Alertmanager (dev): the file changed (first at line {first}) " in line
    assert line.endswith(f"since obsgen wrote it (another writer?); left as it is: {detached} -- run `obsgen diff` "
                         f"to see what is left"), line
    assert "restored alertmanager" not in line
    assert detached.read_text() == edits[0]  # the other team's edit, and obsgen's part, both still there
    assert THEIRS in edits[0] and obsgen_route(edits[0])
    history = run_cli("history", "--env", "dev")
    assert "could-not-restore" in history.out, history.out


def test_a_file_removed_after_obsgens_write_is_reported_not_recreated(run_cli, detached: Path,
                                                                      monkeypatch) -> None:
    on_reload(monkeypatch, lambda: detached.unlink(missing_ok=True))
    result = apply(run_cli)
    assert result.code == 2
    line = one_error_line(result.err)
    assert f"COULD NOT RESTORE alertmanager: Alertmanager (dev): the file was removed since obsgen wrote it " \
           f"(another writer?); left as it is: {detached}" in line, line
    assert not detached.exists()


# ---- owner, group, mode and symlinks -----------------------------------------------------------------

def foreign_owner() -> tuple[int, int]:
    """An owner and group for the config other than this process's own, that this process may give a file:
    as root any (daemon, nogroup); else this user with another of its groups (its own group when it has one)."""
    if os.geteuid() == 0:
        return 1, 65534
    others = [g for g in os.getgroups() if g != os.getegid()]
    return os.geteuid(), (others[0] if others else os.getegid())


def test_the_file_keeps_its_owner_group_and_mode(run_cli, am: Stack) -> None:
    path = am.alertmanager_config_file
    uid, gid = foreign_owner()
    os.chown(path, uid, gid)
    os.chmod(path, 0o640)
    try:
        result = apply(run_cli)
        assert result.code == 0, result.err
        assert obsgen_route(path.read_text())
        st = path.stat()
        assert stat.S_IMODE(st.st_mode) == 0o640
        assert st.st_gid == gid
        if os.geteuid() == 0:  # only root can give a file another owner
            assert st.st_uid == uid
    finally:
        os.chown(path, os.geteuid(), os.getegid())
        os.chmod(path, 0o644)


@pytest.mark.parametrize("relative", [False, True], ids=["absolute-link", "relative-link"])
def test_a_symlinked_config_stays_a_symlink_and_its_target_is_written(run_cli, am: Stack, tmp_path: Path,
                                                                      monkeypatch, relative: bool) -> None:
    target = am.alertmanager_config_file
    link = tmp_path / "etc" / "alertmanager.yml"
    link.parent.mkdir()
    link.symlink_to(os.path.relpath(target, link.parent) if relative else target)
    monkeypatch.setenv("OBSGEN_ALERTMANAGER_CONFIG_FILE", str(link))
    result = apply(run_cli)
    assert result.code == 0, result.err  # Alertmanager, which reads the target, confirmed obsgen's parts
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert obsgen_route(target.read_text())
    assert [p.name for p in link.parent.iterdir()] == ["alertmanager.yml"]
    assert run_cli("diff", "--env", "dev", "--only", "alertmanager", "--exit-code").code == 0


KEEP = """\
import sys
from pathlib import Path
from obsgen.output.files import KeepError, keep_problem, replace_shared
path = Path(sys.argv[1])
print(keep_problem(path))
try:
    replace_shared(path, b"route: {}\\n")
    print("written")
except KeepError as exc:
    print("refused:", exc.strerror)
"""


def test_a_file_whose_owner_cannot_be_kept_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """obsgen run by a user who could only replace the file with one of its own: refused, nothing written.

    Run as `nobody` with the system's Python (the virtualenv's interpreter lives under /root); the check
    needs only the standard library. The backend calls the same check before any backend writes."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to run as another user (nobody) against a root-owned file")
    python = "/usr/bin/python3"
    if not os.access(python, os.X_OK):
        pytest.skip("no system python3 to run as nobody")
    shared = Path(tmpdir_for(65534)) / "alertmanager.yml"
    shared.write_text(SHARED)
    os.chmod(shared, 0o644)  # root's file, in a directory nobody may write to: only the owner rule stops it
    before = untouched_file(shared)
    proc = subprocess.run([python, "-c", KEEP, str(shared)], env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                          cwd="/", capture_output=True, text=True, timeout=WAIT, user=65534, group=65534,
                          extra_groups=[])
    assert proc.returncode == 0, proc.stderr
    problem = ("it is owned by uid 0 and obsgen runs as uid 65534, so the rewritten file could not keep that owner; "
               "run obsgen as its owner (or root)")
    assert proc.stdout == f"{problem}\nrefused: {problem}\n"
    assert untouched_file(shared) == before
    assert [p.name for p in shared.parent.iterdir()] == ["alertmanager.yml"]


def tmpdir_for(uid: int) -> str:
    import tempfile

    path = tempfile.mkdtemp(prefix="obsgen-keep-")
    os.chmod(path, 0o777)  # anyone may create files in it: only the owner rule stops the write
    return path


def untouched_file(path: Path) -> tuple[bytes, int, int, int]:
    st = path.stat()
    return path.read_bytes(), st.st_ino, st.st_uid, st.st_mtime_ns


# ---- the amtool check's copy ------------------------------------------------------------------------

def fake_amtool(tmp_path: Path) -> tuple[Path, Path]:
    """A bin directory whose `amtool` records the file it was given (and its pid), then hangs."""
    bin_dir, record = tmp_path / "bin", tmp_path / "amtool-called"
    bin_dir.mkdir()
    script = bin_dir / "amtool"
    script.write_text(f'#!/bin/sh\necho "$$ $2" > {record}.tmp && mv {record}.tmp {record}\nexec sleep {WAIT}\n')
    script.chmod(0o755)
    return bin_dir, record


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_the_amtool_check_copy_never_lands_beside_the_config_and_ends_with_the_apply(am: Stack, tmp_path: Path,
                                                                                      sig: signal.Signals) -> None:
    require_tool("amtool")
    bin_dir, record = fake_amtool(tmp_path)
    config_dir = am.alertmanager_config_file.parent
    before = sorted(p.name for p in config_dir.iterdir())
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "OBSGEN_STATE_DIR": str(tmp_path / "s"),
           "OBSGEN_ALERTMANAGER_URL": am.alertmanager_url,
           "OBSGEN_ALERTMANAGER_CONFIG_FILE": str(am.alertmanager_config_file)}
    argv = [sys.executable, "-m", "obsgen", "apply", "--env", "dev", "--yes", "--only", "alertmanager"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        am.wait_until(lambda: record.exists() or proc.poll() is not None, timeout=WAIT, what="amtool to be called")
        assert record.exists(), proc.communicate()
        pid, copy = record.read_text().split()
        assert not Path(copy).is_relative_to(config_dir)
        assert Path(copy).exists()  # the copy amtool reads, while it runs
        proc.send_signal(sig)
        proc.communicate(timeout=WAIT)
        assert proc.returncode != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        try:
            os.kill(int(record.read_text().split()[0]), signal.SIGKILL)  # the fake amtool, if it outlived obsgen
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            pass
    assert sorted(p.name for p in config_dir.iterdir()) == before  # nothing left beside the config
    assert am.alertmanager_config_file.read_text() == SHARED
    if sig != signal.SIGKILL:  # an exit obsgen sees removes the private copy and its directory
        assert not Path(copy).exists() and not Path(copy).parent.exists()


def test_relative_template_paths_are_still_checked_from_the_private_copy(run_cli, am: Stack) -> None:
    """The check's copy lives elsewhere, but `templates: ['templates/*.tmpl']` still names the
    organisation's template files beside the real config: a broken one still stops the apply."""
    (am.tmp / "templates" / "payments.tmpl").write_text('{{ define "payments.title" }}[{{ .Status }\n')
    before = untouched(am)
    result = apply(run_cli)
    assert result.code == 2
    line = one_error_line(result.err)
    assert "amtool check-config rejects the merged config" in line and "payments.tmpl" in line, line
    assert untouched(am) == before


# ---- one lock per shared target ---------------------------------------------------------------------

HOLDER = """\
import sys
from obsgen.deploy import state
with state.target_lock(sys.argv[1], "the target", "obsgen apply --env staging"):
    print("holding", flush=True)
    sys.stdin.read()
"""


class Holder:
    """Another obsgen process holding a target's lock until `release()`."""

    def __init__(self, key: str, state_dir: Path) -> None:
        env = {**os.environ, "OBSGEN_STATE_DIR": str(state_dir)}
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, key], env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline() == "holding\n"

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=WAIT)


def test_an_apply_to_another_environment_holding_the_same_file_is_waited_for_then_refused(
        run_cli, am: Stack, tmp_path: Path, monkeypatch) -> None:
    link = tmp_path / "via-a-link.yml"  # dev names the file through a link: still the same file, same lock
    link.symlink_to(am.alertmanager_config_file)
    monkeypatch.setenv("OBSGEN_ALERTMANAGER_CONFIG_FILE", str(link))
    monkeypatch.setattr(state, "TARGET_WAIT", 0.5)
    holder = Holder(state.file_target(am.alertmanager_config_file), Path(os.environ["OBSGEN_STATE_DIR"]))
    try:
        before = untouched(am)
        result = apply(run_cli)
        assert result.code == 2
        line = one_error_line(result.err)
        assert (f"the Alertmanager config {link} is in use by another obsgen (held by obsgen apply --env staging, "
                f"pid {holder.proc.pid}); waited 0.5 s, nothing was written") in line, line
        assert untouched(am) == before
    finally:
        holder.release()
    assert apply(run_cli).code == 0  # released: the next apply goes ahead


def test_an_apply_waits_for_the_other_writer_of_the_file_and_then_goes_ahead(run_cli, am: Stack) -> None:
    holder = Holder(state.file_target(am.alertmanager_config_file), Path(os.environ["OBSGEN_STATE_DIR"]))
    timer = threading.Timer(0.5, holder.release)
    timer.start()
    try:
        result = apply(run_cli)  # waits (TARGET_WAIT, 30 s at most) for the holder to finish
    finally:
        timer.cancel()
        holder.release()
    assert result.code == 0, result.err
    assert obsgen_route(am.alertmanager_config_file.read_text())


def test_the_lock_key_is_the_real_path_and_the_mimir_tenant() -> None:
    assert state.file_target("/a/b/../c.yml") == state.file_target("/a/c.yml")
    assert state.target_lock_path(state.tenant_target("http://m:9009/api/v1/alerts", "platform")) != \
        state.target_lock_path(state.tenant_target("http://m:9009/api/v1/alerts", "other"))


def test_a_mimir_tenant_held_by_another_obsgen_is_refused_with_the_holder(run_cli, tmp_path: Path,
                                                                          monkeypatch) -> None:
    from doubles.mimir import MimirDouble
    from test_hostile_am_answers import TOKEN

    from obsgen.deploy.backends.mimir_alertmanager import DEFAULT_PATH

    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "pagerduty-routing-key").write_text("pd-key\n")
    (secrets / "slack-webhook-url").write_text("https://hooks.slack.example/x\n")
    spec = tmp_path / "selftest.yaml"
    spec.write_text((ROOT / "specs/selftest.yaml").read_text().replace("/etc/alertmanager/secrets/prod/",
                                                                       f"{secrets}/"))
    monkeypatch.setenv("OBSGEN_PROD_MIMIR_TOKEN", TOKEN)
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", str(secrets))
    monkeypatch.setattr(state, "TARGET_WAIT", 0.5)
    with MimirDouble(token=TOKEN) as mimir:
        mimir.seed_alertmanager("platform", "route:\n  receiver: sink\nreceivers:\n  - name: sink\n")
        holder = Holder(state.tenant_target(mimir.url + DEFAULT_PATH, "platform"),
                        Path(os.environ["OBSGEN_STATE_DIR"]))
        try:
            writes = mimir.writes
            result = run_cli("apply", "--env", "prod", "--spec", str(spec), "--only", "alertmanager", "--yes",
                             "--alertmanager-url", mimir.url)
            assert result.code == 2
            line = one_error_line(result.err)
            assert "Mimir tenant platform" in line and "in use by another obsgen (held by obsgen apply --env " \
                   f"staging, pid {holder.proc.pid})" in line, line
            assert mimir.writes == writes
        finally:
            holder.release()


# ---- a Mimir tenant's config: restore only what is still obsgen's ------------------------------------

FOREIGN = "route:\n  receiver: sink\nreceivers:\n  - name: sink\n"


@pytest.fixture
def tenant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """(the Mimir double, with the platform tenant's config seeded, and a spec whose prod uses it)."""
    from doubles.mimir import MimirDouble
    from test_hostile_am_answers import TOKEN

    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "pagerduty-routing-key").write_text("pd-key\n")
    (secrets / "slack-webhook-url").write_text("https://hooks.slack.example/x\n")
    spec = tmp_path / "selftest.yaml"
    spec.write_text((ROOT / "specs/selftest.yaml").read_text().replace("/etc/alertmanager/secrets/prod/",
                                                                       f"{secrets}/"))
    monkeypatch.setenv("OBSGEN_PROD_MIMIR_TOKEN", TOKEN)
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", str(secrets))
    with MimirDouble(token=TOKEN) as mimir:
        mimir.seed_alertmanager("platform", FOREIGN)
        yield mimir, spec


def apply_prod(run_cli, mimir, spec: Path):
    return run_cli("apply", "--env", "prod", "--spec", str(spec), "--only", "alertmanager", "--yes",
                   "--alertmanager-url", mimir.url)


def posts(mimir) -> int:
    return sum(1 for method, path, _ in mimir.requests if method == "POST" and path.endswith("/api/v1/alerts"))


def test_a_mimir_post_that_changed_nothing_is_not_posted_again_on_restore(run_cli, tenant) -> None:
    mimir, spec = tenant
    mimir.fail_next("POST", "/api/v1/alerts", 500, "ingester unavailable")
    result = apply_prod(run_cli, mimir, spec)
    assert result.code == 2
    line = one_error_line(result.err)
    assert "restored alertmanager" in line and "COULD NOT" not in line, line
    assert posts(mimir) == 1  # the failed one: the tenant still held its config, so nothing was posted back
    assert mimir.alertmanager_config("platform")["alertmanager_config"] == FOREIGN


def test_a_mimir_config_another_writer_changed_meanwhile_is_left_and_reported(run_cli, tenant, monkeypatch) -> None:
    from obsgen.deploy.http import BackendError, Http

    mimir, spec = tenant
    theirs = FOREIGN + "templates: ['billing-*.tmpl']\n"
    mimir.fail_next("POST", "/api/v1/alerts", 500, "ingester unavailable")
    real = Http.request

    def request(self, method, path, **kwargs):
        try:
            return real(self, method, path, **kwargs)
        except BackendError:
            if method == "POST":  # while obsgen's POST fails, another team stores its own config
                mimir.seed_alertmanager("platform", theirs)
            raise

    monkeypatch.setattr(Http, "request", request)
    result = apply_prod(run_cli, mimir, spec)
    assert result.code == 2
    line = one_error_line(result.err)
    assert line.endswith("COULD NOT RESTORE alertmanager: Mimir Alertmanager (prod): the tenant's config changed "
                         "since obsgen wrote it (another writer?); left as it is -- run `obsgen diff` to see what "
                         "is left"), line
    assert mimir.alertmanager_config("platform")["alertmanager_config"] == theirs
    assert posts(mimir) == 1
