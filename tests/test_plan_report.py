"""A plan as text: long diffs summarised as +N -M lines (all of it with --full), coloured on a terminal only."""
from __future__ import annotations

import io
import re
import sys
from types import SimpleNamespace

import pytest

from obsgen.cli import main
from obsgen.deploy import report
from obsgen.deploy.plan import Obj, plan

RED, GREEN, CYAN, RESET = "\033[31m", "\033[32m", "\033[36m", "\033[0m"
ESCAPE = re.compile("\033\\[")


def rules(items: list[str]) -> Obj:
    return Obj("prometheus", "rule-group", "f/g", {"rules": items})


def short_plan():
    """One changed line in a group of three: a 6-line diff (hunk, context, -, +)."""
    return plan([rules(["a", "b", "c"])], [rules(["a", "x", "c"])])


def long_plan(changed: int = 30):
    """`changed` list items replaced: `changed` lines removed, `changed` added."""
    return plan([rules([f"new{i}" for i in range(changed)])], [rules([f"old{i}" for i in range(changed)])])


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_short_diff_prints_every_line_as_before() -> None:
    change, = short_plan().changes
    assert report.text(short_plan(), "dev") == "\n".join([
        "~ prometheus rule-group f/g", *[f"    {line}" for line in change.diff()],
        "dev: Plan: 0 to create, 1 to update, 0 to delete (0 unchanged).", ""])
    assert "    -- x" in report.text(short_plan(), "dev") and "    +- b" in report.text(short_plan(), "dev")


def test_a_long_diff_shows_as_the_object_with_its_added_and_removed_line_counts() -> None:
    lines = report.text(long_plan(30), "dev").splitlines()
    assert lines == ["~ prometheus rule-group f/g",
                     "    (+30 -30 lines, not shown)",
                     "(1 long diff not shown; --full shows every line)",
                     "dev: Plan: 0 to create, 1 to update, 0 to delete (0 unchanged)."]


def test_full_shows_every_line_of_a_long_diff() -> None:
    change, = long_plan(30).changes
    text = report.text(long_plan(30), "dev", full=True)
    assert text.splitlines()[1:-1] == [f"    {line}" for line in change.diff()]
    assert sum(line.startswith("    -- old") for line in text.splitlines()) == 30
    assert "not shown" not in text


def test_more_than_twenty_changed_lines_is_long() -> None:
    at, over = long_plan(10), long_plan(11)  # 10 changed items: 20 changed lines (+ hunk and context); 11: 22
    assert (report.diff_stat(at.changes[0].diff()), report.diff_stat(over.changes[0].diff())) == ((10, 10), (11, 11))
    assert "not shown" not in report.text(at, "dev")
    assert "(+11 -11 lines, not shown)" in report.text(over, "dev")


def test_markdown_and_json_are_never_summarised() -> None:
    assert report.markdown(long_plan(30), "dev").count("  -- old") == 30
    assert "not shown" not in report.markdown(long_plan(30), "dev") + report.as_json(long_plan(30), "dev")


def test_colour_paints_removed_red_added_green_and_hunks_cyan_and_nothing_else() -> None:
    lines = report.text(short_plan(), "dev", color=True).splitlines()
    assert lines[0] == "~ prometheus rule-group f/g"
    body = lines[1:-1]
    assert [line for line in body if line.startswith(f"    {RED}")] == [f"    {RED}-- x{RESET}"]
    assert [line for line in body if line.startswith(f"    {GREEN}")] == [f"    {GREEN}+- b{RESET}"]
    assert [line for line in body if line.startswith(f"    {CYAN}")] == [f"    {CYAN}@@ -1,4 +1,4 @@{RESET}"]
    assert [line for line in body if ESCAPE.search(line) is None] == ["     rules:", "     - a", "     - c"]
    assert not ESCAPE.search(lines[-1])


@pytest.mark.parametrize("stream, environ, wanted", [
    (FakeTTY(), {}, True),
    (FakeTTY(), {"NO_COLOR": "1"}, False),
    (FakeTTY(), {"NO_COLOR": ""}, True),   # no-color.org: an empty NO_COLOR does not count
    (FakeTTY(), {"TERM": "dumb"}, False),
    (io.StringIO(), {}, False),            # a pipe or a file
])
def test_colour_only_on_a_terminal_and_never_with_no_color(stream, environ, wanted) -> None:
    assert report.color_wanted(stream, environ) is wanted


# --- through the command line (the live session replaced by a fixed plan) -----------------------------

@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch):
    from obsgen.deploy import session

    no_kubernetes = SimpleNamespace(environment=lambda name: SimpleNamespace(kubernetes=None))  # a cluster not asked
    monkeypatch.setattr(session, "open_session",
                        lambda *a, **k: SimpleNamespace(plan=long_plan(30), notes=[], model=no_kubernetes))
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)

    def run(*args: str, tty: bool = False) -> tuple[int, str]:
        out = FakeTTY() if tty else io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        code = main(list(args))
        return code, out.getvalue()

    return run


@pytest.mark.parametrize("command", [["diff"], ["apply", "--dry-run"]])
def test_diff_and_apply_summarise_long_diffs_unless_full(cli, command) -> None:
    code, out = cli(*command, "--env", "dev")
    assert code == 0 and "    (+30 -30 lines, not shown)" in out
    code, out = cli(*command, "--env", "dev", "--full")
    assert code == 0 and "not shown" not in out and out.count("    -- old") == 30


@pytest.mark.parametrize("command", [["diff"], ["apply", "--dry-run"]])
def test_diff_and_apply_colour_a_terminal_only(cli, command, monkeypatch) -> None:
    assert ESCAPE.search(cli(*command, "--env", "dev", "--full", tty=True)[1])
    assert not ESCAPE.search(cli(*command, "--env", "dev", "--full")[1])
    monkeypatch.setenv("NO_COLOR", "1")
    assert not ESCAPE.search(cli(*command, "--env", "dev", "--full", tty=True)[1])


@pytest.mark.parametrize("fmt", ["json", "markdown"])
def test_json_and_markdown_are_never_coloured_or_summarised(cli, fmt) -> None:
    code, out = cli("diff", "--env", "dev", "--format", fmt, tty=True)
    assert code == 0 and not ESCAPE.search(out) and "not shown" not in out
    assert out.count("-- old") == 30
