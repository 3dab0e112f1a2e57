"""Queue primitives over a Redis stream per job type.

Jobs are delivered at least once without any janitor: a consumer claims
entries through a consumer group and holds each under a lease that it renews
while it works. Every consumer, idle or busy, periodically puts entries whose
lease ran out (their consumer died: SIGKILL, OOM, lost node) back at the end of
the stream for another consumer. An acknowledged entry is deleted, so the
stream's length is exactly the outstanding work: the autoscaling signal.
"""

from dataclasses import dataclass

import redis

GROUP = "consumers"

# Re-add entries to the stream and drop the old ones, but only those still
# pending and idle for at least ARGV[2] ms: a consumer that renewed its lease
# in the meantime keeps its job. ARGV[2] = 0 hands entries back unconditionally.
_REQUEUE = """
local moved = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local still = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[2], id, id, 1)
  if #still > 0 then
    local rows = redis.call('XRANGE', KEYS[1], id, id)
    redis.call('XACK', KEYS[1], ARGV[1], id)
    redis.call('XDEL', KEYS[1], id)
    if #rows > 0 then redis.call('XADD', KEYS[1], '*', unpack(rows[1][2])) end
    moved = moved + 1
  end
end
return moved
"""

# Create the job hash and enqueue it in one step, unless the job exists:
# creating a job twice (a retried request, a re-run fan-out) enqueues it once.
_SUBMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
redis.call('XADD', KEYS[2], '*', 'job', KEYS[1])
return 1
"""


def stream_name(job_type: str) -> str:
    """The Redis stream that queues jobs of `job_type`."""
    return f"queue:{job_type}"


@dataclass(frozen=True)
class Delivery:
    """One claimed queue entry: which job, under which stream entry id."""

    entry_id: str
    job_key: str


class JobQueue:
    """The queue of one job type. `client` must decode responses (`decode_responses=True`)."""

    def __init__(self, client: redis.Redis, job_type: str, *, lease_seconds: float = 30) -> None:
        self.redis = client
        self.job_type = job_type
        self.stream = stream_name(job_type)
        self.lease_ms = int(lease_seconds * 1000)
        self._requeue = client.register_script(_REQUEUE)
        self._submit = client.register_script(_SUBMIT)

    def ensure_group(self) -> None:
        """Create the stream and its consumer group if they do not exist yet."""
        try:
            self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def submit(self, job_key: str, fields: dict[str, str]) -> bool:
        """Create job `job_key` with `fields` and enqueue it; False if it already existed."""
        flat = [item for pair in fields.items() for item in pair]
        return bool(self._submit(keys=[job_key, self.stream], args=flat))

    def enqueue(self, job_key: str) -> None:
        """Queue an existing job (again)."""
        self.redis.xadd(self.stream, {"job": job_key})

    def claim(self, consumer: str, count: int, block_seconds: float) -> list[Delivery]:
        """Block until up to `count` jobs are available (or the timeout passes) and take them."""
        reply = self.redis.xreadgroup(GROUP, consumer, {self.stream: ">"}, count=count,
                                      block=max(1, int(block_seconds * 1000)))
        return [Delivery(entry_id, values["job"]) for _, entries in reply or []
                for entry_id, values in entries]

    def renew(self, consumer: str, deliveries: list[Delivery]) -> None:
        """Extend the leases of jobs this consumer still works on."""
        if deliveries:
            self.redis.xclaim(self.stream, GROUP, consumer, 0,
                              [d.entry_id for d in deliveries], justid=True)

    def ack(self, delivery: Delivery) -> None:
        """The job is finished (done or failed): forget its entry."""
        with self.redis.pipeline() as pipe:
            pipe.xack(self.stream, GROUP, delivery.entry_id)
            pipe.xdel(self.stream, delivery.entry_id)
            pipe.execute()

    def hand_back(self, deliveries: list[Delivery]) -> int:
        """Put unfinished jobs back at the end of the queue for another consumer."""
        if not deliveries:
            return 0
        return int(self._requeue(keys=[self.stream], args=[GROUP, 0, *(d.entry_id for d in deliveries)]))

    def requeue_expired(self, limit: int = 100) -> int:
        """Re-queue jobs whose consumer stopped renewing its lease; returns how many."""
        stale = self.redis.xpending_range(self.stream, GROUP, min="-", max="+", count=limit,
                                          idle=self.lease_ms)
        if not stale:
            return 0
        ids = [entry["message_id"] for entry in stale]
        return int(self._requeue(keys=[self.stream], args=[GROUP, self.lease_ms, *ids]))

    def pending_of(self, consumer: str) -> list[str]:
        """Entry ids this consumer holds (claimed and not yet acknowledged)."""
        entries = self.redis.xpending_range(self.stream, GROUP, min="-", max="+", count=1000,
                                            consumername=consumer)
        return [entry["message_id"] for entry in entries]

    def forget_consumer(self, consumer: str) -> None:
        """Drop a stopped consumer's name from the group (after handing its jobs back)."""
        self.redis.xgroup_delconsumer(self.stream, GROUP, consumer)

    def length(self) -> int:
        """Outstanding jobs: waiting plus in progress (what KEDA scales on)."""
        return int(self.redis.xlen(self.stream))
