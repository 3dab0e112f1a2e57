"""Prometheus metrics of a consumer: queue depth, finished jobs, latency."""

import time

from prometheus_client import Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from consumers.queue import JobQueue

JOBS_FINISHED = Counter("kiosk_jobs_finished", "Jobs this consumer finished, by final status",
                        ["job_type", "status"])
JOB_SECONDS = Histogram("kiosk_job_seconds", "Seconds from claiming jobs to finishing them",
                        ["job_type"], buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900))
JOB_LATENCY = Histogram("kiosk_job_latency_seconds", "Seconds from a job's creation to its end",
                        ["job_type"], buckets=(0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600))
JOBS_IN_PROGRESS = Gauge("kiosk_jobs_in_progress", "Jobs this consumer holds", ["job_type"])
JOBS_REQUEUED = Counter("kiosk_jobs_requeued", "Jobs put back in the queue", ["job_type", "why"])


class QueueLengthCollector(Collector):
    """Reads the queue's length from Redis at scrape time."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue

    def collect(self):
        family = GaugeMetricFamily("kiosk_queue_length", "Outstanding jobs (waiting + in progress)",
                                   labels=["job_type"])
        family.add_metric([self.queue.job_type], self.queue.length())
        yield family


def serve_metrics(port: int, queue: JobQueue) -> None:
    """Expose /metrics on `port` (0: not at all)."""
    if port:
        REGISTRY.register(QueueLengthCollector(queue))
        start_http_server(port)


def record_finished(job_type: str, status: str, created_at: str | None) -> None:
    """Count a job that reached a final status."""
    JOBS_FINISHED.labels(job_type, status).inc()
    if created_at:
        JOB_LATENCY.labels(job_type).observe(max(0.0, time.time() - float(created_at)))
