"""Submit → done through Redis, consumer processes and the real model server."""

import csv
import io
import json
import time
import zipfile

import numpy as np
import PIL.Image
import pytest
import tifffile
from scipy import ndimage

from consumers.processing.diameter import MODEL_DIAMETER, MODEL_PIXEL_SIZE_UM
from consumers.processing.overlay import OUTLINE_COLOUR
from consumers.processing.pixel_size import tiff_pixel_size
from consumers.settings import ConsumerSettings
from tests.consumers.conftest import synthetic_tiff, tiff_bytes
from tests.fixtures.servers import wait_until
from training.evaluate import held_out_samples
from training.metrics import f1_at_iou

STEP_TIMES = ("prediction_time", "postprocess_time", "upload_time", "download_time")


def _assert_real_timings(job: dict[str, str], submitted: float, seen_final: float, steps) -> None:
    """Timings a real run gives: times within the job's wall time, steps that took time and fit in it."""
    created, finished, total = (float(job[name]) for name in ("created_at", "finished_at", "total_time"))
    assert submitted <= created <= finished <= seen_final, (submitted, created, finished, seen_final)
    assert total == pytest.approx(finished - created, abs=1e-3)
    spent = [float(value) for name in steps for value in job[name].split(",")]
    assert all(seconds > 0 for seconds in spent), {name: job[name] for name in steps}
    assert max(spent) <= total, {name: job[name] for name in steps}


def _result_files(kiosk, job) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(kiosk.storage.read(job["output_file_name"]))) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_synthetic_image_is_segmented_like_its_ground_truth(kiosk):
    # The first of the held-out 512x512 images the README's accuracy figures come from.
    image, truth = held_out_samples(1, (512, 512))[0]
    data = tiff_bytes(image)
    submitted = time.time()
    key = kiosk.client.submit(data, "cells.tif")
    job = kiosk.client.wait_final(key)
    seen_final = time.time()
    assert job["status"] == "done", job.get("reason")
    files = _result_files(kiosk, job)
    assert set(files) == {"cells_labels.tif", "cells_overlay.png", "cells_measurements.csv"}
    labels = tifffile.imread(io.BytesIO(files["cells_labels.tif"]))
    assert labels.shape == truth.shape
    assert f1_at_iou(truth, labels) >= 0.8
    assert int(job["nuclei"]) == len(np.unique(labels)) - 1
    rows = list(csv.DictReader(io.StringIO(files["cells_measurements.csv"].decode())))
    assert sorted(int(row["label"]) for row in rows) == sorted(np.unique(labels[labels > 0]).tolist())
    assert sum(int(row["area_px"]) for row in rows) == int((labels > 0).sum())
    # no scale given: estimated from the image, recorded on the job
    assert job["scale_source"] == "estimated" and float(job["estimated_diameter"]) > 0
    assert float(job["scale_used"]) == pytest.approx(MODEL_DIAMETER / float(job["estimated_diameter"]), rel=0.01)  # both rounded
    overlay = PIL.Image.open(io.BytesIO(files["cells_overlay.png"]))
    assert overlay.size == (512, 512)
    assert OUTLINE_COLOUR in {colour for _, colour in overlay.convert("RGB").getcolors(1 << 24)}
    assert kiosk.storage.read(job["preview_file_name"]) == files["cells_overlay.png"]
    assert job["output_url"] == f"http://kiosk.test/api/download/{job['output_file_name']}"
    _assert_real_timings(job, submitted, seen_final, STEP_TIMES)
    assert job["predict_retries"] == "0"
    assert job["total_jobs"] == "1"
    # Finished jobs expire after the consumers' default job TTL (a day), counted from the end.
    ttl = ConsumerSettings.model_construct().job_ttl_seconds
    assert ttl - (time.time() - float(job["finished_at"])) - 1 <= kiosk.client.redis.ttl(key) <= ttl
    wait_until(lambda: kiosk.client.queue.length() == 0, 60, "empty queue")


