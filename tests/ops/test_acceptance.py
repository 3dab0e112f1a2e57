"""`kiosk ops acceptance`: rollouts watched, cold start split into phases from the cluster's objects, node
lifetimes followed by a watch and priced, and the whole flow against the real local kiosk for its jobs."""

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from frontend.ops import acceptance
from frontend.ops.cluster import connect, now
from frontend.ops.pricing import NodeLedger, NodeLife, Prices, cost, projection
from tests.fixtures import kube_api as k
from tests.fixtures.servers import wait_until
from tests.ops.conftest import healthy_kiosk, main

GPU = "gke-kiosk-gpu-7f3c"


def _cold_start(kube, submitted, *, pod_after=14, node_after=20, node_ready=95, scheduled=96, pulled=190,
                ready=250) -> None:
    """The cluster's record of a first job on an idle cluster, `submitted` plus the given seconds."""
    def t(seconds):
        return submitted + timedelta(seconds=seconds)
    kube.put(k.node(GPU, "gpu", "g2-standard-4", t(node_after), ready_at=t(node_ready), spot=True))
    serving = kube.put(k.pod("tf-serving-6b-q9z", "tf-serving", t(pod_after), node_name=GPU,
                             scheduled_at=t(scheduled), ready_at=t(ready)))
    kube.put(k.event("tf.1", serving, "TriggeredScaleUp", "pod triggered scale-up", t(pod_after + 1),
                     source="cluster-autoscaler"))
    kube.put(k.event("tf.2", serving, "Pulled", "Successfully pulled image amazon/aws-cli", t(pulled - 40),
                     field_path="spec.initContainers{model-sync}"))
    kube.put(k.event("tf.3", serving, "Pulled", "Successfully pulled image tensorflow/serving:2.18.0-gpu",
                     t(pulled), field_path="spec.containers{tf-serving}"))


def test_cold_start_is_split_into_phases_from_pod_node_and_events(kube, kubeconfig, at):
    healthy_kiosk(kube, at)
    submitted = at - timedelta(seconds=300, microseconds=-400_000)  # the cluster's clock has whole seconds
    _cold_start(kube, submitted.replace(microsecond=0))
    report = acceptance.cold_start(connect(str(kubeconfig)), submitted, submitted.replace(microsecond=0)
                                   + timedelta(seconds=262.5))
    assert "problem" not in report, report
    assert report["pod"] == "tf-serving-6b-q9z" and report["node"] == GPU and report["new_node"]
    assert report["phases_seconds"] == {"scale_up_requested": 14.0, "gpu_node_provisioned": 81.0,
                                        "image_pulled": 95.0, "model_loaded": 60.0, "first_predict": 12.5}


def test_cold_start_on_a_node_already_there_and_out_of_order_records(kube, kubeconfig, at):
    healthy_kiosk(kube, at)
    submitted = at - timedelta(seconds=300)
    _cold_start(kube, submitted, node_after=-600, node_ready=-590)
    cluster = connect(str(kubeconfig))
    report = acceptance.cold_start(cluster, submitted, submitted + timedelta(seconds=262))
    assert not report["new_node"] and report["phases_seconds"]["gpu_node_provisioned"] == 0
    assert report["phases_seconds"]["image_pulled"] == 190 - 14
    late = acceptance.cold_start(cluster, submitted, submitted + timedelta(seconds=200))  # result before Ready?
    assert late["problem"] == "cold start phases unknown or out of order: first_predict"
    assert acceptance.cold_start(cluster, at, at)["problem"] == "no TF-Serving pod was created for the first job"


def test_rollouts_are_awaited_through_a_watch(kube, kubeconfig, at):
    healthy_kiosk(kube, at)
    kube.put(k.deployment("frontend", 1, generation=2, observed=1))  # the new spec not yet seen
    cluster = connect(str(kubeconfig))
    assert acceptance.wait_for_rollouts(cluster, 1) == {
        "consumers-segmentation": True, "frontend": False, "tf-serving": True}
    result = {}
    waiting = threading.Thread(target=lambda: result.update(acceptance.wait_for_rollouts(cluster, 60)))
    waiting.start()
    wait_until(lambda: any("deployments?" in r and "watch=True" in r for r in kube.requests[-3:]), 30, "a watch")
    kube.put(k.deployment("frontend", 1, generation=2))
    waiting.join(30)
    assert result == {"consumers-segmentation": True, "frontend": True, "tf-serving": True}


