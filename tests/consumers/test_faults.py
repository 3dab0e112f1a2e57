"""Consumers that die, are stopped, or lose their model server: no job is lost or doubled."""

import signal
import time
from types import SimpleNamespace

import pytest

from consumers.settings import ConsumerSettings
from consumers.storage import Storage
from consumers.worker import Worker
from tests.consumers.conftest import synthetic_tiff
from tests.fixtures.consumers import ConsumerPool, JobClient
from tests.fixtures.model_server import PROJECT_ROOT, ModelServerProcess
from tests.fixtures.servers import RedisServer, free_port, wait_until

# Stages long enough for a signal to arrive before the job ends (the big job predicts for a while).
BUSY = {"pre-processing", "predicting"}


@pytest.fixture
def setup(nuclear_model_server, tmp_path):
    """A fresh Redis and bucket; consumers are started by each test."""
    redis_server = RedisServer()
    pool = ConsumerPool(redis_server.url, str(tmp_path / "bucket"), nuclear_model_server.address)
    client = JobClient(redis_server.url, Storage(str(tmp_path / "bucket")))
    yield pool, client
    pool.stop()
    client.close()
    redis_server.stop()


def _big_job(client: JobClient) -> str:
    data, _ = synthetic_tiff(seed=40, shape=(1536, 1536))
    return client.submit(data, "big.tif")


def _one_result(client: JobClient, job: dict[str, str]) -> None:
    folder = job["output_file_name"].rsplit("/", 1)[0] + "/"
    assert client.storage.list(folder) == sorted(
        [job["output_file_name"], job["preview_file_name"], job["preview_image_file_name"]])


def test_sigkilled_consumer_job_completes_exactly_once(setup):
    pool, client = setup
    [victim] = pool.start(1)
    key = _big_job(client)
    client.wait_status(key, BUSY, timeout=120)
    assert client.job(key)["identity"] == victim
    pool.signal(victim, signal.SIGKILL)
    pool.wait_exit(victim, 10)
    [rescuer] = pool.start(1)
    job = client.wait_final(key, timeout=180)
    assert job["status"] == "done", job.get("reason")
    assert job["identity"] == rescuer and job["attempts"] == "2"
    _one_result(client, job)
    wait_until(lambda: client.queue.length() == 0, 30, "empty queue")


def test_sigterm_finishes_the_current_job_then_exits(setup):
    pool, client = setup
    [consumer] = pool.start(1)
    key = _big_job(client)
    client.wait_status(key, BUSY, timeout=120)
    pool.signal(consumer, signal.SIGTERM)
    assert pool.wait_exit(consumer, 120) == 0
    job = client.job(key)
    assert job["status"] == "done" and job["identity"] == consumer
    assert client.queue.length() == 0


def test_sigterm_hands_back_what_cannot_finish_within_the_grace_period(setup):
    pool, client = setup
    [quitter] = pool.start(1, KIOSK_SHUTDOWN_GRACE_SECONDS="0")
    key = _big_job(client)
    client.wait_status(key, BUSY, timeout=120)
    pool.signal(quitter, signal.SIGTERM)
    assert pool.wait_exit(quitter, 30) == 0
    assert "handing back" in pool.log(quitter)
    [finisher] = pool.start(1)
    job = client.wait_final(key, timeout=180)
    assert job["status"] == "done" and job["identity"] == finisher
    _one_result(client, job)


def test_a_model_server_down_for_a_while_delays_jobs_without_failing_them(nuclear_model_server,
                                                                        tmp_path):
    redis_server = RedisServer()
    model_server = ModelServerProcess(PROJECT_ROOT / "models", port=free_port())
    pool = ConsumerPool(redis_server.url, str(tmp_path / "bucket"), model_server.address)
    client = JobClient(redis_server.url, Storage(str(tmp_path / "bucket")))
    try:
        [consumer] = pool.start(1)
        keys = [client.submit(synthetic_tiff(seed, (256, 256))[0], f"{seed}.tif") for seed in (1, 2)]
        wait_until(lambda: "retry" in pool.log(consumer).lower(), 120, "the consumer retrying")
        assert all(client.job(key)["status"] not in ("done", "failed") for key in keys)
        model_server.start()
        for key in keys:
            job = client.wait_final(key, timeout=180)
            assert job["status"] == "done", job.get("reason")
    finally:
        pool.stop()
        model_server.stop()
        client.close()
        redis_server.stop()


