"""The job view says why a job waits for the model server, from the API's read-only view of its namespace
(the Kubernetes API stand-in over real HTTP)."""

import asyncio
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import redis
from playwright.sync_api import expect

from consumers.jobs import JobStatus
from consumers.jobstore import JobStore
from frontend.core.config import FrontendSettings
from frontend.services import waiting
from frontend.services.waiting import ModelServerView
from tests.fixtures import kube_api as k
from tests.fixtures.kube_api import KubeApi
from tests.fixtures.servers import wait_until
from tests.frontend.browser import drop_file
from tests.frontend.helpers import run_async, tiff_bytes

GPU_REASON = "0/2 nodes are available: 2 Insufficient nvidia.com/gpu"
POD = "tf-serving-6b-q9z"


@pytest.fixture
def kube(tmp_path):
    api = KubeApi()
    api.path = api.kubeconfig(tmp_path / "kubeconfig")
    yield api
    api.stop()


def _pending(kube, at, autoscaler: str | None):
    pod = kube.put(k.pod(POD, "tf-serving", at, unschedulable=GPU_REASON))
    if autoscaler:
        message = {"TriggeredScaleUp": "pod triggered scale-up: [{gke-kiosk-gpu 0->1 (max: 1)}]",
                   "NotTriggerScaleUp": "pod didn't trigger scale-up: 1 max node group size reached"}[autoscaler]
        kube.put(k.event("tf.1", pod, autoscaler, message, at + timedelta(seconds=5), source="cluster-autoscaler"))


def _starting(kube, at, event: str):
    pod = kube.put(k.pod(POD, "tf-serving", at, node_name="gke-kiosk-gpu-0", scheduled_at=at))
    kube.put(k.event("tf.2", pod, event, "image tensorflow/serving:2.18.0-gpu", at, field_path="spec.containers{tf-serving}"))


@pytest.mark.parametrize("scene, reason", [
    (lambda kube, at: None, waiting.NO_POD),
    (lambda kube, at: _pending(kube, at, "TriggeredScaleUp"), "waiting for a GPU node to start"),
    (lambda kube, at: _pending(kube, at, None), f"waiting: {GPU_REASON}"),
    (lambda kube, at: _pending(kube, at, "NotTriggerScaleUp"),
     f"waiting: {GPU_REASON}; pod didn't trigger scale-up: 1 max node group size reached"),
    (lambda kube, at: _starting(kube, at, "Pulling"), waiting.PULLING),
    (lambda kube, at: _starting(kube, at, "Pulled"), waiting.LOADING),
    (lambda kube, at: kube.put(k.pod(POD, "tf-serving", at, node_name="n", scheduled_at=at, ready_at=at)), None),
])
def test_reason_from_the_model_servers_pods_and_events(kube, scene, reason):
    at = datetime.now(timezone.utc).replace(microsecond=0)
    kube.put(k.pod("frontend-1", "frontend", at, node_name="n", scheduled_at=at))  # not the model server
    scene(kube, at)
    view = ModelServerView.from_settings(FrontendSettings(kube_view=str(kube.path)))
    assert view.namespace == "kiosk"
    assert run_async(view.reason) == reason
    asked = [r for r in kube.requests if "/pods" in r]
    assert asked and all("labelSelector=app.kubernetes.io%2Fname%3Dtf-serving" in r for r in asked)


def test_reason_is_read_once_per_cache_period_and_a_refusing_cluster_gives_none(kube):
    view = ModelServerView.from_settings(FrontendSettings(kube_view=str(kube.path)))

    async def views(count: int) -> list:
        return await asyncio.gather(*(view.reason() for _ in range(count)))
    assert run_async(lambda: views(20)) == [waiting.NO_POD] * 20
    assert len(kube.requests) == 2  # pods and events, once for 20 concurrent job views
    kube.token = "revoked"
    view.cache_seconds = 0
    assert run_async(view.reason) is None


def test_the_job_view_says_why_a_queued_job_waits(kube, configure, api_for, redis_url):
    at = datetime.now(timezone.utc).replace(microsecond=0)
    _pending(kube, at, "TriggeredScaleUp")
    api = api_for(configure(kube_view=str(kube.path)))
    with httpx.Client(base_url=api.url, timeout=30) as client:
        upload = client.post("/api/upload", files={"file": ("cells.tif", tiff_bytes())}).json()["uploadedName"]
        key = client.post("/api/predict", json={"jobType": "segmentation",
                                                "imageName": upload.removeprefix("uploads/")}).json()["hash"]
        view = client.get(f"/api/jobs/{key}").json()
        assert (view["status"], view["waiting"]) == ("new", "waiting for a GPU node to start")
        kube.put(k.pod(POD, "tf-serving", at, node_name="gke-kiosk-gpu-0", scheduled_at=at, ready_at=at))
        wait_until(lambda: client.get(f"/api/jobs/{key}").json()["waiting"] is None, 30, "the ready model server")
        kube.delete("pods", POD, "kiosk")
        wait_until(lambda: client.get(f"/api/jobs/{key}").json()["waiting"] == waiting.NO_POD, 30, "no model server")
        store = JobStore(redis.Redis.from_url(redis_url, decode_responses=True), ttl_seconds=3600)
        store.set_status(key, JobStatus.DONE)
        assert client.get(f"/api/jobs/{key}").json()["waiting"] is None  # finished: nothing to wait for


def test_the_portal_says_why_a_queued_job_waits(kube, configure, api_for, browser):
    at = datetime.now(timezone.utc).replace(microsecond=0)
    _pending(kube, at, "TriggeredScaleUp")
    api = api_for(configure(kube_view=str(kube.path)))
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(api.url)
        expect(page.locator("#job-type option")).to_have_count(1)
        drop_file(page, "#drop-zone", "cells.tif", tiff_bytes(), "image/tiff")
        line = page.locator(".job .job-waiting")
        expect(line).to_have_text("Waiting for a GPU node to start…")
        kube.put(k.pod(POD, "tf-serving", at, node_name="gke-kiosk-gpu-0", scheduled_at=at, ready_at=at))
        expect(line).to_be_hidden(timeout=30_000)
    finally:
        context.close()


def test_without_a_view_of_the_cluster_no_job_says_it_waits(client, uploaded):
    image = uploaded("cells.tif", tiff_bytes()).removeprefix("uploads/")
    key = client.post("/api/predict", json={"jobType": "segmentation", "imageName": image}).json()["hash"]
    assert client.get(f"/api/jobs/{key}").json()["waiting"] is None
