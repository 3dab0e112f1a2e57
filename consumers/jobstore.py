"""Reading and moving job hashes: the status transitions every writer shares.

A final status (`done`, `failed`) is never overwritten, so a job that runs
twice (its lease expired while it was still alive) yields exactly one result:
whoever finishes first wins, the other's writes are refused.
"""

import time

import redis

from consumers.jobs import JobStatus
from consumers.queue import stream_name

# Write fields unless the job is final; a final status also sets the TTL.
# Returns -1 when the job does not exist, 0 when it is final, 1 when written.
_UPDATE = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if status == 'done' or status == 'failed' then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
local new = redis.call('HGET', KEYS[1], 'status')
if (new == 'done' or new == 'failed') and tonumber(ARGV[1]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return 1
"""

# A zip job's child finished: count it once, update the parent's progress and,
# when the last child is in, queue the parent so a consumer aggregates it.
_CHILD_FINISHED = """
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
local total = tonumber(redis.call('HGET', KEYS[1], 'total_jobs') or '0')
local finished = redis.call('SCARD', KEYS[2])
if total > 0 then
  redis.call('HSET', KEYS[1], 'progress', tostring(math.min(99, math.floor(100 * finished / total))))
end
if total > 0 and finished >= total then
  redis.call('XADD', KEYS[3], '*', 'job', KEYS[1])
  return 2
end
return 1
"""


class JobStore:
    """Job hashes in Redis. `client` must decode responses."""

    def __init__(self, client: redis.Redis, *, ttl_seconds: int) -> None:
        self.redis = client
        self.ttl_seconds = ttl_seconds
        self._update = client.register_script(_UPDATE)
        self._child_finished = client.register_script(_CHILD_FINISHED)

    def get(self, job_key: str) -> dict[str, str]:
        """All fields of a job ({} when it does not exist or expired)."""
        return self.redis.hgetall(job_key)

    def update(self, job_key: str, **fields: object) -> bool:
        """Write fields of a job that is not final; False when it is final or gone."""
        fields.setdefault("updated_at", f"{time.time():.6f}")
        flat = [str(item) for pair in fields.items() for item in pair]
        return self._update(keys=[job_key], args=[self.ttl_seconds, *flat]) == 1

    def set_status(self, job_key: str, status: JobStatus, **fields: object) -> bool:
        """Move a job to `status` (with extra fields) unless it is already final."""
        return self.update(job_key, status=status.value, **fields)

    def fail(self, job_key: str, reason: str, **fields: object) -> bool:
        """End a job as `failed` with a reason a person can read."""
        return self.set_status(job_key, JobStatus.FAILED, reason=reason,
                               finished_at=f"{time.time():.6f}", **fields)

    def count_delivery(self, job_key: str) -> int:
        """Count one more delivery of a job; returns how many there were."""
        return int(self.redis.hincrby(job_key, "attempts", 1))

    def uncount_delivery(self, job_key: str) -> None:
        """Take back a delivery that was handed back unfinished (not the job's fault)."""
        self.update(job_key, attempts=max(0, int(self.redis.hget(job_key, "attempts") or 1) - 1))

    def child_finished(self, parent_key: str, child_key: str, job_type: str) -> bool:
        """Record a finished child of a zip job; True when it was the last one."""
        result = self._child_finished(
            keys=[parent_key, finished_children_key(parent_key), stream_name(job_type)],
            args=[child_key])
        return result == 2

    def finished_children(self, parent_key: str) -> set[str]:
        """Children of a zip job that reached a final status."""
        return self.redis.smembers(finished_children_key(parent_key))

    def expire(self, job_key: str, seconds: int) -> bool:
        """Let a job (and its zip bookkeeping) expire in `seconds`; False if it does not exist."""
        with self.redis.pipeline() as pipe:
            pipe.expire(job_key, seconds)
            pipe.expire(finished_children_key(job_key), seconds)
            return bool(pipe.execute()[0])


def finished_children_key(parent_key: str) -> str:
    """The set of a zip job's children that are finished."""
    return f"{parent_key}:finished"