def test_node_ledger_follows_nodes_that_come_and_go(kube, kubeconfig, at):
    healthy_kiosk(kube, at)
    ledger = NodeLedger(connect(str(kubeconfig))).start()
    kube.put(k.node(GPU, "gpu", "g2-standard-4", now(), ready_at=now(), spot=True))
    wait_until(lambda: GPU in ledger.nodes, 30, "the GPU node in the ledger")  # only the watch sees it
    kube.delete("nodes", GPU)
    wait_until(lambda: ledger.nodes[GPU].deleted is not None, 30, "the GPU node's deletion")
    lives = {life.name: life for life in ledger.stop()}
    assert set(lives) == {"gke-kiosk-system-0", "gke-kiosk-cpu-0", GPU}
    gpu = lives[GPU]
    assert gpu.pool == "gpu" and gpu.spot and gpu.cloud == "gke" and gpu.instance_type == "g2-standard-4"
    assert lives["gke-kiosk-system-0"].deleted is None


def test_cost_is_node_seconds_times_the_price_of_each_instance_type(at):
    prices = Prices.load()
    start, end = at, at + timedelta(hours=1)
    lives = [NodeLife("sys", "system", "e2-standard-4", False, "gke", at - timedelta(days=1)),
             NodeLife("gpu", "gpu", "g2-standard-4", True, "gke", at + timedelta(minutes=10),
                      deleted=at + timedelta(minutes=40)),
             NodeLife("odd", "cpu", "n9-imaginary-4", False, "gke", at, deleted=at + timedelta(minutes=6)),
             NodeLife("gone", "cpu", "e2-standard-4", True, "gke", at - timedelta(hours=2),
                      deleted=at - timedelta(hours=1))]
    bill = cost(lives, start, end, prices)
    assert bill["pools"]["system"]["node_seconds"] == 3600 and bill["pools"]["system"]["usd"] == pytest.approx(0.134)
    assert bill["pools"]["gpu"]["node_seconds"] == 1800 and bill["pools"]["gpu"]["usd"] == pytest.approx(0.11)
    assert bill["pools"]["cpu"]["node_seconds"] == 360 and bill["unpriced_instance_types"] == ["n9-imaginary-4"]
    assert bill["control_plane_usd"] == pytest.approx(0.10)
    assert bill["total_usd"] == pytest.approx(0.134 + 0.11 + 0.10)
    assert bill["prices"]["date"] == prices.date and "us-central1" in prices.source
    aws = cost([NodeLife("n", "gpu", "g6.xlarge", True, "eks", at)], start, end, prices)["pools"]["gpu"]["nodes"][0]
    assert aws["usd_per_hour"] == 0.8048 and aws["price"].startswith("on demand (Spot price unknown")


def test_projection_of_a_million_one_megapixel_images():
    # 2 MP in 100 s for $0.05: 5e7 s = 13,888.89 h for 5e7/100 * $0.05 = $25,000.
    assert projection(100, 2, 0.05) == {"images": 1_000_000, "megapixels_per_second": 0.02, "hours": 13888.89,
                                        "usd": 25000.0, "paper": {"images": 1_000_000, "hours": 5.5, "usd": 250.0}}


def test_prices_are_overridable_and_a_bad_price_file_is_a_clear_error(tmp_path, monkeypatch):
    mine = json.loads(Path(acceptance.__file__).with_name("prices.json").read_text())
    mine["instance_types"]["e2-standard-4"]["on_demand"] = 1.5
    (tmp_path / "mine.json").write_text(json.dumps(mine))
    monkeypatch.setenv("KIOSK_PRICES", str(tmp_path / "mine.json"))
    assert Prices.load().hourly("e2-standard-4", False) == (1.5, "on demand")
    del mine["instance_types"]["e2-standard-4"]["on_demand"]
    (tmp_path / "bad.json").write_text(json.dumps(mine))
    with pytest.raises(ValueError, match="no on_demand price for e2-standard-4"):
        Prices.load(tmp_path / "bad.json")
    assert main(["ops", "acceptance", "--prices", str(tmp_path / "missing.json")]) == 2


def test_nucleus_counts_are_checked_against_the_samples():
    sample = acceptance.load_samples()[0]
    assert sample.nuclei > 0 and sample.path.is_file()
    assert acceptance.nuclei_problem(sample, sample.nuclei) is None
    assert acceptance.nuclei_problem(sample, round(sample.nuclei * 0.8)) is None
    assert acceptance.nuclei_problem(sample, round(sample.nuclei * 0.7)).endswith(f"the sample has {sample.nuclei}")
    assert "0 nuclei found, the sample has" in acceptance.nuclei_problem(sample, 0)
    empty = acceptance.Sample(sample.path, 0, sample.pixels)
    assert acceptance.nuclei_problem(empty, 0) is None and "without any" in acceptance.nuclei_problem(empty, 3)


