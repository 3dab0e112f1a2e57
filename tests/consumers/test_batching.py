"""Jobs claimed together share Predict batches (the consumer's cross-job batching)."""

import io

import numpy as np
import pytest
import tifffile

from consumers.jobs import JobRequest, new_job_key
from consumers.model_client import ModelClient
from consumers.segmentation import run_segmentation
from consumers.services import Services
from consumers.settings import ConsumerSettings
from tests.fixtures.model_server import TINY_MODEL


class RecordingClient(ModelClient):
    """The real client, noting the size of every batch it is asked to predict."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []

    def predict(self, model, version, batch):
        self.batches.append(len(batch))
        return super().predict(model, version, batch)


@pytest.fixture
def services(redis_url, tmp_path, model_server):
    settings = ConsumerSettings(redis_url=redis_url, storage_url=str(tmp_path),
                                model_server=model_server.address, metrics_port=0)
    services = Services.from_settings(settings)
    services.model = RecordingClient(model_server.address, max_batch_size=16)
    services.queue.ensure_group()
    yield services
    services.close()


def _job(services: Services, name: str, data: bytes) -> str:
    key = new_job_key("segmentation")
    services.storage.write(f"uploads/{name}", data)
    request = JobRequest(job_type="segmentation", input_file_name=f"uploads/{name}",
                         original_name=name, model_name=TINY_MODEL, scale=1.0)  # one tile each
    services.queue.submit(key, {**request.to_fields(), "status": "new"})
    return key


def _tiff(seed: int) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.random.default_rng(seed).integers(0, 4000, (200, 200), np.uint16))
    return buffer.getvalue()


def test_tiles_of_jobs_claimed_together_share_batches(services):
    keys = [_job(services, f"{i}.tif", _tiff(i)) for i in range(5)]
    run_segmentation(services, keys)
    assert services.model.batches == [5]  # one tile per job, one request for all five
    assert [services.store.get(key)["status"] for key in keys] == ["done"] * 5


def test_one_bad_job_does_not_fail_the_jobs_batched_with_it(services):
    good = [_job(services, f"{i}.tif", _tiff(i)) for i in range(3)]
    unknown_model = new_job_key("segmentation")
    services.storage.write("uploads/x.tif", _tiff(9))
    request = JobRequest(job_type="segmentation", input_file_name="uploads/x.tif",
                         original_name="x.tif", model_name="Missing")
    services.queue.submit(unknown_model, {**request.to_fields(), "status": "new"})
    run_segmentation(services, [*good, unknown_model])
    assert [services.store.get(key)["status"] for key in good] == ["done"] * 3
    failed = services.store.get(unknown_model)
    assert failed["status"] == "failed" and "Missing" in failed["reason"]
