"""`kiosk ops status` and `kiosk ops logs` through the `kubernetes` client against the API stand-in."""

import json
from datetime import timedelta

import pytest

from tests.fixtures import kube_api as k
from tests.ops.conftest import healthy_kiosk, main

GPU_REASON = "0/2 nodes are available: 2 Insufficient nvidia.com/gpu. preemption: 0/2 nodes are available"


def status(kubeconfig, tmp_path, capsys) -> tuple[int, dict, str]:
    code = main(["ops", "status", "--kubeconfig", str(kubeconfig), "--report", str(tmp_path / "status.json")])
    return code, json.loads((tmp_path / "status.json").read_text()), capsys.readouterr().out


def test_healthy_kiosk_reports_pools_pods_scaling_queues_and_warnings(kube, kubeconfig, at, tmp_path, capsys):
    healthy_kiosk(kube, at)
    code, report, out = status(kubeconfig, tmp_path, capsys)
    assert code == 0, out
    assert report["healthy"] and report["problems"] == []
    assert list(report["nodes"]) == ["system", "cpu"]
    system = report["nodes"]["system"][0]
    assert system["ready"] and system["instance_type"] == "e2-standard-4" and system["zone"] == "us-central1-a"
    assert 2 * 86400 - 5 <= system["age_seconds"] <= 2 * 86400 + 60
    assert {p["component"]: p["phase"] for p in report["pods"]} == {
        "redis": "Running", "frontend": "Running", "consumers-segmentation": "Running"}
    scaled = {s["name"]: s for s in report["scaled_objects"]}
    assert scaled["consumers-segmentation"]["active"] and scaled["consumers-segmentation"]["replicas"] == 1
    assert not scaled["tf-serving"]["active"] and scaled["tf-serving"]["replicas"] == 0
    assert scaled["tf-serving"]["max"] == 1 and scaled["tf-serving"]["queues"] == {"queue:segmentation": 3.0}
    assert [w["reason"] for w in report["warnings"]] == ["Unhealthy"]
    assert "namespace kiosk: healthy" in out and "queue queue:segmentation 3" in out
    assert "Readiness probe failed" in out


def test_pending_gpu_pod_shows_the_schedulers_reason_and_the_autoscalers_scale_up(kube, kubeconfig, at, tmp_path,
                                                                                  capsys):
    healthy_kiosk(kube, at)
    pending = kube.put(k.pod("tf-serving-6b-q9z", "tf-serving", at - timedelta(seconds=40), unschedulable=GPU_REASON))
    kube.put(k.event("tf.1", pending, "FailedScheduling", GPU_REASON, at - timedelta(seconds=39), type_="Warning",
                     source="default-scheduler"))
    kube.put(k.event("tf.2", pending, "TriggeredScaleUp",
                     "pod triggered scale-up: [{gke-kiosk-gpu 0->1 (max: 1)}]", at - timedelta(seconds=30),
                     source="cluster-autoscaler"))
    code, report, out = status(kubeconfig, tmp_path, capsys)
    assert code == 0, out  # a node is on its way: waiting, not broken
    view = next(p for p in report["pods"] if p["component"] == "tf-serving")
    assert view["phase"] == "Pending" and view["unschedulable"] == GPU_REASON
    assert view["autoscaler"] == {"adding_node": True, "message": "pod triggered scale-up: [{gke-kiosk-gpu 0->1 (max: 1)}]"}
    assert f"unschedulable: {GPU_REASON}" in out and "cluster autoscaler adding a node" in out


def _no_scale_up(kube, at):
    pending = kube.put(k.pod("tf-serving-6b-q9z", "tf-serving", at - timedelta(minutes=3), unschedulable=GPU_REASON))
    kube.put(k.event("tf.3", pending, "NotTriggerScaleUp",
                     "pod didn't trigger scale-up: 1 max node group size reached", at - timedelta(minutes=2),
                     source="cluster-autoscaler"))


def _crash_looping_frontend(kube, at):
    kube.put(k.pod("frontend-7d9f-x2x7q", "frontend", at, node_name="gke-kiosk-system-0", scheduled_at=at,
                   waiting="CrashLoopBackOff", restarts=7))
    kube.put(k.deployment("frontend", 1, ready=0))


def _node_not_ready(kube, at):
    kube.put(k.node("gke-kiosk-cpu-0", "cpu", "e2-standard-4", at - timedelta(hours=1)))


def _scaled_object_broken(kube, at):
    kube.put(k.scaled_object("tf-serving", "tf-serving", ["queue:segmentation"], 1, active=False, ready=False,
                             message="error parsing redis streams metadata: no address given"))


def _metrics_server_down(kube, at):
    kube.metrics.clear()