def test_large_image_is_tiled_and_stitched(kiosk):
    data, truth = synthetic_tiff(seed=8, shape=(700, 1000))
    job = kiosk.client.wait_final(kiosk.client.submit(data, "wide.tif"))
    assert job["status"] == "done", job.get("reason")
    labels = tifffile.imread(io.BytesIO(_result_files(kiosk, job)["wide_labels.tif"]))
    assert labels.shape == (700, 1000)
    assert f1_at_iou(truth, labels) >= 0.8


def test_png_jpeg_colour_and_stack_inputs(kiosk):
    _, truth = synthetic_tiff(seed=9, shape=(256, 256))
    image = synthetic_image(seed=9)
    grey = (255 * image / image.max()).astype(np.uint8)
    colour = np.stack([np.zeros_like(grey), grey, np.zeros_like(grey)], axis=-1)  # green stain
    inputs = {"grey.png": _encode(grey, "PNG"), "green.png": _encode(colour, "PNG"),
              "grey.jpg": _encode(grey, "JPEG")}
    stack = io.BytesIO()
    tifffile.imwrite(stack, np.stack([grey, grey[::-1], grey[:, ::-1]]), metadata={"axes": "ZYX"})
    inputs["stack.tif"] = stack.getvalue()
    keys = {name: kiosk.client.submit(data, name) for name, data in inputs.items()}
    for name, key in keys.items():
        job = kiosk.client.wait_final(key)
        assert job["status"] == "done", (name, job.get("reason"))
        stem = name.split(".")[0]
        labels = tifffile.imread(io.BytesIO(_result_files(kiosk, job)[f"{stem}_labels.tif"]))
        if name == "stack.tif":
            assert labels.shape == (3, 256, 256)
            assert f1_at_iou(truth[::-1], labels[1]) >= 0.7
        else:
            assert f1_at_iou(truth, labels) >= 0.7, name


def test_selected_channel_of_a_multichannel_tiff(kiosk):
    data, truth = synthetic_tiff(seed=10, shape=(256, 256))
    nuclei = tifffile.imread(io.BytesIO(data))
    noise = np.random.default_rng(0).integers(0, 50, nuclei.shape).astype(np.uint16)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.stack([noise, nuclei]), metadata={"axes": "CYX"})
    key = kiosk.client.submit(buffer.getvalue(), "two.tif", channels=(1,))
    job = kiosk.client.wait_final(key)
    assert job["status"] == "done", job.get("reason")
    labels = tifffile.imread(io.BytesIO(_result_files(kiosk, job)["two_labels.tif"]))
    assert f1_at_iou(truth, labels) >= 0.8


def test_zip_job_fans_out_and_aggregates_with_failures(kiosk):
    members = {f"{folder}/{name}.tif": synthetic_tiff(seed, (256, 256))[0]
               for seed, (folder, name) in enumerate([("plate", "a"), ("plate", "b"), ("other", "a")], start=20)}
    members["plate/b.png"] = _encode(synthetic_image(23).astype(np.uint8), "PNG")
    members["broken.tif"] = b"II*\x00 this is not really a TIFF"
    members["__MACOSX/._a.tif"] = b"junk"
    submitted = time.time()
    key = kiosk.client.submit(_zip(members), "batch.zip")
    job = kiosk.client.wait_final(key, timeout=180)
    seen_final = time.time()
    assert job["status"] == "done", job.get("reason")
    assert job["total_jobs"] == "5" and job["progress"] == "100"
    assert json.loads(job["failures"]) == ["broken.tif"]
    children = [kiosk.client.job(child) for child in job["children"].split(",")]
    assert sorted(child["status"] for child in children) == ["done", "done", "done", "done", "failed"], [
        child.get("reason") for child in children]
    assert len(job["prediction_time"].split(",")) == 5
    files = _result_files(kiosk, job)
    # Same-named images in other folders, or with another extension, keep their own results.
    manifest = json.loads(files["manifest.json"])
    by_image = {image["name"]: image for image in manifest["images"]}
    produced = [name for image in manifest["images"] for name in image["files"]]
    assert len(set(produced)) == len(produced) == 12 and set(produced) == set(files) - {"manifest.json"}
    assert sum("_measurements" in name and name.endswith(".csv") for name in produced) == 4
    assert sum("_labels" in name and name.endswith(".tif") for name in produced) == 4, produced
    assert {by_image["plate__b.tif"]["files"][0], by_image["plate__b.png"]["files"][0]} in (
        {"plate__b_labels.tif", "plate__b_labels_png.tif"}, {"plate__b_labels.tif", "plate__b_labels_tif.tif"})
    assert by_image["broken.tif"]["status"] == "failed" and by_image["broken.tif"]["files"] == []
    # The unpacked images are removed once aggregated; the uploaded zip stays for its lifecycle rule.
    assert not any(kiosk.storage.exists(child["input_file_name"]) for child in children)
    assert kiosk.storage.exists(kiosk.client.job(key)["input_file_name"])
    _assert_real_timings(job, submitted, seen_final, ("children_upload_time", "upload_time", "cleanup_time"))