def _scale_up_when_the_first_upload_arrives(kube, uploads: Path, before: set) -> threading.Thread:
    """Play the cluster's part: once the first job's image is uploaded, KEDA makes a TF-Serving pod, the
    autoscaler a GPU node, the kubelet pulls the image and the model loads (each stamped as it happens)."""
    def scale_up():
        wait_until(lambda: set(uploads.rglob("*.tif")) - before, 120, "the first upload")
        pending = kube.put(k.pod("tf-serving-6b-q9z", "tf-serving", now(), unschedulable="0/2 nodes are available"))
        kube.put(k.event("tf.1", pending, "TriggeredScaleUp", "pod triggered scale-up", now(),
                         source="cluster-autoscaler"))
        kube.put(k.node(GPU, "gpu", "g2-standard-4", now(), spot=True))
        kube.put(k.node(GPU, "gpu", "g2-standard-4", now(), ready_at=now(), spot=True))
        created = pending["metadata"]["creationTimestamp"]
        kube.put(k.event("tf.2", pending, "Pulled", "Successfully pulled image", now(),
                         field_path="spec.containers{tf-serving}"))
        ready = k.pod("tf-serving-6b-q9z", "tf-serving", now(), node_name=GPU, scheduled_at=now(), ready_at=now())
        ready["metadata"]["creationTimestamp"] = created
        kube.put(ready)
        kube.put(k.deployment("tf-serving", 1))
    thread = threading.Thread(target=scale_up, daemon=True)
    thread.start()
    return thread


def test_acceptance_of_the_local_kiosk_from_an_idle_cluster(kube, kubeconfig, at, local_kiosk, tmp_path, capsys):
    healthy_kiosk(kube, at)
    uploads = local_kiosk.home / "bucket" / "uploads"
    cluster_part = _scale_up_when_the_first_upload_arrives(kube, uploads, set(uploads.rglob("*.tif")))
    code = main(["--url", local_kiosk.url, "ops", "acceptance", "--kubeconfig", str(kubeconfig), "--images", "6",
                 "--concurrency", "3", "--rollout-timeout", "5", "--report", str(tmp_path / "accept.json")])
    out = capsys.readouterr().out
    cluster_part.join(5)
    report = json.loads((tmp_path / "accept.json").read_text())
    assert code == 0, out
    assert report["passed"] and report["problems"] == [], report["problems"]
    assert all(report["rollouts"].values())
    first = report["first_result"]
    assert first["idle_at_start"] and first["cold_start"]["pod"] == "tf-serving-6b-q9z"
    assert first["cold_start"]["new_node"] and first["cold_start"]["node"] == GPU
    phases = first["cold_start"]["phases_seconds"]
    assert all(seconds >= 0 for seconds in phases.values())
    assert sum(phases.values()) == pytest.approx(first["seconds"], abs=1.1)  # the cluster's whole seconds
    assert len(report["results"]) == 7 and all(r["problem"] is None for r in report["results"])
    assert {r["sample"] for r in report["results"]} == {"nuclei-1.tif", "nuclei-2.tif"}
    speed = report["throughput"]
    assert speed["done"] == 6 and speed["images_per_second"] > 0 and speed["megapixels"] == 6 * 65536 / 1e6
    whole = report["cost"]["whole_run"]
    assert whole["pools"]["system"]["node_seconds"] == pytest.approx(whole["seconds"], abs=0.1)
    assert 0 < whole["pools"]["gpu"]["node_seconds"] <= whole["seconds"] + 1
    assert whole["total_usd"] > 0 and report["projection"]["hours"] > 0
    assert "PASSED" in out and "images/s" in out and "10^6 one-megapixel images" in out


def test_acceptance_fails_when_the_kiosk_misbehaves(kube, kubeconfig, at, local_kiosk, tmp_path, capsys):
    healthy_kiosk(kube, at)
    kube.put(k.node(GPU, "gpu", "g2-standard-4", at, ready_at=at))  # warm: no cold start expected
    samples = tmp_path / "samples"
    samples.mkdir()
    (samples / "nuclei-2.tif").write_bytes((acceptance.SAMPLES / "nuclei-2.tif").read_bytes())
    # A wrong expectation stands in for a kiosk that misses nuclei: it finds ~35 where "the sample has 400".
    (samples / "samples.json").write_text(json.dumps({"samples": [
        {"file": "nuclei-2.tif", "nuclei": 400, "pixels": 65536}]}))
    code = main(["--url", local_kiosk.url, "ops", "acceptance", "--kubeconfig", str(kubeconfig), "--images", "1",
                 "--samples", str(samples), "--report", str(tmp_path / "accept.json")])
    report = json.loads((tmp_path / "accept.json").read_text())
    assert code == 1 and not report["passed"]
    assert len(report["problems"]) == 2  # the first job and the one of the throughput run
    assert all(p.startswith("nuclei-2.tif: ") and p.endswith(" nuclei found, the sample has 400")
               for p in report["problems"]), report["problems"]
    assert report["first_result"]["idle_at_start"] is False and report["first_result"]["cold_start"] is None
    assert "FAILED" in capsys.readouterr().out
