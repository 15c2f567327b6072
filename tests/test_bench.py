"""The benchmark's spec generators (bench/specgen.py) produce valid specs. No timing is asserted here."""
from __future__ import annotations

import sys
from pathlib import Path

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import specgen  # noqa: E402

from obsgen.spec import load_spec  # noqa: E402


def test_a_small_scaling_spec_is_valid_and_has_the_requested_size(tmp_path: Path) -> None:
    path = specgen.write_spec(specgen.scaling_spec(12, 3), tmp_path / "scaling.yaml", "12 steps, 3 SLOs")
    model = load_spec(str(path))
    assert len(model.steps) == 12
    assert [s.sli.kind for s in model.slos] == ["pass_rate", "latency", "pass_rate"]
    assert {s.tier for s in model.steps} == {t.id for t in model.tiers}
    assert [e.name for e in model.environments] == ["dev", "staging", "prod"]


def test_the_apply_spec_has_the_dashboards_and_rule_groups_asked_for(tmp_path: Path) -> None:
    data = specgen.apply_spec(5, 2)
    model = load_spec(str(specgen.write_spec(data, tmp_path / "apply.yaml", "5 dashboards, 2 SLOs")))
    assert len(model.dashboards) == 5 and len(model.slos) == 2
    assert specgen.rule_groups(data) == 8
    renamed = specgen.rename_dashboard(data, 1, "Another title")
    assert renamed["dashboards"][1]["id"] == data["dashboards"][1]["id"]
    assert renamed["dashboards"][1]["title"] != data["dashboards"][1]["title"]


# --- the floors and the summary table (bench/floors.py, bench/writer.py, bench/verify_bench.py) ---------------

import argparse  # noqa: E402
import json  # noqa: E402

import floors  # noqa: E402
import pytest  # noqa: E402
import verify_bench  # noqa: E402
from writer import Figure, Results, markdown, to_json  # noqa: E402


def test_the_apply_floor_is_whole_round_trips_of_sixteen_requests_after_the_interpreter_start() -> None:
    # 207 requests at 16 in flight need 13 round trips (12 full, one of 15); 16 need exactly one
    assert floors.apply_floor(207, 0.05, 0.04) == pytest.approx(13 * 0.05 + 0.04)
    assert floors.apply_floor(16, 0.05, 0.0) == pytest.approx(0.05)
    assert floors.apply_floor(17, 0.05, 0.0) == pytest.approx(0.10)
    assert floors.apply_floor(207, 0.05, None) is None and floors.apply_floor(0, 0.05, 0.04) is None


def test_the_summary_shows_each_floor_its_ratio_and_how_it_was_computed() -> None:
    results = Results({}, {}, [
        Figure("a", 4, "no-op re-apply", 2.0, "s", [2.0], "≤ 1.2 s", False, floor=0.5, floor_how="round trips"),
        Figure("b", 4, "writes", 0, "writes", [], "0 writes", True),
        Figure("c", 7, "verify, killed", 600.0, "s", [600.0], "≤ 3 min", False, lower_bound=True, floor=100.0,
               floor_how="promtool alone")])
    md = markdown(results)
    header = next(line for line in md.splitlines() if line.startswith("| #"))
    assert "| floor | × floor |" in header
    rows = {line.split(" | ")[1]: line.split(" | ") for line in md.splitlines() if line.startswith("| 4 ") or
            line.startswith("| 7 ")}
    assert rows["no-op re-apply"][6:8] == ["0.500 s", "4.0×"]
    assert rows["writes"][6:8] == ["–", "–"]
    assert rows["verify, killed"][6:8] == ["100.0 s", "> 6.0×"]  # a lower bound over the floor is one too
    assert "- no-op re-apply: round trips" in md and "- verify, killed: promtool alone" in md
    data = json.loads(to_json(results))
    assert [f["floor_ratio"] for f in data["figures"]] == [4.0, None, 6.0]


def test_the_suite_time_is_read_from_the_file_the_suite_writes(tmp_path: Path) -> None:
    path = tmp_path / "suite-time.json"
    [missing] = verify_bench.suite_figures(path)
    assert missing.value is None and missing.met is None and missing.target == "< 300 s"
    path.write_text(json.dumps({"seconds": 250.5, "tests": 1070, "measured": "2026-12-07"}))
    [fast] = verify_bench.suite_figures(path)
    assert (fast.value, fast.met) == (250.5, True) and "1070 tests" in fast.note
    path.write_text(json.dumps({"seconds": 300, "tests": 1070, "measured": "2026-12-07"}))
    assert verify_bench.suite_figures(path)[0].met is False  # the target is strictly under 5 minutes
    path.write_text("{not json")
    assert verify_bench.suite_figures(path)[0].value is None


def test_the_bytes_a_user_needs_leave_out_the_generated_tests_only() -> None:
    files = [("dev/prometheus/a.rules.yaml", b"12345"), ("dev/tests/rules/a.test.yaml", b"1234567890"),
             ("dev/tests/routing.yaml", b"123"), ("prod/docs/alerts.md", b"12"), ("dev/manifest.json", b"1")]
    assert floors.needed_bytes(files) == 8


def test_writing_the_floor_files_leaves_nothing_behind(tmp_path: Path) -> None:
    seconds = floors.write_time([("dev/a/b.yaml", b"x" * 100), ("prod/c.json", b"{}")], 2)
    assert seconds is not None and seconds >= 0


def test_the_serialisation_floor_replays_every_document_a_compile_serialises() -> None:
    from obsgen.generate import compile_spec

    seconds, replayed, artifacts = floors.serialisation_time(str(ROOT / "specs" / "selftest.yaml"), 1)
    build = compile_spec(str(ROOT / "specs" / "selftest.yaml"))
    assert artifacts == len(build.artifacts)
    # everything but the Markdown alert docs goes through render.to_yaml / render.to_json, cached or not
    assert replayed == sum(1 for a in build.artifacts if not a.path.endswith(".md"))
    assert seconds is not None and seconds > 0


def test_the_benchmark_runs_chosen_sections_only() -> None:
    import run

    assert run._sections("1,4") == {1, 4}
    assert run._case("1000x100") == (1000, 100)
    with pytest.raises(argparse.ArgumentTypeError):
        run._sections("9")


def test_the_one_request_at_a_time_child_sets_obsgens_http_client_to_one_worker() -> None:
    """bench/live.py runs `obsgen` in a child with one request at a time; the code it runs first must import
    obsgen's HTTP client where it lives and set it to one worker (a wrong import fails every such run)."""
    import subprocess

    import live

    probe = live.SEQUENTIAL_OBSGEN.replace("sys.exit(main(sys.argv[1:]))\n", "print(http.READ_WORKERS)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out == "1\n"
