"""The worker's shutdown, crash and poison-job paths, called directly (no signals, no model needed)."""

import threading

import pytest
import redis

from consumers.jobs import JobRequest, new_job_key
from consumers.services import Services
from consumers.settings import ConsumerSettings
from consumers.worker import Worker
from tests.fixtures.servers import wait_until


@pytest.fixture
def worker(redis_url, tmp_path):
    settings = ConsumerSettings(redis_url=redis_url, storage_url=str(tmp_path),
                                model_server="127.0.0.1:9", lease_seconds=3, metrics_port=0)
    services = Services.from_settings(settings)
    yield Worker(services, "worker-under-test")
    services.close()


def _submit(worker: Worker) -> str:
    key = new_job_key("segmentation")
    request = JobRequest(job_type="segmentation", input_file_name="uploads/x.tif",
                         original_name="x.tif", model_name="NuclearSegmentation")
    worker.queue.ensure_group()
    worker.queue.submit(key, {**request.to_fields(), "status": "new"})
    return key


def test_stop_request_ends_an_idle_worker_promptly(worker):
    runner = threading.Thread(target=worker.run)
    runner.start()
    wait_until(lambda: worker.services.redis.exists("queue:segmentation"), 10, "group created")
    worker.request_stop()
    runner.join(10)
    assert not runner.is_alive()
    assert worker.services.redis.xinfo_consumers("queue:segmentation", "consumers") == []


def test_release_hands_held_jobs_back_and_uncounts_them(worker):
    key = _submit(worker)
    deliveries = worker.queue.claim(worker.id, 1, 0.1)
    worker.services.store.count_delivery(key)
    worker._held = deliveries
    worker._release()
    assert worker.services.store.get(key)["attempts"] == "0"
    [again] = worker.queue.claim("another", 1, 0.1)
    assert again.job_key == key


def test_jobs_claimed_while_stopping_go_back(worker):
    key = _submit(worker)
    worker.request_stop()
    worker.run()  # stops at once, holding nothing
    [again] = worker.queue.claim("another", 1, 0.1)
    assert again.job_key == key


def test_a_crashing_handler_hands_its_jobs_back_unacknowledged(worker, monkeypatch):
    key = _submit(worker)

    def lose_redis(keys):
        raise redis.ConnectionError("Redis went away mid-job")

    monkeypatch.setattr(worker, "handle", lose_redis)
    worker._work(worker.queue.claim(worker.id, 1, 0.1))

    [again] = worker.queue.claim("another", 1, 0.1)
    assert again.job_key == key
    assert worker.queue.length() == 1


def test_a_job_that_keeps_killing_its_consumer_fails_with_a_reason(worker):
    key = _submit(worker)
    store = worker.services.store
    for _ in range(worker.services.settings.max_deliveries):
        store.count_delivery(key)  # earlier consumers died holding it

    worker.handle([key])

    job = store.get(key)
    assert job["status"] == "failed"
    assert "stopped its consumer 3 times" in job["reason"]
