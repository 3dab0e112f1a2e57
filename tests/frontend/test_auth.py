"""The optional bearer token: what it guards, what stays open, signed download links."""

import time

import httpx
import pytest
import redis
from pydantic import ValidationError

from consumers.jobs import JobStatus
from consumers.jobstore import JobStore
from frontend.core.config import FrontendSettings
from frontend.core.security import signed_query
from tests.frontend.helpers import tiff_bytes

TOKEN = "k1osk-test-token-0123456789abcdef"


@pytest.fixture
def locked(api_for, configure):
    return api_for(configure(auth_token=TOKEN))


@pytest.fixture
def authorized(locked):
    with httpx.Client(base_url=locked.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        yield http


@pytest.mark.parametrize("method, path", [
    ("POST", "/api/upload"), ("POST", "/api/predict"), ("POST", "/api/status"), ("POST", "/api/redis"),
    ("POST", "/api/redis/expire"), ("GET", "/api/jobtypes"), ("GET", "/api/models"),
    ("GET", "/api/jobs/segmentation:" + "0" * 32),
])
def test_api_calls_need_the_token(locked, method, path):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": TOKEN}):
        response = httpx.request(method, f"{locked.url}{path}", headers=headers, json={})
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert "bearer token" in response.json()["message"]


@pytest.mark.parametrize("path", ["/api/health-check", "/", "/api/swagger.json", "/static/app.js", "/metrics"])
def test_public_paths_stay_open(locked, path):
    assert httpx.get(f"{locked.url}{path}").status_code == 200


def test_with_the_token_everything_works(authorized, bucket_dir, redis_url):
    uploaded = authorized.post("/api/upload", files={"file": ("a.tif", tiff_bytes())}).json()
    job = authorized.post("/api/predict", json={"jobType": "segmentation",
                                                "imageName": uploaded["uploadedName"][8:]}).json()["hash"]
    assert authorized.post("/api/status", json={"hash": job}).json() == {"status": "new"}
    # The upload's link is signed: it works without a header, and only for that key.
    assert httpx.get(uploaded["imageURL"]).content == tiff_bytes()
    assert "signature=" in uploaded["imageURL"]


def test_download_links_are_signed_per_key_and_expire(locked, authorized, bucket_dir, redis_url):
    (bucket_dir / "output" / "j").mkdir(parents=True)
    (bucket_dir / "output" / "j" / "r.zip").write_bytes(b"result")
    (bucket_dir / "output" / "j" / "other.zip").write_bytes(b"other")
    uploaded = authorized.post("/api/upload", files={"file": ("a.tif", tiff_bytes())}).json()
    job = authorized.post("/api/predict", json={"jobType": "segmentation",
                                                "imageName": uploaded["uploadedName"][8:]}).json()["hash"]
    store = JobStore(redis.Redis.from_url(redis_url, decode_responses=True), ttl_seconds=60)
    store.set_status(job, JobStatus.DONE, output_file_name="output/j/r.zip")
    url = authorized.post("/api/redis", json={"hash": job, "key": "output_url"}).json()["value"]
    assert httpx.get(url).content == b"result"
    assert httpx.get(url.replace("r.zip", "other.zip")).status_code == 401
    assert httpx.get(url.split("?")[0]).status_code == 401
    assert authorized.get(url.split("?")[0]).content == b"result"
    expired = f"{locked.url}/api/download/output/j/r.zip?{signed_query('output/j/r.zip', -10, TOKEN)}"
    assert httpx.get(expired).status_code == 401
    forged = f"{locked.url}/api/download/output/j/r.zip?{signed_query('output/j/r.zip', 60, 'x' * 32)}"
    assert httpx.get(forged).status_code == 401
    view = authorized.get(f"/api/jobs/{job}").json()
    assert httpx.get(view["outputUrl"]).content == b"result"
    assert int(httpx.URL(view["outputUrl"]).params["expires"]) > time.time()


@pytest.mark.parametrize("token", ["changethis", "secret", "short-token"])
def test_placeholder_tokens_are_refused_in_the_cloud(token):
    with pytest.raises(ValidationError, match="KIOSK_AUTH_TOKEN"):
        FrontendSettings(environment="cloud", auth_token=token)
    assert FrontendSettings(environment="local", auth_token=token).token == token


def test_blank_token_means_open(monkeypatch):
    monkeypatch.setenv("KIOSK_AUTH_TOKEN", "")
    assert FrontendSettings().token is None
    monkeypatch.setenv("KIOSK_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("KIOSK_ENVIRONMENT", "cloud")
    assert FrontendSettings().token == TOKEN