@pytest.mark.parametrize("breakage, problem", [
    (_no_scale_up, "cannot be scheduled (0/2 nodes are available: 2 Insufficient nvidia.com/gpu. preemption: 0/2 "
                   "nodes are available) and pod didn't trigger scale-up: 1 max node group size reached"),
    (_crash_looping_frontend, "pod frontend-7d9f-x2x7q: CrashLoopBackOff"),
    (_node_not_ready, "node gke-kiosk-cpu-0 (cpu pool) is not ready"),
    (_scaled_object_broken, "ScaledObject tf-serving is not ready: error parsing redis streams metadata"),
    (_metrics_server_down, "queue queue:segmentation of consumers-segmentation: KEDA's metrics server answered 404"),
])
def test_unhealthy_kiosk_exits_non_zero_with_the_problem(kube, kubeconfig, at, tmp_path, capsys, breakage, problem):
    healthy_kiosk(kube, at)
    breakage(kube, at)
    code, report, out = status(kubeconfig, tmp_path, capsys)
    assert code == 1, out
    assert not report["healthy"] and any(problem in p for p in report["problems"]), report["problems"]
    assert "UNHEALTHY" in out


def test_frontend_without_ready_pod_is_unhealthy_but_a_scaled_to_zero_workload_is_not(kube, kubeconfig, at,
                                                                                      tmp_path, capsys):
    healthy_kiosk(kube, at)
    kube.put(k.deployment("consumers-segmentation", 2, ready=0))  # KEDA's: scaling up is its business
    assert status(kubeconfig, tmp_path, capsys)[0] == 0
    kube.put(k.stateful_set("redis", 1, 0))
    code, report, _ = status(kubeconfig, tmp_path, capsys)
    assert code == 1 and report["problems"] == ["StatefulSet redis has no ready pod (0/1)"]


def test_unreachable_or_refusing_cluster_is_a_clear_error(kube, kubeconfig, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert main(["ops", "status", "--kubeconfig", str(tmp_path / "missing")]) == 2
    assert "no kubeconfig at" in capsys.readouterr().err
    kube.token = "rotated"
    assert main(["ops", "status", "--kubeconfig", str(kubeconfig)]) == 2
    assert "the cluster's API answered 401 Unauthorized" in capsys.readouterr().err


def test_kubeconfig_comes_from_the_environment(kube, kubeconfig, at, capsys, monkeypatch):
    healthy_kiosk(kube, at)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    assert main(["ops", "status"]) == 0
    assert any(r.startswith("GET /api/v1/nodes") for r in kube.requests)


def _consumer(kube, name, at):
    kube.put(k.pod(name, "consumers-segmentation", at - timedelta(hours=1), node_name="gke-kiosk-cpu-0",
                   containers=["consumer"], scheduled_at=at - timedelta(hours=1), ready_at=at - timedelta(hours=1)))


def test_logs_of_a_component_interleave_its_pods_by_time(kube, kubeconfig, at, capsys):
    healthy_kiosk(kube, at)
    _consumer(kube, "consumers-segmentation-5c-aaaaa", at)
    _consumer(kube, "consumers-segmentation-5c-bbbbb", at)
    kube.put(k.pod("consumers-segmentation-5c-ccccc", "consumers-segmentation", at, unschedulable="no room"))
    for seconds, pod, text in [(30, "aaaaa", "a first"), (20, "bbbbb", "b first"), (10, "aaaaa", "a second"),
                               (5, "bbbbb", "b second"), (3600, "aaaaa", "a long ago")]:
        kube.log("kiosk", f"consumers-segmentation-5c-{pod}", "consumer", at - timedelta(seconds=seconds, microseconds=1),
                 text)
    assert main(["ops", "logs", "consumers", "--since", "10m", "--kubeconfig", str(kubeconfig)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == ["a first", "b first", "a second", "b second"]
    assert lines[0].startswith("consumers-segmentation-5c-aaaaa ")
    assert main(["ops", "logs", "consumers-segmentation", "--since", "2h", "--kubeconfig", str(kubeconfig)]) == 0
    assert "a long ago" in capsys.readouterr().out


def test_logs_of_an_unknown_component_or_bad_duration_are_clear_errors(kube, kubeconfig, at, capsys):
    healthy_kiosk(kube, at)
    assert main(["ops", "logs", "tf-serving", "--kubeconfig", str(kubeconfig)]) == 2
    err = capsys.readouterr().err
    assert "no pod of 'tf-serving' in namespace kiosk" in err and "consumers-segmentation, frontend, redis" in err
    assert main(["ops", "logs", "frontend", "--since", "ten minutes", "--kubeconfig", str(kubeconfig)]) == 2
    assert "durations look like 90s, 10m" in capsys.readouterr().err