def test_large_nuclei_are_found_with_no_scale_given(kiosk):
    """63x-like images: held-out nuclei magnified 5x (about 60-100 px across, smooth as optics
    make them), no scale sent: each is found as well as at its own size, near enough."""
    scores = []
    for index, (image, truth) in enumerate(held_out_samples(3, (256, 256))):
        big = ndimage.zoom(image.astype(np.float32), 5, order=1)
        job = kiosk.client.wait_final(kiosk.client.submit(tiff_bytes(big), f"big{index}.tif"))
        assert job["status"] == "done", job.get("reason")
        assert job["scale_source"].startswith("estimated")
        assert float(job["estimated_diameter"]) > 40 and float(job["scale_used"]) < 0.5
        labels = tifffile.imread(io.BytesIO(_result_files(kiosk, job)[f"big{index}_labels.tif"]))
        scores.append(f1_at_iou(ndimage.zoom(truth, 5, order=0), labels))
    assert np.mean(scores) >= 0.75, scores


def test_a_given_scale_or_pixel_size_overrides_the_estimate(kiosk):
    image, _ = held_out_samples(1, (256, 256))[0]
    given = kiosk.client.wait_final(kiosk.client.submit(tiff_bytes(image), "given.tif", scale=1.5))
    assert (given["status"], given["scale_used"], given["scale_source"]) == ("done", "1.5", "given")
    assert "estimated_diameter" not in given
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, image.astype(np.uint16), resolution=(1e4 / 0.2, 1e4 / 0.2), resolutionunit="CENTIMETER")
    sized = kiosk.client.wait_final(kiosk.client.submit(buffer.getvalue(), "sized.tif"))
    assert (sized["status"], sized["scale_source"], sized["pixel_size_um"]) == ("done", "pixel size", "0.2")
    assert float(sized["scale_used"]) == pytest.approx(0.2 / MODEL_PIXEL_SIZE_UM)
    labels = tifffile.TiffFile(io.BytesIO(_result_files(kiosk, sized)["sized_labels.tif"]))
    assert tiff_pixel_size(labels) == pytest.approx(0.2)


def test_a_job_delivered_twice_yields_one_result(kiosk):
    data, _ = synthetic_tiff(seed=11, shape=(256, 256))
    key = kiosk.client.submit(data, "twice.tif")
    kiosk.client.queue.enqueue(key)  # a second delivery of the same job, as after a lost lease
    job = kiosk.client.wait_final(key)
    assert job["status"] == "done"
    wait_until(lambda: kiosk.client.queue.length() == 0, 60, "both deliveries handled")
    folder = job["output_file_name"].rsplit("/", 1)[0]
    assert kiosk.storage.list(folder + "/") == sorted(
        [job["output_file_name"], job["preview_file_name"], job["preview_image_file_name"]])
    assert kiosk.client.job(key)["finished_at"] == job["finished_at"]


def synthetic_image(seed: int) -> np.ndarray:
    data, _ = synthetic_tiff(seed=seed, shape=(256, 256))
    return tifffile.imread(io.BytesIO(data)).astype(np.float64)


def _encode(pixels: np.ndarray, kind: str) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buffer, kind)
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()

