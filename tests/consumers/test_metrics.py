"""Consumer metrics: the queue length an autoscaler reads, and finished-job counters."""

import httpx
import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from consumers import metrics
from consumers.queue import JobQueue
from tests.fixtures.servers import free_port


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_queue_length_is_read_at_scrape_time(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    queue = JobQueue(client, "segmentation")
    queue.ensure_group()
    registry = CollectorRegistry()
    registry.register(metrics.QueueLengthCollector(queue))
    key = ("kiosk_queue_length", (("job_type", "segmentation"),))
    assert _samples(generate_latest(registry).decode())[key] == 0
    queue.enqueue("job-1")
    queue.enqueue("job-2")
    assert _samples(generate_latest(registry).decode())[key] == 2


def test_metrics_endpoint_serves_queue_and_job_counters(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    queue = JobQueue(client, "segmentation")
    queue.ensure_group()
    queue.enqueue("job-1")
    port = free_port()
    metrics.serve_metrics(port, queue)
    metrics.record_finished("segmentation", "done", created_at="0")
    samples = _samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
    assert samples[("kiosk_queue_length", (("job_type", "segmentation"),))] == 1
    assert samples[("kiosk_jobs_finished_total", (("job_type", "segmentation"), ("status", "done")))] >= 1
