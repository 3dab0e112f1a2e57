"""The consumer loop: claim jobs, keep their leases, finish or hand them back.

Shutdown follows the pod lifecycle: the first SIGTERM stops claiming and lets
the current jobs finish for up to `shutdown_grace_seconds` (shorter than the
pod's grace period), then hands back whatever is unfinished; a second signal
hands back at once and exits.
"""

import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import redis

from consumers import metrics
from consumers.jobs import JobRequest, JobStatus
from consumers.queue import Delivery
from consumers.segmentation import run_segmentation
from consumers.services import Services, guarded
from consumers.zipjobs import run_zip_job

log = logging.getLogger(__name__)


class Worker:
    """One consumer serving the queue of `services.settings.job_type`."""

    def __init__(self, services: Services, consumer_id: str) -> None:
        self.services = services
        self.id = consumer_id
        self.queue = services.queue
        self.stopping = threading.Event()
        self.tick = min(2.0, services.settings.lease_seconds / 3)
        self._held: list[Delivery] = []
        self._drain_deadline = float("inf")
        self._last_requeue = 0.0
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="job")

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT drain; a second one exits at once."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def request_stop(self, signum: int | None = None, frame: object = None) -> None:
        """Stop claiming; a second call hands the current jobs back and exits."""
        if self.stopping.is_set():
            log.warning("second stop signal: handing jobs back and exiting now")
            self._release()
            os._exit(1)
        log.info("stopping: finishing current jobs for up to %.0f s",
                 self.services.settings.shutdown_grace_seconds)
        self._drain_deadline = time.monotonic() + self.services.settings.shutdown_grace_seconds
        self.stopping.set()

    def run(self) -> None:
        """Serve the queue until asked to stop."""
        self.queue.ensure_group()
        log.info("consumer %s serving %s", self.id, self.queue.stream)
        while not self.stopping.is_set():
            try:
                self._requeue_expired()
                deliveries = self.queue.claim(self.id, self.services.settings.jobs_per_claim, self.tick)
            except redis.ResponseError as error:
                # NOGROUP: the group is gone; UNBLOCKED: the stream was deleted while we waited.
                if not str(error).startswith(("NOGROUP", "UNBLOCKED")):
                    raise
                log.warning("the queue vanished (Redis restarted without its data?): recreating it")
                self.queue.ensure_group()
                continue
            except redis.ConnectionError as error:
                log.warning("Redis unreachable (%s): retrying", error)
                self.stopping.wait(1)
                continue
            if deliveries and not self.stopping.is_set():
                self._work(deliveries)
            elif deliveries:
                self.queue.hand_back(deliveries)
        self._release()
        self._executor.shutdown()

    def _work(self, deliveries: list[Delivery]) -> None:
        """Handle claimed jobs in a thread while this one renews their leases."""
        self._held = deliveries
        claimed = time.monotonic()
        gauge = metrics.JOBS_IN_PROGRESS.labels(self.queue.job_type)
        gauge.set(len(deliveries))
        future = self._executor.submit(self.handle, [d.job_key for d in deliveries])
        finished = False
        while not finished:
            try:
                future.result(timeout=self.tick)
                finished = True
            except FutureTimeout:
                self.queue.renew(self.id, deliveries)
                self._requeue_expired()
                if time.monotonic() > self._drain_deadline:
                    log.warning("jobs not finished within the shutdown grace period: handing back")
                    self._release()
                    logging.shutdown()
                    os._exit(0)  # the job thread cannot be interrupted; its writes are guarded
            except Exception:
                # Not acknowledged: the jobs go back to the queue now or, if Redis is
                # what failed, when their leases run out. Deliveries are counted, so a
                # job that always crashes its handler ends failed, not in a loop.
                log.exception("handling %s crashed; handing the jobs back", [d.job_key for d in deliveries])
                self._hand_back_quietly(deliveries)
                break
        if finished:
            for delivery in deliveries:
                self.queue.ack(delivery)
            metrics.JOB_SECONDS.labels(self.queue.job_type).observe(time.monotonic() - claimed)
        self._held = []
        gauge.set(0)

    def handle(self, keys: list[str]) -> None:
        """Process jobs: segmentation jobs together, zip jobs one by one."""
        admitted = [admitted for key in keys if (admitted := self._admit(key))]
        run_segmentation(self.services, [key for key, request in admitted if not request.is_zip])
        for key, request in admitted:
            if request.is_zip:
                guarded(self.services, key, run_zip_job, self.services, key)
        for key in keys:
            self._after(key)

    def _admit(self, key: str) -> tuple[str, JobRequest] | None:
        """Count a delivery and mark the job started; None for jobs not to run."""
        store = self.services.store
        job = store.get(key)
        if not job or JobStatus(job["status"]).final:
            return None
        attempts = store.count_delivery(key)
        limit = self.services.settings.max_deliveries
        if attempts > limit:
            store.fail(key, f"processing this job stopped its consumer {limit} times "
                            "(the image may be too large for the memory available)")
            return None
        request = JobRequest.from_fields(job)
        if not request.is_zip:  # zip jobs go new → waiting → done
            store.set_status(key, JobStatus.STARTED, identity=self.id)
        return key, request

    def _after(self, key: str) -> None:
        """Account for a job after a delivery: metrics, its zip parent, its delivery count."""
        store = self.services.store
        job = store.get(key)
        if not job:
            return
        if not JobStatus(job["status"]).final:
            store.update(key, attempts=0)  # a zip job waiting for its children
            return
        metrics.record_finished(self.queue.job_type, job["status"], job.get("created_at"))
        if job.get("parent"):
            store.child_finished(job["parent"], key, self.queue.job_type)

    def _requeue_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_requeue >= self.tick:
            self._last_requeue = now
            if moved := self.queue.requeue_expired():
                log.warning("re-queued %d job(s) whose consumer stopped renewing its lease", moved)
                metrics.JOBS_REQUEUED.labels(self.queue.job_type, "lease expired").inc(moved)

    def _hand_back_quietly(self, deliveries: list[Delivery]) -> None:
        try:
            metrics.JOBS_REQUEUED.labels(self.queue.job_type, "handler crashed").inc(
                self.queue.hand_back(deliveries))
        except redis.RedisError as error:
            log.warning("could not hand jobs back (%s); their leases will run out", error)

    def _release(self) -> None:
        """Hand back every job this consumer holds and leave the consumer group."""
        held = {d.entry_id: d for d in self._held}
        for entry_id in self.queue.pending_of(self.id):
            held.setdefault(entry_id, Delivery(entry_id, ""))
        if held:
            for delivery in self._held:
                self.services.store.uncount_delivery(delivery.job_key)
            moved = self.queue.hand_back(list(held.values()))
            metrics.JOBS_REQUEUED.labels(self.queue.job_type, "shutdown").inc(moved)
            log.info("handed back %d job(s)", moved)
        self._held = []
        self.queue.forget_consumer(self.id)
