"""What every job handler needs, built once per consumer process."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import redis

from consumers.errors import JobInputError
from consumers.jobs import JobStatus
from consumers.jobstore import JobStore
from consumers.model_client import ModelCannotRun, ModelClient, ModelServerUnavailable
from consumers.queue import JobQueue
from consumers.retry import RetryPolicy
from consumers.settings import ConsumerSettings
from consumers.storage import Storage

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Services:
    """The connections and policies of one consumer."""

    settings: ConsumerSettings
    redis: redis.Redis
    store: JobStore
    queue: JobQueue
    storage: Storage
    model: ModelClient
    retry: RetryPolicy

    @classmethod
    def from_settings(cls, settings: ConsumerSettings) -> "Services":
        """Connect to what the settings name."""
        client = redis.Redis.from_url(settings.redis_url, decode_responses=True,
                                      health_check_interval=30)
        return cls(
            settings=settings,
            redis=client,
            store=JobStore(client, ttl_seconds=settings.job_ttl_seconds),
            queue=JobQueue(client, settings.job_type, lease_seconds=settings.lease_seconds),
            storage=Storage.from_settings(settings),
            model=ModelClient(settings.model_server, max_batch_size=settings.max_batch_size,
                              retry_budget_seconds=settings.predict_retry_budget_seconds),
            retry=RetryPolicy(settings.retry_attempts, settings.retry_initial_seconds,
                              settings.retry_max_seconds),
        )

    def close(self) -> None:
        self.model.close()
        self.redis.close()


def guarded(services: Services, key: str, step: Callable[..., T], *args: object) -> T | None:
    """Run a step of job `key`; any error ends that job `failed` with a readable reason.

    Returns the step's result, or None when the job failed.
    """
    try:
        return step(*args)
    except JobInputError as error:
        services.store.fail(key, str(error))
    except ModelServerUnavailable as error:
        defer(services, key, error)
    except ModelCannotRun as error:  # a broken model, not the image: its detail names graph nodes
        log.error("job %s failed: %s", key, error)
        services.store.fail(key, f"{error.reason}; its operators can find the detail in the logs under {key}")
    except Exception:  # a bug or an exhausted retry must not take other jobs down
        # The detail (paths, hosts) is for the operators' log; a person gets a plain reason.
        log.exception("job %s failed", key)
        services.store.fail(key, "the kiosk could not process this job because of an internal "
                                 f"error; its operators can find it in the logs under {key}")
    return None


def defer(services: Services, key: str, error: ModelServerUnavailable) -> None:
    """Queue job `key` again because its model server stayed unreachable (it may be
    scaling up from zero), up to `max_deferrals` times; then it fails with the reason."""
    store = services.store
    deferrals = int(services.redis.hincrby(key, "deferrals", 1))
    if deferrals > services.settings.max_deferrals:
        log.warning("job %s fails: %s", key, error)  # the server's address is for the log only
        store.fail(key, f"the model server did not answer; the job waited for it {deferrals} times")
        return
    log.warning("job %s goes back to the queue (%d/%d): %s", key, deferrals,
                services.settings.max_deferrals, error)
    store.uncount_delivery(key)  # not the job's fault
    if store.set_status(key, JobStatus.NEW):
        services.queue.enqueue(key)
