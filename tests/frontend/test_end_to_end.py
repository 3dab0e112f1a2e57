"""The API, portal and CLI over the real pipeline: Redis, `python -m consumers`, the gRPC
model server (serving the tiny test model) and `python -m frontend`."""

import io
import subprocess
import zipfile
from types import SimpleNamespace

import httpx
import pytest
import tifffile
from playwright.sync_api import expect

from tests.fixtures.consumers import ConsumerPool
from tests.fixtures.model_server import TINY_MODEL
from tests.fixtures.servers import RedisServer, wait_until
from tests.frontend.browser import drop_file
from tests.frontend.helpers import KIOSK, ApiProcess, add_model, nuclei_image, tiff_bytes, zip_bytes


@pytest.fixture(scope="module")
def pipeline(model_server, tmp_path_factory):
    """One consumer and the API over a fresh Redis and bucket; the default model is TinyModel."""
    home = tmp_path_factory.mktemp("pipeline")
    bucket = home / "bucket"
    add_model(bucket, TINY_MODEL, "1")  # what /api/models lists; the model server holds the SavedModel
    redis_server = RedisServer()
    consumers = ConsumerPool(redis_server.url, str(bucket), model_server.address)
    consumers.start(1)
    api = ApiProcess({"KIOSK_REDIS_URL": redis_server.url, "KIOSK_STORAGE_URL": str(bucket),
                      "KIOSK_DEFAULT_MODEL": TINY_MODEL}, home / "api.log")
    yield SimpleNamespace(url=api.url, home=home, consumers=consumers)
    api.stop()
    consumers.stop()
    redis_server.stop()


def labelled_disks(archive_bytes: bytes, stem: str) -> tuple:
    with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
        assert f"{stem}_labels.tif" in archive.namelist() and f"{stem}_overlay.png" in archive.namelist()
        labels = tifffile.imread(io.BytesIO(archive.read(f"{stem}_labels.tif")))
    return labels.shape, labels.max()


@pytest.fixture
def page(browser, pipeline):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(pipeline.url)
    expect(page.locator("#model option")).to_have_count(2)
    yield page
    context.close()


def test_portal_segments_a_dropped_image(page, tmp_path):
    drop_file(page, "#drop-zone", "nuclei.tif", tiff_bytes(), "image/tiff")
    card = page.locator(".job").first
    preview = card.locator(".job-preview")
    expect(preview).to_be_visible(timeout=120_000)
    page.wait_for_function("img => img.complete && img.naturalWidth === 64", arg=preview.element_handle())
    expect(card.locator(".job-meta")).to_contain_text(f"{TINY_MODEL}:1")
    with page.expect_download() as download:
        card.locator(".job-download").click()
    saved = tmp_path / "result.zip"
    download.value.save_as(saved)
    shape, objects = labelled_disks(saved.read_bytes(), "nuclei")
    assert shape == nuclei_image().shape
    assert objects >= 1


def test_portal_shows_a_zip_job_and_its_children(page):
    archive = zip_bytes({"one.tif": tiff_bytes(), "broken.png": b"\x89PNG\r\n\x1a\n" + bytes(20)})
    drop_file(page, "#drop-zone", "plate.zip", archive, "application/zip")
    card = page.locator(".job").first
    expect(card).to_have_attribute("data-status", "done", timeout=120_000)
    children = card.locator(".job-children li")
    expect(children).to_have_count(2)
    expect(card.locator('.job-children li[data-status="done"] img')).to_be_visible()
    expect(card.locator('.job-children li[data-status="failed"]')).to_contain_text("broken.png")
    expect(card.locator(".job-download")).to_be_visible()


def test_contract_client_flow(pipeline):
    """Upload, predict with the options an old client sends, poll, read, download, expire."""
    with httpx.Client(base_url=pipeline.url, timeout=30) as client:
        uploaded = client.post("/api/upload", files={"file": ("cells.tif", tiff_bytes())}).json()
        key = client.post("/api/predict", json={
            "jobType": "segmentation", "imageName": uploaded["uploadedName"][len("uploads/"):],
            "uploadedName": uploaded["uploadedName"], "dataRescale": "", "modelVersion": "",
            "jobForm": {"dimensionOrder": "yx", "selectedChannels": "0", "scale": 1}}).json()["hash"]
        read = lambda field: client.post("/api/redis", json={"hash": key, "key": field}).json()["value"]
        wait_until(lambda: client.post("/api/status", json={"hash": key}).json()["status"] in ("done", "failed"),
                   120, f"job {key}")
        assert read("status") == "done", read("reason")
        assert read("finished_at") > read("created_at")
        assert float(read("prediction_time")) > 0
        shape, _ = labelled_disks(httpx.get(read("output_url")).content, "cells")
        assert shape == nuclei_image().shape
        assert client.post("/api/redis/expire", json={"hash": key, "expireIn": 30}).json() == {"value": 1}


def test_cli_runs_a_zip_and_reports_the_image_that_failed(pipeline, tmp_path):
    (tmp_path / "batch.zip").write_bytes(zip_bytes({"one.tif": tiff_bytes(), "two.png": tiff_bytes()[:40]}))
    (tmp_path / "single.tif").write_bytes(tiff_bytes())
    result = subprocess.run([KIOSK, "--url", pipeline.url, "submit", "batch.zip", "single.tif", "--poll", "0.5"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "2 job(s): 1 done, 1 failed" in result.stdout, result.stdout + result.stderr
    assert "FAILED  batch.zip: 1 image(s) failed: two.png (the others: results/batch.zip)" in result.stdout
    assert result.returncode == 1
    with zipfile.ZipFile(tmp_path / "results" / "batch.zip") as archive:
        names = archive.namelist()
    assert "one_labels.tif" in names and "manifest.json" in names
    assert labelled_disks((tmp_path / "results" / "single.zip").read_bytes(), "single")[0] == (64, 64)
