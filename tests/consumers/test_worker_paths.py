"""Real consumer processes: their Prometheus metrics, and the second stop signal.

A model server that never answers keeps a segmentation job busy (its retries) for as long as
a test needs; a zip job that is not a zip ends quickly without one.
"""

import signal
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumers.queue import GROUP
from consumers.storage import Storage
from tests.consumers.conftest import synthetic_tiff
from tests.fixtures.consumers import ConsumerPool, JobClient
from tests.fixtures.servers import RedisServer, free_port, wait_until

SEGMENTATION = (("job_type", "segmentation"),)


@pytest.fixture
def setup(tmp_path):
    """A fresh Redis and bucket, and consumers whose model server never answers."""
    redis_server = RedisServer()
    pool = ConsumerPool(redis_server.url, str(tmp_path / "bucket"), f"127.0.0.1:{free_port()}",
                        KIOSK_PREDICT_RETRY_BUDGET_SECONDS="600")
    client = JobClient(redis_server.url, Storage(str(tmp_path / "bucket")))
    yield pool, client
    pool.stop()
    client.close()
    redis_server.stop()


def start_with_metrics(pool: ConsumerPool, count: int, **env: str) -> dict[str, int]:
    """Consumers serving /metrics, by id → port, once they serve their queue."""
    ports = {}
    for _ in range(count):
        port = free_port()
        [consumer] = pool.start(1, KIOSK_METRICS_PORT=str(port), **env)
        ports[consumer] = port
    pool.wait_serving(list(ports))
    return ports


def holder(client: JobClient) -> str:
    """The consumer holding the one job in the queue, once one claims it."""
    pending = lambda: client.redis.xpending_range(client.queue.stream, GROUP, "-", "+", 10)  # noqa: E731
    wait_until(lambda: len(pending()) == 1, 60, "a consumer claiming the job")
    return pending()[0]["consumer"]


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_finished_job_is_counted_with_its_latency_and_handling_time(setup):
    pool, client = setup
    [(consumer, port)] = start_with_metrics(pool, 1).items()
    submitted = time.time()
    key = client.submit(b"PK\x03\x04 not really a zip", "broken.zip")
    job = client.wait_final(key, timeout=60)
    wall = time.time() - submitted
    assert job["status"] == "failed"
    wait_until(lambda: scrape(port).get(("kiosk_job_seconds_count", SEGMENTATION)) == 1, 10, "job seconds")
    samples = scrape(port)
    assert samples[("kiosk_jobs_finished_total", SEGMENTATION + (("status", "failed"),))] == 1
    latency = samples[("kiosk_job_latency_seconds_sum", SEGMENTATION)]
    handling = samples[("kiosk_job_seconds_sum", SEGMENTATION)]
    assert samples[("kiosk_job_latency_seconds_count", SEGMENTATION)] == 1
    assert 0 < handling <= latency <= wall, (handling, latency, wall)
    assert samples[("kiosk_jobs_in_progress", SEGMENTATION)] == 0


def test_jobs_in_progress_and_jobs_requeued_after_a_lost_lease(setup):
    pool, client = setup
    ports = start_with_metrics(pool, 2)
    key = client.submit(synthetic_tiff(1, (64, 64))[0], "waits.tif")
    victim = holder(client)
    [rescuer] = set(ports) - {victim}
    assert scrape(ports[victim])[("kiosk_jobs_in_progress", SEGMENTATION)] == 1
    assert scrape(ports[rescuer]).get(("kiosk_jobs_in_progress", SEGMENTATION), 0) == 0
    pool.signal(victim, signal.SIGKILL)
    requeued = ("kiosk_jobs_requeued_total", SEGMENTATION + (("why", "lease expired"),))
    wait_until(lambda: scrape(ports[rescuer]).get(requeued) == 1, 60, "the rescuer re-queueing the job")
    assert holder(client) == rescuer
    wait_until(lambda: scrape(ports[rescuer])[("kiosk_jobs_in_progress", SEGMENTATION)] == 1, 10,
               "the rescuer holding the job")


def test_a_second_stop_signal_hands_the_job_back_and_exits_at_once(setup):
    pool, client = setup
    [consumer] = pool.start(1, KIOSK_SHUTDOWN_GRACE_SECONDS="600")
    key = client.submit(synthetic_tiff(2, (64, 64))[0], "waits.tif")
    assert holder(client) == consumer
    pool.signal(consumer, signal.SIGTERM)
    wait_until(lambda: "stopping: finishing current jobs" in pool.log(consumer), 10, "the first signal")
    assert pool.alive() == [consumer]  # draining: the job could still finish
    pool.signal(consumer, signal.SIGTERM)
    assert pool.wait_exit(consumer, 10) == 1
    assert "second stop signal" in pool.log(consumer)
    # Handed back: waiting in the queue again, held by no consumer, this delivery not counted.
    assert client.redis.xpending(client.queue.stream, GROUP)["pending"] == 0
    assert client.queue.length() == 1
    assert client.job(key).get("attempts") == "0"
