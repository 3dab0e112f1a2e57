"""Prometheus metrics of the API, in a registry of their own per app."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ApiMetrics:
    """Request counts and latencies by route template, jobs created and bytes uploaded."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("kiosk_api_requests", "HTTP requests served",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("kiosk_api_request_duration_seconds", "Time to answer a request",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_progress = Gauge("kiosk_api_requests_in_progress", "Requests being served",
                                 registry=self.registry)
        self.jobs_created = Counter("kiosk_api_jobs_created", "Jobs created through the API",
                                    ["job_type"], registry=self.registry)
        self.upload_bytes = Counter("kiosk_api_upload_bytes", "Bytes of accepted uploads",
                                    registry=self.registry)
