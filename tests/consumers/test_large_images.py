"""Large images: segmented block by block in bounded memory, with the same nuclei as whole."""

import io
import zipfile

import numpy as np
import pytest
import tifffile

from consumers.jobs import JobRequest, new_job_key
from consumers.model_client import ModelClient
from consumers.processing.large import segment_large
from consumers.segmentation import run_segmentation, segment_in_process
from consumers.services import Services
from consumers.settings import ConsumerSettings
from tests.consumers.conftest import synthetic_tiff
from tests.fixtures.model_server import TINY_MODEL

SMALL_BLOCKS = {"large_image_pixels": 100_000, "block_size": 96, "block_halo": 40}


def _request(name: str = "big.tif") -> JobRequest:
    return JobRequest(job_type="segmentation", input_file_name=f"uploads/{name}", original_name=name,
                      model_name=TINY_MODEL, scale=1.0)


def _matched_ious(whole: np.ndarray, blocked: np.ndarray) -> list[float]:
    """For each nucleus of `whole`, the IoU of the `blocked` nucleus that overlaps it most."""
    ious = []
    for label in np.unique(whole[whole > 0]):
        mask = whole == label
        overlapping, counts = np.unique(blocked[mask], return_counts=True)
        counts[overlapping == 0] = 0
        best = overlapping[np.argmax(counts)]
        ious.append(0.0 if best == 0 else (mask & (blocked == best)).sum() / (mask | (blocked == best)).sum())
    return ious


@pytest.fixture(scope="module")
def client(model_server):
    client = ModelClient(model_server.address, max_batch_size=16)
    yield client
    client.close()


def test_blocks_give_the_nuclei_of_the_whole_image(client, tmp_path):
    data, _ = synthetic_tiff(7, (512, 480))
    settings = ConsumerSettings(metrics_port=0, **SMALL_BLOCKS)
    spec = client.metadata(TINY_MODEL, None)
    predict = lambda tiles: client.predict(TINY_MODEL, None, tiles).outputs  # noqa: E731
    _, whole = segment_in_process(data, _request(), settings, spec, predict)
    (tmp_path / "big.tif").write_bytes(data)
    calls = []
    result = segment_large(tmp_path / "big.tif", "big", _request(), settings, spec, predict, tmp_path,
                           lambda done, total: calls.append((done, total)))
    blocked = tifffile.imread(result.files["big_labels.tif"])
    whole = whole[0]
    assert blocked.shape == whole.shape
    assert len(calls) == 6 * 5 and calls[-1][0] == calls[-1][1]  # one call per block, up to all tiles
    assert result.nuclei == len(np.unique(blocked[blocked > 0])) == len(np.unique(whole[whole > 0])) > 10
    ious = _matched_ious(whole, blocked)
    assert min(ious) >= 0.9
    seams = np.zeros_like(whole, bool)
    edges = [edge + side for edge in range(96, 512, 96) for side in (-1, 0)]
    seams[edges, :] = seams[:, [edge for edge in edges if edge < 480]] = True
    on_seams = np.unique(whole[seams & (whole > 0)])
    assert len(on_seams) >= 4  # the test really crosses block edges
    rows = result.files["big_measurements.csv"].read_text().splitlines()
    assert len(rows) == 1 + result.nuclei
    header = rows[0].split(",")
    areas = {int(row.split(",")[1]): int(row.split(",")[header.index("area_px")]) for row in rows[1:]}
    assert areas == {label: int((blocked == label).sum()) for label in np.unique(blocked[blocked > 0])}


@pytest.fixture
def services(redis_url, tmp_path, model_server):
    settings = ConsumerSettings(redis_url=redis_url, storage_url=str(tmp_path / "bucket"),
                                model_server=model_server.address, metrics_port=0, max_image_pixels=400_000,
                                **SMALL_BLOCKS)
    services = Services.from_settings(settings)
    services.queue.ensure_group()
    yield services
    services.close()


def _submit(services: Services, name: str, data: bytes) -> str:
    key = new_job_key("segmentation")
    services.storage.write(f"uploads/{name}", data)
    services.queue.submit(key, {**_request(name).to_fields(), "status": "new"})
    return key


def _tiff(shape) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros(shape, np.uint16), photometric="minisblack")
    return buffer.getvalue()


def test_the_consumer_segments_a_large_image_and_refuses_what_it_cannot(services):
    data, _ = synthetic_tiff(3, (400, 400))
    large = _submit(services, "large.tif", data)
    stack = _submit(services, "stack.tif", _tiff((3, 200, 200)))
    huge = _submit(services, "huge.tif", _tiff((700, 700)))
    small = _submit(services, "small.tif", synthetic_tiff(4, (200, 200))[0])
    whole = io.BytesIO()
    tifffile.imwrite(whole, np.ones((400, 400), np.uint16), compression="zlib", tile=(128, 128))
    truncated = _submit(services, "truncated.tif", whole.getvalue()[:len(whole.getvalue()) // 2])
    run_segmentation(services, [large, stack, huge, truncated, small])

    job = services.store.get(large)
    assert job["status"] == "done" and job["progress"] == "100" and int(job["nuclei"]) > 3
    with zipfile.ZipFile(io.BytesIO(services.storage.read(job["output_file_name"]))) as archive:
        names = archive.namelist()
        assert sorted(name for name in names if ".ome.zarr/" not in name) == [
            "large_labels.tif", "large_measurements.csv", "large_overlay.png"]
        assert "large_labels.ome.zarr/labels/nuclei/zarr.json" in names
        labels = tifffile.imread(io.BytesIO(archive.read("large_labels.tif")))
    assert labels.shape == (400, 400) and len(np.unique(labels)) - 1 == int(job["nuclei"])
    assert services.storage.read(job["preview_file_name"]).startswith(b"\x89PNG")
    assert services.store.get(stack)["reason"] == (
        "the image 'stack.tif' is 200×200×3 frames = 120,000 pixels; the limit for stacks, PNG and JPEG "
        "images is 100,000 pixels: above it only single-frame TIFF and OME-Zarr images can be processed "
        "(save it as one, or crop it)")
    assert services.store.get(huge)["reason"] == (
        "the image 'huge.tif' is 700×700 = 490,000 pixels; the limit is 400,000 pixels")
    assert services.store.get(truncated)["reason"] == (
        "the file 'truncated.tif' is not a readable TIFF image (it may be truncated or corrupt)")
    assert services.store.get(small)["status"] == "done"  # the small path, in the same claim
