"""The job queue and job store of `consumers/` over a `redis.asyncio` client.

Same streams, same Lua scripts, same keys: only the calls that the sync
classes make directly on the client are re-written here to be awaited.
"""

import redis

from consumers.jobstore import JobStore, finished_children_key
from consumers.queue import GROUP, JobQueue


class AsyncJobQueue(JobQueue):
    """`JobQueue` whose `ensure_group` and `submit` are coroutines."""

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def submit(self, job_key: str, fields: dict[str, str]) -> bool:
        flat = [item for pair in fields.items() for item in pair]
        return bool(await self._submit(keys=[job_key, self.stream], args=flat))


class AsyncJobStore(JobStore):
    """`JobStore` whose `expire` is a coroutine (`get` already returns an awaitable)."""

    async def expire(self, job_key: str, seconds: int) -> bool:
        async with self.redis.pipeline() as pipe:
            pipe.expire(job_key, seconds)
            pipe.expire(finished_children_key(job_key), seconds)
            return bool((await pipe.execute())[0])
