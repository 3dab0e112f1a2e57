"""The job queue and job store of `consumers/` over a `redis.asyncio` client.

Same streams, same Lua scripts, same keys: only the calls that the sync
classes make directly on the client are re-written here to be awaited.
"""

import redis
import redis.asyncio as aredis
from redis.asyncio import connection as aredis_connection

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


try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # hiredis is in the requirements; without it the pure-Python packer is used
    _hiredis_pack = None


class _HiredisPacking:
    """Pack commands with hiredis's C packer (redis.asyncio packs in Python: a job submission
    is ~40 arguments, and packing them was a tenth of the API's CPU per submission).

    Only for arguments whose encoding is unambiguous (str, bytes, non-bool int), as the
    Python packer would encode them; anything else takes the Python packer."""

    def pack_command(self, *args):
        if _hiredis_pack is None or not isinstance(args[0], str) or " " in args[0] \
                or self.encoder.encoding.lower().replace("-", "") != "utf8" \
                or self.encoder.encoding_errors != "strict":
            return super().pack_command(*args)
        packed = []
        for arg in args:
            kind = type(arg)
            if kind is str or kind is bytes:
                packed.append(arg)
            elif kind is int:
                packed.append(str(arg))
            else:
                return super().pack_command(*args)
        try:
            return [_hiredis_pack(tuple(packed))]
        except (TypeError, UnicodeError):
            return super().pack_command(*args)


class HiredisConnection(_HiredisPacking, aredis_connection.Connection):
    pass


class HiredisSSLConnection(_HiredisPacking, aredis_connection.SSLConnection):
    pass


class HiredisUnixConnection(_HiredisPacking, aredis_connection.UnixDomainSocketConnection):
    pass


_FASTER = {aredis_connection.Connection: HiredisConnection,
           aredis_connection.SSLConnection: HiredisSSLConnection,
           aredis_connection.UnixDomainSocketConnection: HiredisUnixConnection}


def redis_client(url: str) -> aredis.Redis:
    """An asyncio Redis client for `url` (decoded answers) that packs commands with hiredis."""
    client = aredis.Redis.from_url(url, decode_responses=True)
    pool = client.connection_pool
    pool.connection_class = _FASTER.get(pool.connection_class, pool.connection_class)
    return client
