"""Fixtures of the API tests: real Redis, real storage (a directory or moto's S3), real uvicorn."""

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from frontend.core.config import FrontendSettings
from tests.fixtures.servers import free_port
from tests.frontend.browser import CHROMIUM, CHROMIUM_ARGS
from tests.frontend.helpers import ApiThread, StandInConsumer, add_model


@pytest.fixture
def bucket_dir(tmp_path):
    """Local storage holding two versions of the default model and one other model."""
    path = tmp_path / "bucket"
    add_model(path, "NuclearSegmentation", "1")
    add_model(path, "NuclearSegmentation", "2")
    add_model(path, "Mesmer", "7")
    return path


@pytest.fixture
def settings(redis_url, bucket_dir):
    return FrontendSettings(redis_url=redis_url, storage_url=str(bucket_dir), port=free_port(),
                            models_cache_seconds=0)


@pytest.fixture
def configure(settings):
    """The test's settings with some changed, on a port of their own."""
    def changed(**changes) -> FrontendSettings:
        values = {**settings.model_dump(exclude={"public_url"}), "port": free_port(), **changes}
        return FrontendSettings.model_validate(values)
    return changed


@pytest.fixture
def api_for():
    """Start APIs for given settings; all are stopped after the test."""
    started: list[ApiThread] = []

    def start(settings: FrontendSettings) -> ApiThread:
        started.append(ApiThread(settings))
        return started[-1]

    yield start
    for api in started:
        api.stop()


@pytest.fixture
def api(api_for, settings):
    return api_for(settings)


@pytest.fixture
def client(api):
    """An HTTP client of the running API."""
    with httpx.Client(base_url=api.url, timeout=30) as http:
        yield http


@pytest.fixture
def consumer(redis_url, bucket_dir):
    standin = StandInConsumer(redis_url, bucket_dir)
    yield standin
    standin.stop()


@pytest.fixture
def uploaded(client):
    """Upload a file and return its `uploadedName`."""
    def upload(name: str, content: bytes) -> str:
        response = client.post("/api/upload", files={"file": (name, content)})
        assert response.status_code == 200, response.text
        return response.json()["uploadedName"]
    return upload


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium, driven by Playwright."""
    expect.set_options(timeout=15_000)  # the 5 s default is short on a loaded 2-core machine
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
