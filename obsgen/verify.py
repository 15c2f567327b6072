"""`obsgen verify`: run the generated rule and routing tests against the files in the output directory.

Rule tests run with `promtool test rules`, one call per test file; when a file
fails, its test groups are run one by one so the report names every failing
case (promtool 2.42 does not name the group of a failed expression test).
Routing cases run with `amtool config routes test --verify.receivers`; the
inhibition cases are evaluated here on the generated config, since amtool
cannot. Everything reads the committed files, so a hand edit is caught.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from obsgen.errors import ObsgenError

TOOLS = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}


@dataclass(frozen=True)
class Outcome:
    env: str
    suite: str  # rules | routing | inhibition
    name: str
    ok: bool
    detail: str = ""


def tools() -> dict[str, str]:
    """The paths of promtool and amtool; a clear error naming the package when one is missing."""
    found = {name: shutil.which(name) for name in TOOLS}
    missing = [name for name, path in found.items() if not path]
    if missing:
        packages = " ".join(TOOLS[m] for m in missing)
        raise ObsgenError(f"verify needs {' and '.join(missing)} on PATH to run the generated tests; install "
                          f"them (Debian/Ubuntu: apt-get install {packages})")
    return found  # type: ignore[return-value]


def verify(out: Path, envs: list[str]) -> Iterator[Outcome]:
    paths = tools()
    for env in envs:
        root = out / env
        if not root.is_dir():
            raise ObsgenError(f"{root} does not exist: run `obsgen build` first")
        for test_file in sorted((root / "tests" / "rules").glob("*.test.yaml")):
            yield from _rule_tests(paths["promtool"], env, test_file)
        routing = root / "tests" / "routing.yaml"
        if routing.exists():
            yield from _routing_tests(paths["amtool"], env, routing)


def _load(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ObsgenError(f"{path}: cannot read the generated test file: {exc}") from None


def _promtool(promtool: str, test_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True,
                          cwd=test_file.parent, timeout=300)


def _rule_tests(promtool: str, env: str, test_file: Path) -> Iterator[Outcome]:
    document = _load(test_file)
    groups = document.get("tests") or []
    label = f"{test_file.name}: "
    if _promtool(promtool, test_file).returncode == 0:
        for group in groups:
            yield Outcome(env, "rules", label + group.get("name", "?"), True)
        return
    # Something failed: run each group alone (rule_files made absolute) to name the failing ones.
    rule_files = [str((test_file.parent / f).resolve()) for f in document.get("rule_files", [])]
    with tempfile.TemporaryDirectory(prefix="obsgen-verify-") as tmp:
        for i, group in enumerate(groups):
            single = Path(tmp) / f"case-{i}.test.yaml"
            _dump(single, {**document, "rule_files": rule_files, "tests": [group]})
            result = _promtool(promtool, single)
            yield Outcome(env, "rules", label + group.get("name", "?"), result.returncode == 0,
                          _failure(result))
        if not groups:
            yield Outcome(env, "rules", label + "(file)", False, _failure(_promtool(promtool, test_file)))


def _failure(result: subprocess.CompletedProcess[str]) -> str:
    if result.returncode == 0:
        return ""
    lines = [line for line in (result.stderr + result.stdout).splitlines()
             if line.strip() and not line.startswith("Unit Testing:")]
    return "\n".join(lines[:12])


def _dump(path: Path, document: Any) -> None:
    import yaml

    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def _routing_tests(amtool: str, env: str, routing: Path) -> Iterator[Outcome]:
    from obsgen import routing as r

    document = _load(routing)
    config_path = (routing.parent / document["alertmanager_config"]).resolve()
    config = _load(config_path)
    for case in document.get("tests") or []:
        labels = {k: str(v) for k, v in case["labels"].items()}
        if "receivers" in case:
            want = ",".join(case["receivers"])
            result = subprocess.run(
                [amtool, "config", "routes", "test", f"--config.file={config_path}",
                 f"--verify.receivers={want}", *(f"{k}={v}" for k, v in sorted(labels.items()))],
                capture_output=True, text=True, timeout=60)
            said = [line for line in (result.stdout + result.stderr).splitlines()
                    if line.strip() and not line.startswith("WARNING")]
            got = said[0].strip() if said else "(nothing)"
            yield Outcome(env, "routing", case["name"], result.returncode == 0,
                          "" if result.returncode == 0 else f"expected {want}, amtool routes it to {got}")
        if "inhibited" in case:
            got_inhibited = r.inhibited(config, labels, [{k: str(v) for k, v in f.items()}
                                                         for f in case.get("firing", [])])
            yield Outcome(env, "inhibition", case["name"], got_inhibited == case["inhibited"],
                          "" if got_inhibited == case["inhibited"] else
                          f"expected {'inhibited' if case['inhibited'] else 'not inhibited'}, "
                          f"the inhibit rules say {'inhibited' if got_inhibited else 'not inhibited'}")
