"""`obsgen verify`: run the generated rule and routing tests against the files in the output directory.

Rule tests run with `promtool test rules`, one call per test file; when a file
fails, its test groups are run one by one so the report names every failing
case (promtool 2.42 does not name the group of a failed expression test).
Routing cases run with `amtool config routes test --verify.receivers` against
each config `routing.yaml` lists (the standalone config and the shared one:
obsgen's subtree inside other teams' config), every case on each unless it
names one; the inhibition cases are evaluated here on the same configs, since
amtool cannot. Outcomes name the config (`[shared] ...`). When the environment
has a Kubernetes output, the cases that name no config also run (`[operator]`)
on the config the Prometheus Operator builds from its AlertmanagerConfig
(obsgen.compile.k8s_operator). The shared config is
tested with obsgen's parts taken from `alertmanager/subtree.yaml` (what `apply`
puts into a shared Alertmanager), and a copy of them in the shared file that
is not the subtree's is reported. Everything reads the committed files, so a
hand edit is caught.
"""
from __future__ import annotations

import copy
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


def verify(out: Path, envs: list[str], jobs: int = 0) -> Iterator[Outcome]:
    """Every outcome, in environment then file order; the rule test files run `jobs` promtool processes at
    a time (0: one per CPU), since promtool uses one core per file."""
    from concurrent.futures import ThreadPoolExecutor

    paths = tools()
    files = {}
    for env in envs:
        root = out / env
        if not root.is_dir():
            raise ObsgenError(f"{root} does not exist: run `obsgen build` first")
        files[env] = sorted((root / "tests" / "rules").glob("*.test.yaml"))
    # the largest files start first, so that no long one is left running alone at the end; the outcomes are
    # still reported in environment then file order
    largest_first = sorted(((env, f) for env in envs for f in files[env]), key=lambda job: -job[1].stat().st_size)
    with ThreadPoolExecutor(max_workers=jobs or _cpus()) as pool:
        runs = {(env, f): pool.submit(lambda e, f: list(_rule_tests(paths["promtool"], e, f)), env, f)
                for env, f in largest_first}
        for env in envs:
            for test_file in files[env]:
                yield from runs[(env, test_file)].result()
            routing = out / env / "tests" / "routing.yaml"
            if routing.exists():
                yield from _routing_tests(paths["amtool"], env, routing)


def _cpus() -> int:
    import os

    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _load(path: Path) -> Any:
    import yaml

    from obsgen.compile.render import load_yaml

    try:
        return load_yaml(path.read_bytes())
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


def _configs(routing: Path, document: dict[str, Any]) -> dict[str, Path]:
    """The Alertmanager configs the cases run against, by name (`configs:`; an older file's single
    `alertmanager_config:` is one config without a name)."""
    named = document.get("configs")
    if isinstance(named, dict) and named:
        return {str(name): (routing.parent / str(path)).resolve() for name, path in named.items()}
    if document.get("alertmanager_config"):
        return {"": (routing.parent / str(document["alertmanager_config"])).resolve()}
    raise ObsgenError(f"{routing}: names no Alertmanager config to test (no `configs:`): run `obsgen build`")


def _subtree(routing: Path, document: dict[str, Any], configs: dict[str, Path], loaded: dict[str, Any],
             scratch: Path) -> tuple[str, str] | None:
    """Put obsgen's parts from the subtree file (`subtree: {file, into, owner}`) into the config named
    `into`, in place of the ones it has, so the cases test what `apply` deploys into a shared config.
    Returns (that config's name, what differed from its own copy of obsgen's parts, or "")."""
    from obsgen.compile import amtree

    spec = document.get("subtree")
    if not isinstance(spec, dict) or spec.get("into") not in configs:
        return None
    name, path = str(spec["into"]), (routing.parent / str(spec["file"])).resolve()
    parts = _load(path)
    try:
        owner = amtree.Owner(**spec["owner"])
        route, position = parts["route"], parts.get("position", amtree.FIRST)
        receivers, rules = list(parts.get("receivers") or []), list(parts.get("inhibit_rules") or [])
    except (KeyError, TypeError, AttributeError) as exc:
        raise ObsgenError(f"{path}: not obsgen's subtree of an Alertmanager config ({exc}): run `obsgen build`") \
            from None
    try:
        had = amtree.extract(loaded[name], owner)
    except amtree.OwnershipError as exc:
        raise ObsgenError(f"{configs[name]}: {exc}") from None
    differs = [what for what, ok in (
        ("route", amtree.normal(had.route) == amtree.normal(route)),
        (f"route's place ({had.position or 'none'} there, {position} in the subtree)", had.position == position),
        ("receivers", amtree.normal(had.receivers) == amtree.normal({r["name"]: r for r in receivers})),
        ("inhibit rules", amtree.normal(had.inhibit_rules) == amtree.normal(rules))) if not ok]
    merged = copy.deepcopy(loaded[name])
    amtree.place(merged, owner, route=copy.deepcopy(route), position=position, receivers=copy.deepcopy(receivers),
                 drop_receivers=[n for n in had.receivers if n not in {r["name"] for r in receivers}],
                 inhibit_rules=copy.deepcopy(rules))
    configs[name], loaded[name] = scratch / f"{name}-alertmanager.yaml", merged
    _dump(configs[name], merged)
    return name, (f"{document['configs'][name]} has other {', '.join(differs)} of obsgen's than {spec['file']}; "
                  f"the cases ran with the subtree's" if differs else "")


