"""The web portal in real headless Chromium against the real API, Redis and storage."""

import io
import zipfile

import pytest
import tifffile
from playwright.sync_api import expect
from skimage.measure import label

from tests.frontend.browser import drop_file
from tests.frontend.helpers import DISK_CENTRES, nuclei_image, tiff_bytes

TOKEN = "portal-test-token-0123456789"


@pytest.fixture
def page_for(browser):
    """Open the portal at a URL in a fresh browser profile; fail on any request elsewhere."""
    contexts = []

    def open_page(url: str):
        context = browser.new_context(accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        outside = []
        page.on("request", lambda request: outside.append(request.url)
                if not request.url.startswith((url, "data:", "blob:")) else None)
        page.outside_requests = outside
        page.goto(url)
        expect(page.locator("#job-type option")).to_have_count(1)
        return page

    yield open_page
    for context in contexts:
        context.close()


def test_upload_preview_download_and_reload(api, consumer, page_for, tmp_path):
    page = page_for(api.url)
    expect(page.locator("#model option")).to_have_count(4)  # default + three versions
    drop_file(page, "#drop-zone", "cells.tif", tiff_bytes(), "image/tiff")
    card = page.locator(".job").first
    expect(card.locator(".job-name")).to_have_text("cells.tif")
    preview = card.locator(".job-preview")
    expect(preview).to_be_visible(timeout=30_000)
    page.wait_for_function("img => img.complete && img.naturalWidth === 64", arg=preview.element_handle())
    expect(card.locator(".job-status")).to_have_text("Done")

    with page.expect_download() as download:
        card.locator(".job-download").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert sorted(archive.namelist()) == ["cells_labels.tif", "cells_measurements.csv", "cells_overlay.png"]
        labels = tifffile.imread(io.BytesIO(archive.read("cells_labels.tif")))
    assert labels.shape == nuclei_image().shape
    assert labels.max() == len(DISK_CENTRES)
    assert all(labels[centre] > 0 for centre in DISK_CENTRES)
    assert (label(labels > 0) > 0).sum() == (labels > 0).sum()

    page.reload()
    card = page.locator(".job").first
    expect(card).to_have_attribute("data-status", "done")
    expect(card.locator(".job-preview")).to_be_visible()
    assert page.outside_requests == []


def test_the_overlay_opens_large_with_zoom_and_outlines_that_toggle(api, consumer, page_for):
    page = page_for(api.url)
    drop_file(page, "#drop-zone", "cells.tif", tiff_bytes(), "image/tiff")
    card = page.locator(".job").first
    expect(card.locator(".job-meta")).to_contain_text("scale", timeout=30_000)  # how it was scaled
    expect(card.locator(".job-meta")).to_contain_text("(estimated")
    card.locator(".job-preview").click()

    viewer = page.locator("#viewer")
    expect(viewer).to_be_visible()
    image = page.locator("#viewer-image")
    page.wait_for_function("img => img.complete && img.naturalWidth === 64", arg=image.element_handle())
    fitted = image.bounding_box()["width"]
    assert fitted > 4 * 64  # fitted to the large dialog, not the thumbnail's size
    page.locator("#viewer-zoom-in").click()
    assert image.bounding_box()["width"] == pytest.approx(fitted * 1.5, abs=2)
    page.locator("#viewer-actual").click()
    expect(page.locator("#viewer-zoom")).to_have_text("100%")
    assert image.bounding_box()["width"] == pytest.approx(64, abs=1)

    with_outlines = image.get_attribute("src")
    page.locator("#viewer-outlines").uncheck()
    expect(image).not_to_have_attribute("src", with_outlines)
    plain = image.evaluate("img => new Promise(done => img.complete ? done(img.src) : img.onload = () => done(img.src))")
    assert "preview_image.png" in plain
    page.locator("#viewer-outlines").check()
    expect(image).to_have_attribute("src", with_outlines)
    page.locator("#viewer-close").click()
    expect(viewer).to_be_hidden()


def test_failed_job_shows_why(api, consumer, page_for):
    page = page_for(api.url)
    page.set_input_files("#file-input", files=[{"name": "fail-me.tif", "mimeType": "image/tiff",
                                                "buffer": tiff_bytes()}])
    card = page.locator(".job").first
    expect(card).to_have_attribute("data-status", "failed", timeout=30_000)
    expect(card.locator(".job-error")).to_have_text("the file is not a readable TIFF image")
    expect(card.locator(".job-result")).to_be_hidden()


def test_rejected_upload_is_explained(api, page_for):
    page = page_for(api.url)
    drop_file(page, "#drop-zone", "notes.txt", b"not an image", "text/plain")
    expect(page.locator("#notice")).to_contain_text("notes.txt: only TIFF, PNG, JPEG or ZIP files are accepted")
    expect(page.locator(".job")).to_have_count(0)


def test_several_files_make_several_jobs(api, consumer, page_for):
    page = page_for(api.url)
    page.set_input_files("#file-input", files=[
        {"name": f"image-{i}.tif", "mimeType": "image/tiff", "buffer": tiff_bytes()} for i in range(3)])
    expect(page.locator('.job[data-status="done"]')).to_have_count(3, timeout=30_000)


def test_token_protected_kiosk_asks_for_the_token(api_for, configure, consumer, browser):
    api = api_for(configure(auth_token=TOKEN))
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(api.url)
        expect(page.locator("#token-dialog")).to_be_visible()
        page.fill("#token-input", TOKEN)
        page.click("#token-dialog button")
        expect(page.locator("#job-type option")).to_have_count(1)
        drop_file(page, "#drop-zone", "cells.tif", tiff_bytes(), "image/tiff")
        preview = page.locator(".job .job-preview")
        expect(preview).to_be_visible(timeout=30_000)
        page.wait_for_function("img => img.naturalWidth > 0", arg=preview.element_handle())
    finally:
        context.close()


def test_upload_progress_bar_fills_during_the_upload(api, page_for):
    """Chromium's upload throttled to ~2 MB/s: the bar moves through intermediate values,
    never backwards, ends full, and the job appears once the upload is done."""
    page = page_for(api.url)
    page.evaluate("""() => {
        window.uploadProgress = [];
        new MutationObserver((changes) => {
            for (const change of changes) {
                if (change.target.matches(".upload progress")) window.uploadProgress.push(change.target.value);
            }
        }).observe(document.getElementById("uploads"),
                   { subtree: true, attributes: true, attributeFilter: ["value"] });
    }""")
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    network.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 2 * 1024**2})
    content = tiff_bytes() + bytes(6 * 1024**2)  # about three seconds at 2 MB/s
    drop_file(page, "#drop-zone", "big.tif", content, "image/tiff")
    row = page.locator(".upload").first
    expect(row.locator(".upload-state")).to_have_text("Uploading…")
    page.wait_for_function("() => { const bar = document.querySelector('.upload progress');"
                           " return bar && bar.value > 5 && bar.value < 95; }", timeout=20_000)
    card = page.locator(".job").first
    expect(card.locator(".job-name")).to_have_text("big.tif", timeout=30_000)
    expect(page.locator(".upload")).to_have_count(0)  # the row goes once the job is submitted
    values = page.evaluate("window.uploadProgress")
    assert values == sorted(values), values
    assert values[-1] == 100, values
    assert len([v for v in values if 0 < v < 100]) >= 3, values
    network.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
