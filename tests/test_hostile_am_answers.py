"""Malformed answers from Alertmanager and from Mimir's Alertmanager config API (issue 18).

A server that answers with the wrong shape -- `/api/v2/status` without `config`, with `config.original`
that is not a string or not YAML, or a config whose `receivers` is a number -- must be one clear error line
naming Alertmanager, exit 2: never "internal error", and never read as an empty running config (which
would make obsgen plan to create what is already there, or call a broken server "No changes").
The same for Mimir's `GET /api/v1/alerts`. The servers here are small http.server threads.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REFERENCE_SPEC
from test_apply_live import one_error_line

VALID = "route:\n  receiver: sink\nreceivers:\n  - name: sink\n"


class Answers:
    """An http server answering every GET with `body` (status 200) and every POST with 200, recording POSTs."""

    def __init__(self, body: bytes, content_type: str = "application/json") -> None:
        self.body, self.content_type, self.posts = body, content_type, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", owner.content_type)
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

            def do_POST(self) -> None:  # noqa: N802
                owner.posts.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Answers":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def status(config: Any = None, **extra: Any) -> bytes:
    """An /api/v2/status answer shaped like Alertmanager's, with `config` as given (absent when None)."""
    body: dict[str, Any] = {"cluster": {"status": "disabled"}, "versionInfo": {"version": "0.25.0"},
                            "uptime": "2026-01-01T00:00:00Z", **extra}
    if config is not None:
        body["config"] = config
    return json.dumps(body).encode()


STATUS_SHAPES = {
    "receivers-a-number": status({"original": "route:\n  receiver: sink\nreceivers: 5\n"}),
    "route-a-list": status({"original": "route: [1, 2]\nreceivers:\n  - name: sink\n"}),
    "routes-a-number": status({"original": "route:\n  receiver: sink\n  routes: 5\nreceivers:\n  - name: sink\n"}),
    "a-route-a-string": status({"original": "route:\n  receiver: sink\n  routes: [x]\nreceivers:\n  - name: sink\n"}),
    "inhibit-rules-a-mapping": status({"original": VALID + "inhibit_rules: {a: b}\n"}),
    "a-receiver-a-number": status({"original": "route:\n  receiver: sink\nreceivers: [5]\n"}),
    "no-config": status(None),
    "config-null": json.dumps({"config": None}).encode(),
    "config-a-string": status("route: {}"),
    "original-missing": status({}),
    "original-a-number": status({"original": 7}),
    "original-empty": status({"original": ""}),
    "original-a-list": status({"original": ["route: {}"]}),
    "original-not-yaml": status({"original": "route: [unclosed\n"}),
    "original-a-yaml-list": status({"original": "- route\n- receivers\n"}),
}


@pytest.fixture
def file_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """dev's Alertmanager in file mode, its config file a small valid one in tmp_path."""
    config = tmp_path / "alertmanager.yml"
    config.write_text(VALID)
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OBSGEN_ALERTMANAGER_CONFIG_FILE", str(config))
    return config


@pytest.mark.parametrize("shape", sorted(STATUS_SHAPES))
@pytest.mark.parametrize("command", ["diff", "apply"])
def test_a_malformed_status_answer_is_one_line_naming_alertmanager(run_cli, file_mode: Path, monkeypatch,
                                                                   shape: str, command: str) -> None:
    before = file_mode.read_bytes()
    with Answers(STATUS_SHAPES[shape]) as server:
        monkeypatch.setenv("OBSGEN_ALERTMANAGER_URL", server.url)
        extra = ("--yes",) if command == "apply" else ()
        result = run_cli(command, "--env", "dev", "--only", "alertmanager", *extra)
        assert result.code == 2, (result.out, result.err)
        line = one_error_line(result.err)
        assert "Alertmanager" in line, line
        assert "internal error" not in line and "bug" not in line, line
        assert "/api/v2/status" in line, line
        assert server.posts == []  # no reload: nothing was written
    assert file_mode.read_bytes() == before


@pytest.mark.parametrize("shape", ["no-config", "original-missing", "original-a-number", "receivers-a-number"])
def test_a_malformed_status_answer_stops_a_whole_config_diff(run_cli, file_mode: Path, monkeypatch, tmp_path: Path,
                                                             shape: str) -> None:
    """`owns: whole` compares the running config itself: an answer without one is no empty config."""
    from test_apply_live import variant

    def whole(spec: dict[str, Any]) -> None:
        dev = next(e for e in spec["environments"] if e["name"] == "dev")
        dev["backends"]["alertmanager"]["owns"] = "whole"

    spec = variant(tmp_path, whole)
    with Answers(STATUS_SHAPES[shape]) as server:
        monkeypatch.setenv("OBSGEN_ALERTMANAGER_URL", server.url)
        result = run_cli("diff", "--env", "dev", "--spec", str(spec), "--only", "alertmanager")
    assert result.code == 2, (result.out, result.err)
    line = one_error_line(result.err)
    assert "Alertmanager" in line and "internal error" not in line, line


