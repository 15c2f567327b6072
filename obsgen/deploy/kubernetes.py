"""The Kubernetes side of `obsgen diff`: what a cluster holds against the spec's Kubernetes resources.

obsgen never applies Kubernetes resources: a GitOps tool (Argo CD, Flux) or `kubectl apply --server-side -k`
does, from the committed `generated/<env>/kubernetes/`. `diff` compares only when `kubectl` and a current
context are there: the environment's resources, compiled from the spec into a temporary directory (so that
a stale build never hides a change), through `kubectl diff --server-side -k DIR`, then the resources of the environment's
namespace that carry obsgen's ownership labels for this service and environment but are no longer generated
(a GitOps prune removes them). Nothing without those labels is ever listed, so other teams' objects never
show. Without kubectl or a context, `diff` says so in one note and compares nothing: the documented path is
then the GitOps one (commit, sync). Every kubectl call is bounded (KUBECTL_TIMEOUT).
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from obsgen.errors import ObsgenError
from obsgen.model import K8S_ENVIRONMENT, K8S_MANAGED_BY, K8S_PART_OF, Environment, Model

KUBECTL_TIMEOUT = 60.0  # seconds one kubectl call may take
KINDS = ("prometheusrules.monitoring.coreos.com", "alertmanagerconfigs.monitoring.coreos.com", "configmaps")
GROUPS = {"PrometheusRule": "prometheusrule.monitoring.coreos.com",
          "AlertmanagerConfig": "alertmanagerconfig.monitoring.coreos.com", "ConfigMap": "configmap"}


@dataclass(frozen=True)
class ClusterDiff:
    text: str = ""  # kubectl's diff of the generated resources, then the owned ones no longer generated
    changed: bool = False
    note: str = ""  # why nothing was compared (no kubectl, no context)


def cluster_diff(model: Model, env: Environment, kubectl: str | None = "") -> ClusterDiff:
    """Compare the environment's Kubernetes resources with the current kubectl context. `kubectl`: the
    program ("" finds it on PATH, None means there is none)."""
    import tempfile

    from obsgen.compile import compile_env

    assert env.kubernetes is not None
    program = shutil.which("kubectl") if kubectl == "" else kubectl
    gitops = (f"deliver generated/{env.name}/kubernetes/ the GitOps way (commit, then let Argo CD or Flux "
              f"sync it)")
    if program is None:
        return ClusterDiff(note=f"{env.name}: Kubernetes resources not compared: kubectl is not installed; {gitops}")
    context = _run([program, "config", "current-context"])
    if context.returncode != 0:
        return ClusterDiff(note=f"{env.name}: Kubernetes resources not compared: kubectl has no current context "
                                f"({_first_line(context)}); {gitops}")
    where = f"kubectl context {context.stdout.strip()!r}"
    files = {a.path.rsplit("/", 1)[1]: a.content for a in compile_env(model, env, ("kubernetes",))}
    with tempfile.TemporaryDirectory(prefix="obsgen-kubernetes-") as scratch:
        for name, content in files.items():
            Path(scratch, name).write_bytes(content)
        diff = _run([program, "diff", "--server-side", "--force-conflicts", "-k", scratch])
    if diff.returncode > 1:  # 0: no differences, 1: differences, more: kubectl or the server failed
        raise ObsgenError(f"kubectl diff of {env.name}'s Kubernetes resources against {where} failed: "
                          f"{_first_line(diff)}")
    owned = _run([program, "get", ",".join(KINDS), "-n", env.kubernetes.namespace, "-o", "name",
                  "-l", owner_selector(model, env)])
    if owned.returncode != 0:
        raise ObsgenError(f"kubectl get of obsgen's resources in {env.kubernetes.namespace} against {where} "
                          f"failed: {_first_line(owned)}")
    leftover = sorted(set(owned.stdout.split()) - generated_names(files))
    text = diff.stdout + "".join(f"- {name} (obsgen's for {env.name}, no longer generated: a GitOps prune "
                                 f"removes it)\n" for name in leftover)
    return ClusterDiff(text=text, changed=diff.returncode == 1 or bool(leftover))


def owner_selector(model: Model, env: Environment) -> str:
    """The label selector of the resources obsgen writes for this service and environment."""
    return f"{K8S_MANAGED_BY}=obsgen,{K8S_PART_OF}={model.service.name},{K8S_ENVIRONMENT}={env.name}"


def generated_names(files: dict[str, bytes]) -> set[str]:
    """`kind.group/name` (as `kubectl get -o name` prints them) of the resources among `files`."""
    import yaml

    names = set()
    for name, content in sorted(files.items()):
        resource = yaml.load(content, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        if isinstance(resource, dict) and resource.get("kind") in GROUPS:
            names.add(f"{GROUPS[resource['kind']]}/{resource['metadata']['name']}")
    return names


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ObsgenError(f"`{' '.join(argv[:3])} ...` did not finish within {KUBECTL_TIMEOUT:g} s") from None
    except OSError as exc:
        raise ObsgenError(f"cannot run {argv[0]}: {exc.strerror}") from None


def _first_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
    return lines[0][:300] if lines else f"exit {result.returncode}"