def _routing_tests(amtool: str, env: str, routing: Path) -> Iterator[Outcome]:
    document = _load(routing)
    configs = _configs(routing, document)
    loaded = {name: _load(path) for name, path in configs.items()}
    for name, config in loaded.items():
        if not isinstance(config, dict):
            raise ObsgenError(f"{configs[name]}: not an Alertmanager config (a YAML mapping): run `obsgen build`")
    with tempfile.TemporaryDirectory(prefix="obsgen-verify-") as scratch:
        placed = _subtree(routing, document, configs, loaded, Path(scratch))
        if placed:
            name, problem = placed
            yield Outcome(env, "routing", f"[{name}] obsgen's part of the config is {document['subtree']['file']}",
                          not problem, problem)
        yield from _cases(amtool, env, document, configs, loaded)
        amc = routing.parent.parent / "kubernetes" / "alertmanagerconfig.yaml"
        if amc.exists():
            yield from _operator_cases(amtool, env, document, amc, Path(scratch))


# A cluster's own Alertmanager config, which the Operator puts obsgen's AlertmanagerConfig into: another team's
# namespace routed to that team, everything else to the root's receiver.
OPERATOR_ROOT = {"route": {"receiver": "cluster-default",
                           "routes": [{"receiver": "other-team", "matchers": ['namespace="other-team"']}]},
                 "receivers": [{"name": "cluster-default"}, {"name": "other-team"}]}


def _operator_cases(amtool: str, env: str, document: dict[str, Any], path: Path, scratch: Path) -> Iterator[Outcome]:
    """The cases that name no config, run on what the Prometheus Operator builds from the generated
    AlertmanagerConfig inside OPERATOR_ROOT (`[operator]`, secrets as placeholders): the alerts carry the
    resource's namespace label, the expected receivers have the names the Operator gives them; and the first
    routed alert of another namespace, or without one, reaches none of obsgen's receivers."""
    from obsgen.compile import amtree, k8s_operator

    amc = _load(path)
    if not isinstance(amc, dict):
        raise ObsgenError(f"{path}: not an AlertmanagerConfig (a YAML mapping): run `obsgen build`")
    try:
        merged = k8s_operator.merge(OPERATOR_ROOT, amc, k8s_operator.placeholders(amc))
    except ObsgenError as exc:
        raise ObsgenError(f"{path}: {exc}") from None
    namespace = str(amc["metadata"]["namespace"])
    owner = (document.get("subtree") or {}).get("owner")
    prefix = amtree.Owner(**owner).prefix if owner else ""

    def ours(receiver: str) -> str:
        return k8s_operator.receiver_name(amc, receiver.removeprefix(prefix)) if receiver.startswith(prefix) \
            else receiver

    def renamed(text: str, receivers: list[str]) -> str:
        for receiver in receivers:
            text = text.replace(receiver, ours(receiver))
        return text

    cases = [{**case, "labels": {**case["labels"], "namespace": namespace},
              **({"name": renamed(case["name"], case["receivers"]), "receivers": [ours(r) for r in case["receivers"]]}
                 if "receivers" in case else {}),
              **({"firing": [{**f, "namespace": namespace} for f in case["firing"]]} if "firing" in case else {})}
             for case in document.get("tests") or [] if "config" not in case]
    routed = next((case for case in cases if "receivers" in case), None)
    if routed:
        alert = routed["labels"].get("alertname", routed["name"])
        cases += [{"name": f"{alert} of another namespace (namespace=other-team) reaches that team's receiver "
                           f"other-team", "labels": {**routed["labels"], "namespace": "other-team"},
                   "receivers": ["other-team"]},
                  {"name": f"{alert} without the namespace label reaches none of obsgen's receivers but the root's",
                   "labels": {k: v for k, v in routed["labels"].items() if k != "namespace"},
                   "receivers": ["cluster-default"]}]
    config = scratch / "operator-alertmanager.yaml"
    _dump(config, merged)
    yield from _cases(amtool, env, {"tests": cases}, {"operator": config}, {"operator": merged})


def _cases(amtool: str, env: str, document: dict[str, Any], configs: dict[str, Path],
           loaded: dict[str, Any]) -> Iterator[Outcome]:
    from obsgen.compile import routing as r

    for name, config_path in configs.items():
        tag = f"[{name}] " if name else ""
        for case in document.get("tests") or []:
            if case.get("config", name) != name:
                continue
            labels = {k: str(v) for k, v in case["labels"].items()}
            if "receivers" in case:
                want = ",".join(case["receivers"])
                result = subprocess.run(
                    [amtool, "config", "routes", "test", f"--config.file={config_path}",
                     f"--verify.receivers={want}", *(f"{k}={v}" for k, v in sorted(labels.items()))],
                    capture_output=True, text=True, timeout=60)
                said = [line for line in (result.stdout + result.stderr).splitlines()
                        if line.strip() and not line.lower().startswith("warning")]
                got = said[0].strip() if said else "(nothing)"
                yield Outcome(env, "routing", tag + case["name"], result.returncode == 0,
                              "" if result.returncode == 0 else f"expected {want}, amtool routes it to {got}")
            if "inhibited" in case:
                got_inhibited = r.inhibited(loaded[name], labels, [{k: str(v) for k, v in f.items()}
                                                                   for f in case.get("firing", [])])
                yield Outcome(env, "inhibition", tag + case["name"], got_inhibited == case["inhibited"],
                              "" if got_inhibited == case["inhibited"] else
                              f"expected {'inhibited' if case['inhibited'] else 'not inhibited'}, "
                              f"the inhibit rules say {'inhibited' if got_inhibited else 'not inhibited'}")