@pytest.mark.parametrize("content", ["receivers: 5\n", "route: [1]\n", "route:\n  routes: 5\n",
                                     "inhibit_rules: 5\n", "receivers: [5]\n"])
def test_a_config_file_of_the_wrong_shape_is_one_line_naming_the_file(run_cli, file_mode: Path, monkeypatch,
                                                                     content: str) -> None:
    file_mode.write_text(content)
    with Answers(STATUS_SHAPES["receivers-a-number"].replace(b"receivers: 5", b"receivers: []")) as server:
        monkeypatch.setenv("OBSGEN_ALERTMANAGER_URL", server.url)
        result = run_cli("diff", "--env", "dev", "--only", "alertmanager")
    assert result.code == 2, (result.out, result.err)
    line = one_error_line(result.err)
    assert str(file_mode) in line and "internal error" not in line, line


# ---- Mimir ----------------------------------------------------------------------------------------
TOKEN = "mimir_hostile_answers_token_0123456789"


@pytest.fixture
def mimir_spec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "pagerduty-routing-key").write_text("pd-key\n")
    (secrets / "slack-webhook-url").write_text("https://hooks.slack.example/x\n")
    data = yaml.safe_load(REFERENCE_SPEC.read_text().replace("/etc/alertmanager/secrets/prod/", f"{secrets}/"))
    path = tmp_path / "selftest.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("OBSGEN_PROD_MIMIR_TOKEN", TOKEN)
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OBSGEN_SECRET_DIRS", str(secrets))
    return path


def tenant(config: Any = VALID, templates: Any = None, omit: tuple[str, ...] = ()) -> bytes:
    document = {"template_files": templates or {}, "alertmanager_config": config}
    return yaml.safe_dump({k: v for k, v in document.items() if k not in omit}).encode()


MIMIR_SHAPES = {
    "not-yaml": b"template_files: {\n",
    "a-list": b"- a\n- b\n",
    "config-missing": tenant(omit=("alertmanager_config",)),
    "config-a-number": tenant(5),
    "config-a-mapping": tenant({"route": {"receiver": "sink"}}),
    "config-not-yaml": tenant("route: [unclosed\n"),
    "config-a-yaml-list": tenant("- a\n"),
    "receivers-a-number": tenant("route:\n  receiver: sink\nreceivers: 5\n"),
    "routes-a-number": tenant("route:\n  receiver: sink\n  routes: 5\nreceivers:\n  - name: sink\n"),
    "inhibit-rules-a-number": tenant(VALID + "inhibit_rules: 5\n"),
    "templates-a-list": tenant(templates=["a"]),
}


@pytest.mark.parametrize("shape", sorted(MIMIR_SHAPES))
def test_a_malformed_mimir_alertmanager_answer_is_one_line_naming_it(run_cli, mimir_spec: Path, shape: str) -> None:
    with Answers(MIMIR_SHAPES[shape], content_type="application/yaml") as server:
        for command, extra in (("diff", ()), ("apply", ("--yes",))):
            result = run_cli(command, "--env", "prod", "--spec", str(mimir_spec), "--only", "alertmanager",
                             "--alertmanager-url", server.url, *extra)
            assert result.code == 2, (command, result.out, result.err)
            line = one_error_line(result.err)
            assert "Mimir Alertmanager" in line, line
            assert "internal error" not in line and "bug" not in line, line
        assert server.posts == []


# ---- a config file that is no file -----------------------------------------------------------------

@pytest.mark.parametrize("kind", ["fifo", "device", "huge"])
def test_a_config_file_that_is_not_a_regular_file_of_sane_size_is_refused_at_once(file_mode: Path, tmp_path: Path,
                                                                                  kind: str) -> None:
    """A FIFO would hang the read, /dev/zero would fill memory, a huge file is no Alertmanager config: each
    is one error line (exit 2), at once, and nothing is written to it or reloaded."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    if kind == "fifo":
        path = tmp_path / "am.fifo"
        os.mkfifo(path)
    elif kind == "device":
        path = Path("/dev/zero")
    else:
        path = tmp_path / "huge.yml"
        with open(path, "wb") as fh:
            fh.truncate(64 * 1024 * 1024)  # sparse: 64 MiB of nothing
    with Answers(status({"original": VALID})) as server:
        env = {**os.environ, "OBSGEN_ALERTMANAGER_URL": server.url, "OBSGEN_ALERTMANAGER_CONFIG_FILE": str(path)}
        for command in (["diff"], ["apply", "--yes"]):
            proc = subprocess.run([sys.executable, "-m", "obsgen", *command, "--env", "dev", "--only", "alertmanager"],
                                  cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
            assert proc.returncode == 2, proc.stderr
            line = one_error_line(proc.stderr)
            assert line.startswith(f"obsgen: error: Alertmanager (dev): cannot read {path}: "), line
            assert ("not a regular file" if kind != "huge" else "larger than") in line, line
        assert server.posts == []
    if kind == "fifo":
        assert path.is_fifo()
