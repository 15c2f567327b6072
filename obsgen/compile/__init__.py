"""One pure compile function per target, all with the same signature, and what the targets share:
conventions (label, metric, file and uid names), queries (PromQL), routing and amtree (Alertmanager trees),
render and yaml_writer (the canonical bytes of every generated file).

`compile_all` runs every target for the chosen environments and returns the
artifacts (manifest included); nothing here touches the file system.
"""
from __future__ import annotations

from typing import Callable, Collection, Iterable

from obsgen.model.artifact import Artifact
from obsgen.model import Environment, Model

Target = Callable[[Model, Environment], list[Artifact]]

# The targets whose files are deployed, and the directory of an environment's tree each writes into (only
# there); `diff` and `apply` read these directories from an up-to-date output instead of compiling them.
DEPLOYED = {"grafana": "grafana/", "prometheus": "prometheus/", "alertmanager": "alertmanager/"}


def targets() -> dict[str, Target]:
    """Targets by name; each module is imported only when builds run (start-up stays lean)."""
    from obsgen.compile.alertmanager import compile_alertmanager
    from obsgen.compile.docs import compile_docs
    from obsgen.compile.grafana import compile_grafana
    from obsgen.compile.kubernetes import compile_kubernetes
    from obsgen.compile.openslo import compile_openslo
    from obsgen.compile.prometheus import compile_prometheus
    from obsgen.compile.routing_tests import compile_routing_tests
    from obsgen.compile.rule_tests import compile_rule_tests

    return {"grafana": compile_grafana, "slo": compile_openslo, "prometheus": compile_prometheus,
            "alertmanager": compile_alertmanager, "docs": compile_docs,
            "routing-tests": compile_routing_tests, "rule-tests": compile_rule_tests,
            "kubernetes": compile_kubernetes}


def compile_env(model: Model, env: Environment, only: Collection[str] = ()) -> list[Artifact]:
    """Every target's artifacts and the manifest; with `only`, just those targets (and no manifest)."""
    from collections import Counter

    from obsgen.compile.manifest import compile_manifest

    chosen = [t for name, t in targets().items() if not only or name in only]
    model = scoped(model, env)
    artifacts = sorted(a for target in chosen for a in target(model, env))
    duplicates = [p for p, n in Counter(a.path for a in artifacts).items() if n > 1]
    if duplicates:
        raise AssertionError(f"two targets produced the same file: {sorted(duplicates)}")
    return artifacts if only else artifacts + [compile_manifest(model, env, artifacts)]


def scoped(model: Model, env: Environment) -> Model:
    """The model an environment's compile sees: the spec with that one environment. What an environment's
    files hold can then depend on nothing of another environment (its manifest's `inputs_sha256` relies on it)."""
    from dataclasses import replace

    return replace(model, environments=(env,))


def compile_all(model: Model, envs: Iterable[Environment], only: Collection[str] = ()) -> list[Artifact]:
    return sorted(a for env in envs for a in compile_env(model, env, only))