def _default_lease_and_tick() -> tuple[float, float]:
    """The lease a consumer gets by default, and how often its worker renews and scans."""
    settings = ConsumerSettings.model_construct()  # the defaults, not this environment's
    return settings.lease_seconds, Worker(SimpleNamespace(queue=None, settings=settings), "t").tick


def test_the_default_lease_redelivers_within_60_s():
    """The README's promise, pinned where the lease and its scan are defined."""
    lease, tick = _default_lease_and_tick()
    assert (lease, tick) == (30, 2)
    assert lease + 2 * tick <= 60


def test_a_dead_consumers_job_is_redelivered_within_60_s_by_default(setup):
    pool, client = setup
    del pool.env["KIOSK_LEASE_SECONDS"]  # the pool shortens the lease for the other tests
    lease, tick = _default_lease_and_tick()
    consumers = pool.start(2)
    pool.wait_serving(consumers)
    key = _big_job(client)
    victim = client.wait_status(key, BUSY, timeout=120)["identity"]
    [rescuer] = set(consumers) - {victim}
    pool.signal(victim, signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: client.job(key).get("identity") == rescuer, 90, f"redelivery ({client.job(key)})")
    # The victim renewed its lease at most a tick before dying; the rescuer scans every tick.
    slack = 3
    assert lease - 2 * tick <= time.monotonic() - killed <= lease + 2 * tick + slack
    assert client.wait_final(key, timeout=180)["status"] == "done"


def test_a_model_server_down_longer_than_the_retry_budget_requeues_jobs(nuclear_model_server,
                                                                        tmp_path):
    redis_server = RedisServer()
    model_server = ModelServerProcess(PROJECT_ROOT / "models", port=free_port())
    pool = ConsumerPool(redis_server.url, str(tmp_path / "bucket"), model_server.address,
                        KIOSK_PREDICT_RETRY_BUDGET_SECONDS="1", KIOSK_MAX_DEFERRALS="1000")
    client = JobClient(redis_server.url, Storage(str(tmp_path / "bucket")))
    try:
        [consumer] = pool.start(1)
        key = client.submit(synthetic_tiff(3, (256, 256))[0], "waits.tif")
        wait_until(lambda: int(client.job(key).get("deferrals", 0)) >= 2, 120, "two deferrals")
        assert client.job(key)["status"] not in ("done", "failed")
        model_server.start()
        job = client.wait_final(key, timeout=180)
        assert job["status"] == "done", job.get("reason")
        assert "goes back to the queue" in pool.log(consumer)
    finally:
        pool.stop()
        model_server.stop()
        client.close()
        redis_server.stop()


def test_a_model_server_that_never_comes_fails_the_job_after_its_deferrals(setup):
    pool, client = setup
    pool.start(1, KIOSK_MODEL_SERVER=f"127.0.0.1:{free_port()}",
               KIOSK_PREDICT_RETRY_BUDGET_SECONDS="0.5", KIOSK_MAX_DEFERRALS="1")
    job = client.wait_final(client.submit(synthetic_tiff(4, (64, 64))[0], "never.tif"), 120)
    assert job["status"] == "failed"
    assert "did not answer" in job["reason"] and "waited for it 2 times" in job["reason"]
    assert job["deferrals"] == "2"


def test_a_storage_step_that_keeps_failing_fails_the_job_after_its_retries(setup):
    pool, client = setup
    key = client.submit(synthetic_tiff(5, (64, 64))[0], "blocked.tif")
    # A file where the job's output folder must go: every write of its results fails.
    client.storage.write(f"output/{key.split(':')[1]}", b"in the way")
    [consumer] = pool.start(1)
    job = client.wait_final(key, timeout=120)
    assert job["status"] == "failed"
    assert job["reason"].startswith("the kiosk could not process this job")
    assert pool.log(consumer).count("saving the preview failed") == 3  # 4 tries, 3 retries
    assert pool.alive() == [consumer]


def test_redis_losing_the_queue_is_survived(setup):
    pool, client = setup
    [consumer] = pool.start(1)
    pool.wait_serving([consumer])
    client.redis.flushall()  # the worker, not the test, must recreate the consumer group
    data, _ = synthetic_tiff(seed=41, shape=(256, 256))
    job = client.wait_final(client.submit(data, "after-flush.tif"), timeout=120)
    assert job["status"] == "done"
    assert pool.alive() == [consumer]
    assert "the queue vanished" in pool.log(consumer)

