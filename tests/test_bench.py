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
