"""Issue 18: every byte of a shared Alertmanager file outside obsgen's part is kept exactly.

The hostile file below holds what ruamel.yaml's round trip does not keep: a UTF-8 BOM, a leading `---`
and a final `...`, CRLF line endings, flow sequences with spaces inside the brackets and over two
lines, lines far longer than 80 (and than 4096) characters, `~`, trailing spaces, extra spaces after a
colon, a plain scalar continued on the next line, lists indented in two styles. An apply into it may
only insert obsgen's lines: compared line by line (bytes, line endings included), the file before is
the file after minus inserted lines. Against a real Alertmanager, which must load every version.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml
from stack import Stack
from test_apply_live import variant

from obsgen.deploy.backends import am_bytes

LONG = "x" * 300
HUGE = "y" * 5000
HOSTILE = (
    "\ufeff---\r\n"
    "# the platform's file: CRLF, a BOM, and every style its editors like\r\n"
    "global:\r\n"
    "  resolve_timeout:   7m   \r\n"
    "  smtp_from: alertmanager@example.internal\r\n"
    "templates: [ 'templates/*.tmpl' ]\r\n"
    "route:\r\n"
    "  receiver: default-sink\r\n"
    "  group_by: [alertname,\r\n"
    "             team]\r\n"
    "  routes:\r\n"
    "    - matchers: [ 'team=\"payments\"', 'severity=~\"critical|warning\"' ]\r\n"
    f"      receiver: payments-webhook   # {LONG}\r\n"
    "      group_wait: ~\r\n"
    "    - matchers: ['team=\"search\"']\r\n"
    "      receiver: search-null\r\n"
    "      continue: true\r\n"
    "receivers:\r\n"
    "  - name: default-sink\r\n"
    "  - name: payments-webhook\r\n"
    "    webhook_configs: [{url: 'http://127.0.0.1:9/payments', send_resolved: false}]\r\n"
    "  - name: search-null   \r\n"
    "inhibit_rules:\r\n"
    "  - source_matchers: ['team=\"payments\"', 'severity=\"critical\"']\r\n"
    "    target_matchers: ['team=\"payments\"', 'severity=\"warning\"']\r\n"
    f"    equal: [alertname]   # {HUGE}\r\n"
    "time_intervals:\r\n"
    "- name: weekends\r\n"
    "  time_intervals:\r\n"
    "  - weekdays: ['saturday',\r\n"
    "               'sunday']\r\n"
    "...\r\n"
).encode("utf-8")


@pytest.fixture(scope="module")
def stack():
    s = Stack(components=("alertmanager",), alertmanager_config="route:\n  receiver: x\nreceivers:\n  - name: x\n")
    with s:
        (s.tmp / "templates").mkdir(exist_ok=True)
        yield s


@pytest.fixture
def am(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Stack:
    stack.alertmanager_config_file.write_bytes(HOSTILE)
    assert stack.reload_alertmanager() == 200  # Alertmanager itself reads the hostile file
    monkeypatch.setenv("OBSGEN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OBSGEN_ALERTMANAGER_URL", stack.alertmanager_url)
    monkeypatch.setenv("OBSGEN_ALERTMANAGER_CONFIG_FILE", str(stack.alertmanager_config_file))
    return stack


def apply(run_cli, *args: str):
    return run_cli("apply", "--env", "dev", "--yes", "--only", "alertmanager", *args)


def only_inserted(before: bytes, after: bytes) -> list[tuple[str, list[bytes]]]:
    """The file's own lines that are not, byte for byte and in order, in `after` (empty: only insertions)."""
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    return [(tag, a[i1:i2]) for tag, i1, i2, _, _ in
            difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes() if tag not in ("equal", "insert")]


def test_an_apply_into_a_hostile_file_only_inserts_obsgens_lines(run_cli, am: Stack, tmp_path: Path) -> None:
    result = apply(run_cli)
    assert result.code == 0, result.err
    after = am.alertmanager_config_file.read_bytes()
    assert only_inserted(HOSTILE, after) == []
    assert after.startswith(b"\xef\xbb\xbf---\r\n") and after.endswith(b"...\r\n")
    added = [line for line in after.splitlines(keepends=True) if line not in HOSTILE.splitlines(keepends=True)]
    assert added and all(line.endswith(b"\r\n") for line in added)  # obsgen's lines in the file's line ending
    running = am.alertmanager_loaded_config()
    assert [r["receiver"] for r in running["route"]["routes"]] == [
        "selftest/dev/slack-info", "payments-webhook", "search-null"]

    # an update of obsgen's route, and a move of it to the end, touch nothing else either
    for edit in (lambda s: s["timing"].update(group_interval="90m"),
                 lambda s: next(e for e in s["environments"] if e["name"] == "dev")[
                     "backends"]["alertmanager"].update(route={"position": "last"})):
        changed = apply(run_cli, "--spec", str(variant(tmp_path, edit)))
        assert changed.code == 0 and "to update" in changed.out, changed.out + changed.err
        assert only_inserted(HOSTILE, am.alertmanager_config_file.read_bytes()) == []
    assert [r["receiver"] for r in am.alertmanager_loaded_config()["route"]["routes"]] == [
        "payments-webhook", "search-null", "selftest/dev/slack-info"]


