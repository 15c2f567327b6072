"""`obsgen diff` and the Kubernetes resources (issue 21, item 4).

No cluster runs here, and none is faked: what is tested is what happens without one -- kubectl missing, or
kubectl without a current context -- which must say so in one note, name the GitOps path, compare nothing
and change no exit code; and which names obsgen would compare against a cluster's `kubectl get -o name`
(its ownership labels, the names of the generated resources). The comparison itself (`kubectl diff
--server-side -k`, the owned leftovers) needs a cluster and is not run here (docs/kubernetes.md says so).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest
from conftest import REFERENCE_SPEC
from localstack import fresh_dev_backends
from stack import Stack

from obsgen.compile import compile_env
from obsgen.deploy import kubernetes
from obsgen.spec import load_spec

TOKEN = "glsa_kubernetes_diff_token_0123456789"
GITOPS = "deliver generated/dev/kubernetes/ the GitOps way (commit, then let Argo CD or Flux sync it)"


@pytest.fixture(scope="module")
def model():
    return load_spec(str(REFERENCE_SPEC))


def test_without_kubectl_nothing_is_compared_and_the_note_says_so(model) -> None:
    result = kubernetes.cluster_diff(model, model.environment("dev"), kubectl=None)
    assert result == kubernetes.ClusterDiff(
        note=f"dev: Kubernetes resources not compared: kubectl is not installed; {GITOPS}")


@pytest.fixture
def no_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    monkeypatch.setenv("KUBECONFIG", str(config))  # a kubeconfig without a context: no cluster to ask
    return kubectl


def test_kubectl_without_a_current_context_compares_nothing_and_says_so(model, no_context: str) -> None:
    result = kubernetes.cluster_diff(model, model.environment("dev"), kubectl=no_context)
    assert (result.text, result.changed) == ("", False)
    assert result.note.startswith("dev: Kubernetes resources not compared: kubectl has no current context (")
    assert result.note.endswith(f"); {GITOPS}")


def test_only_obsgens_resources_of_this_service_and_environment_are_selected(model) -> None:
    # the ownership labels every generated resource carries (docs/kubernetes.md)
    assert kubernetes.owner_selector(model, model.environment("dev")) == (
        "app.kubernetes.io/managed-by=obsgen,app.kubernetes.io/part-of=selftest,obsgen.io/environment=dev")


def test_the_generated_resources_are_named_as_kubectl_get_names_them(model) -> None:
    env = model.environment("dev")
    files = {a.path.rsplit("/", 1)[1]: a.content for a in compile_env(model, env, ("kubernetes",))}
    names = kubernetes.generated_names(files)
    kinds = sorted(name.split("/", 1)[0] for name in names)
    # one PrometheusRule per rule file (4 in dev), one AlertmanagerConfig, one ConfigMap per dashboard (1)
    assert kinds == ["alertmanagerconfig.monitoring.coreos.com", "configmap"] + [
        "prometheusrule.monitoring.coreos.com"] * 4
    assert len(names) == 6 and "kustomization.yaml" in files


# --- the CLI ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack(components=("alertmanager", "prometheus"), relative_config=True, discover=False) as s:
        s.initial_alertmanager_config = s.alertmanager_config_file.read_text()
        yield s


def test_diff_without_a_cluster_notes_it_once_and_keeps_its_exit_code(run_cli, stack: Stack, no_context: str,
                                                                     monkeypatch, tmp_path: Path) -> None:
    with fresh_dev_backends(stack, monkeypatch, tmp_path / "state", TOKEN):
        assert run_cli("apply", "--env", "dev", "--yes").code == 0
        result = run_cli("diff", "--env", "dev", "--exit-code")
        assert result.code == 0, result.out + result.err  # nothing differs on the backends; no cluster compared
        lines = [line for line in result.err.splitlines() if "Kubernetes" in line]
        assert len(lines) == 1 and lines[0].startswith("obsgen: note: dev: Kubernetes resources not compared: ")
        assert lines[0].endswith(GITOPS)
        only = run_cli("diff", "--env", "dev", "--only", "grafana")  # a backend named: Kubernetes not asked
        assert only.code == 0 and "Kubernetes" not in only.err
        json = run_cli("diff", "--env", "dev", "--format", "json")
        assert json.err.count("Kubernetes resources are compared in the text format only") == 1
