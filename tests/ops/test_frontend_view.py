"""The API's view of its namespace as the Pulumi program declares it (under mocks) is exactly what
frontend/services/waiting.py needs: the stand-in authorizes with the declared Role and nothing more."""

from datetime import datetime, timezone

import pytest

from components.k8s.frontend import Frontend, FrontendArgs
from frontend.core.config import FrontendSettings
from frontend.services.waiting import GPU_NODE, ModelServerView
from tests.fixtures import kube_api as k
from tests.fixtures.kube_api import KubeApi
from tests.frontend.helpers import run_async
from tests.infra.mockrun import Recorder, construct, k8s_provider


@pytest.fixture
def declared():
    """The Role, RoleBinding and Deployment the Frontend component declares."""
    import pulumi

    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project="kiosk", stack="test", preview=False, monitor=recorder.monitor())
    construct(lambda: Frontend("frontend", FrontendArgs(
        provider=k8s_provider(), namespace="kiosk", service_account_name="kiosk-frontend", image="img",
        redis_url="u", storage_url="gs://b", public_url="https://kiosk.example.org")))
    (role,) = recorder.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
    (binding,) = recorder.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    (deployment,) = recorder.of_type("kubernetes:apps/v1:Deployment")
    return role, binding, deployment


def test_the_role_lists_and_watches_pods_and_events_of_the_namespace_only(declared):
    role, binding, deployment = declared
    assert role["metadata"]["namespace"] == "kiosk"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["list", "watch"]}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kiosk-frontend", "namespace": "kiosk"}]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KIOSK_KUBE_VIEW"] == "in-cluster"


def _reason(role_rules, tmp_path) -> str | None:
    api = KubeApi(role=(role_rules, "kiosk"))
    try:
        at = datetime.now(timezone.utc).replace(microsecond=0)
        pod = api.put(k.pod("tf-serving-1", "tf-serving", at, unschedulable="0/2 nodes are available"))
        api.put(k.event("tf.1", pod, "TriggeredScaleUp", "pod triggered scale-up", at, source="cluster-autoscaler"))
        view = ModelServerView.from_settings(FrontendSettings(kube_view=str(api.kubeconfig(tmp_path / "kc"))))
        return run_async(view.reason)
    finally:
        api.stop()


def test_the_declared_role_is_enough_for_the_apis_view(declared, tmp_path):
    assert _reason(declared[0]["rules"], tmp_path) == GPU_NODE


def test_a_narrower_role_leaves_the_api_without_a_reason(tmp_path):
    assert _reason([{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]}], tmp_path) is None