def test_removing_obsgens_part_gives_back_the_file_as_it_was(run_cli, am: Stack, tmp_path: Path) -> None:
    assert apply(run_cli).code == 0
    from obsgen.compile import amtree
    from obsgen.deploy.backends import am_parts, am_yaml
    from obsgen.deploy.plan import DELETE, Change, Obj

    # drop every part of obsgen's through the backend's own merge path: the file comes back byte for byte
    content = am.alertmanager_config_file.read_bytes()
    owner = amtree.Owner("selftest", "dev")
    document = am_yaml.yaml().load(content.decode())
    parts = amtree.extract(document, owner)
    changes = [Change(DELETE, Obj("alertmanager", "route", owner.key, None), None),
               Change(DELETE, Obj("alertmanager", "inhibit-rules", owner.key, None), None)]
    changes += [Change(DELETE, Obj("alertmanager", "receiver", name, None), None) for name in parts.receivers]
    kept = am_parts.render(content, document, changes, owner, {}, am_yaml.indentation(content.decode()))
    assert kept.rewritten == [] and kept.content == HOSTILE


def test_a_line_next_to_obsgens_part_that_cannot_be_kept_stops_the_apply_naming_it(run_cli, am: Stack) -> None:
    # the inhibit rules as one flow sequence over two lines, right where obsgen appends its receivers: ruamel
    # writes it on one line, and the receiver line before it has trailing spaces -- one run of lines that
    # obsgen's insertion falls into
    flow = ("inhibit_rules: [{source_matchers: ['team=\"payments\"', 'severity=\"critical\"'],\r\n"
            "                 target_matchers: ['team=\"payments\"', 'severity=\"warning\"']}]\r\n")
    text = HOSTILE.decode("utf-8")
    start, end = text.index("inhibit_rules:"), text.index("time_intervals:")
    am.alertmanager_config_file.write_bytes((text[:start] + flow + text[end:]).encode("utf-8"))
    assert am.reload_alertmanager() == 200
    before = am.alertmanager_config_file.read_bytes()
    shown = run_cli("diff", "--env", "dev", "--only", "alertmanager")
    assert shown.code == 0
    assert any(n.startswith("obsgen: note: Alertmanager (dev): apply would stop: merging obsgen's part into ")
               and "would re-write 3 line(s)" in n for n in shown.err.splitlines()), shown.err
    result = apply(run_cli)
    assert result.code == 2
    line = [n for n in result.err.splitlines() if n.startswith("obsgen: error: ")][0]
    assert "would re-write 3 line(s) of other teams' parts" in line and "(line 22: '- name: search-null'" in line
    assert "nothing was written" in line
    assert am.alertmanager_config_file.read_bytes() == before


@pytest.mark.parametrize("original", [
    "a: 1\n", "a: 1", "\ufeffa: 1\r\n", "---\na: [ 1 , 2 ]\n...\n", "%YAML 1.2\n---\na: ~\n",
])
def test_merge_with_no_change_gives_back_the_text(original: str) -> None:
    from obsgen.deploy.backends import am_yaml

    document = am_yaml.yaml().load(original.lstrip("\ufeff"))
    base = am_yaml.dump(document).decode()
    kept = am_bytes.merge(original, base, base)
    assert (kept.content.decode("utf-8"), kept.rewritten) == (original, [])
    assert yaml.safe_load(kept.content.decode("utf-8").lstrip("\ufeff")) == yaml.safe_load(base)


def test_a_splice_that_does_not_read_as_the_merged_config_is_never_used() -> None:
    """The safety net: a list the file indents unlike ruamel's rendering of it, which obsgen appends to --
    spliced, the new item would land outside the list; so the splice is not used and the file's lines
    are named (the caller then refuses, writing nothing)."""
    original = b"a:\r\n  - 1\r\n"
    kept = am_bytes.keep(original, "a:\n- 1\n", "a:\n- 1\n- 2\n")
    assert kept.rewritten == [(1, "a:"), (2, "  - 1")]
    # the same change where the file's lines can be kept: spliced, in the file's line ending
    assert am_bytes.keep(original, "a:\n  - 1\n", "b: 1\na:\n  - 1\n") == am_bytes.Kept(b"b: 1\r\na:\r\n  - 1\r\n")
