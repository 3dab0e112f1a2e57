"""Structured logs with request ids, Prometheus metrics, and `python -m frontend` itself."""

import json
import os
import subprocess
import sys

import httpx
import pytest

from tests.fixtures.servers import free_port, wait_until
from tests.frontend.helpers import PROJECT_ROOT, ApiProcess, tiff_bytes


@pytest.fixture
def process(redis_url, bucket_dir, tmp_path):
    api = ApiProcess({"KIOSK_REDIS_URL": redis_url, "KIOSK_STORAGE_URL": str(bucket_dir),
                      "KIOSK_PUBLIC_URL": "http://kiosk.example"}, tmp_path / "api.log")
    yield api
    api.stop()


def log_lines(api: ApiProcess) -> list[dict]:
    return [json.loads(line) for line in api.log_path.read_text().splitlines() if line.startswith("{")]


def test_prints_the_portal_url(process):
    assert "Kiosk portal: http://kiosk.example" in process.log_path.read_text()


def test_logs_are_json_lines_tagged_with_the_request_id(process):
    upload = httpx.post(f"{process.url}/api/upload", files={"file": ("a.tif", tiff_bytes())})
    given = httpx.post(f"{process.url}/api/predict", headers={"X-Request-ID": "trace-42"},
                       json={"jobType": "segmentation", "imageName": upload.json()["uploadedName"][8:]})
    assert given.headers["x-request-id"] == "trace-42"
    generated = upload.headers["x-request-id"]
    assert len(generated) == 32
    for hostile in (b"bad id {}", "é".encode("latin-1"), b"x" * 200):
        answer = httpx.get(f"{process.url}/api/health-check", headers={"X-Request-ID": hostile})
        assert len(answer.headers["x-request-id"]) == 32

    def logged() -> bool:
        return any(line.get("request_id") == "trace-42" and line.get("route") == "/api/predict"
                   for line in log_lines(process))
    wait_until(logged, 10, "the access log line")
    lines = log_lines(process)
    access = [line for line in lines if line.get("request_id") == "trace-42"]
    assert len(access) == 1, access  # one line per submission: the access line names the job
    assert access[0]["method"] == "POST" and access[0]["status"] == 200 and access[0]["duration_ms"] > 0
    assert access[0]["route"] == "/api/predict" and access[0]["job"] == given.json()["hash"]
    assert access[0]["model"] == "NuclearSegmentation:2"
    assert any(line.get("request_id") == generated for line in lines)


def test_metrics_count_requests_by_route(process):
    for key in ("segmentation:" + "a" * 32, "segmentation:" + "b" * 32):
        assert httpx.get(f"{process.url}/api/jobs/{key}").status_code == 404
    httpx.get(f"{process.url}/api/no-such-thing/{'x' * 10}")
    upload = httpx.post(f"{process.url}/api/upload", files={"file": ("a.tif", tiff_bytes())}).json()
    httpx.post(f"{process.url}/api/predict", json={"jobType": "segmentation",
                                                   "imageName": upload["uploadedName"][8:]})
    metrics = httpx.get(f"{process.url}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'kiosk_api_requests_total{method="GET",route="/api/jobs/{key}",status="404"} 2.0' in text
    assert 'route="unmatched",status="404"' in text and "no-such-thing" not in text
    assert 'kiosk_api_jobs_created_total{job_type="segmentation"} 1.0' in text
    assert f"kiosk_api_upload_bytes_total {float(len(tiff_bytes()))}" in text
    assert 'kiosk_api_request_duration_seconds_count{method="POST",route="/api/predict"} 1.0' in text


@pytest.mark.parametrize("env, message", [
    ({"KIOSK_ENVIRONMENT": "cloud", "KIOSK_AUTH_TOKEN": "changethis"}, "KIOSK_AUTH_TOKEN is a placeholder"),
    ({"KIOSK_PORT": "eighty"}, "port: Input should be a valid integer"),
])
def test_bad_settings_stop_the_process_with_a_message(env, message):
    result = subprocess.run([sys.executable, "-m", "frontend"], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, timeout=60, env={**os.environ, **env})
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr


def test_metrics_on_their_own_port_are_not_on_the_public_one(redis_url, bucket_dir, tmp_path):
    """In the cloud every path of the API's port is on the Internet: metrics move to a port
    only the cluster (Managed Prometheus) reaches."""
    metrics_port = free_port()
    api = ApiProcess({"KIOSK_REDIS_URL": redis_url, "KIOSK_STORAGE_URL": str(bucket_dir),
                      "KIOSK_METRICS_PORT": str(metrics_port)}, tmp_path / "api.log")
    try:
        assert httpx.get(f"{api.url}/api/health-check").status_code == 200
        public = httpx.get(f"{api.url}/metrics")
        assert public.status_code == 404 and public.json() == {"message": "no such page"}
        private = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert private.status_code == 200
        assert 'kiosk_api_requests_total{method="GET",route="/api/health-check",status="200"}' in private.text
    finally:
        api.stop()
