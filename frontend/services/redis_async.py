"""The job queue of `consumers/` over a `redis.asyncio` client, with auto-pipelining
and hiredis command packing.

Same streams, same Lua scripts, same keys: only the calls that the sync
class makes directly on the client are re-written here to be awaited.
"""

import asyncio

import redis
import redis.asyncio as aredis
from redis.asyncio import connection as aredis_connection
from redis.exceptions import NoScriptError

from consumers.queue import GROUP, JobQueue


class AutoPipeline:
    """Send the commands that coroutines issue in the same turn of the event loop as one
    pipeline (auto-pipelining, as ioredis and Lettuce do): one round trip, one pooled
    connection and one retry wrapper for many concurrent requests instead of one each.

    Each caller gets its own command's reply or error; a connection error fails every
    command of its pipeline, as it would have failed each of them alone."""

    def __init__(self, client: aredis.Redis) -> None:
        self.redis = client
        self._waiting: list[tuple[tuple, asyncio.Future]] = []
        self._sending: set[asyncio.Task] = set()

    async def execute(self, *args):
        """Run one command, in a pipeline with whatever else is issued in this turn."""
        reply = asyncio.get_running_loop().create_future()
        self._waiting.append((args, reply))
        if len(self._waiting) == 1:
            asyncio.get_running_loop().call_soon(self._send_waiting)
        return await reply

    def _send_waiting(self) -> None:
        batch, self._waiting = self._waiting, []
        task = asyncio.ensure_future(self._send(batch))
        self._sending.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[tuple, asyncio.Future]]) -> None:
        try:
            replies = await self._replies([args for args, _ in batch])
        except Exception as error:  # noqa: BLE001 - handed to every caller of the batch
            replies = [error] * len(batch)
        for (_, future), reply in zip(batch, replies):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _replies(self, commands: list[tuple]) -> list:
        if len(commands) == 1:  # alone in its turn: a pipeline would only add its own cost
            try:
                return [await self.redis.execute_command(*commands[0])]
            except redis.ResponseError as error:
                return [error]
        async with self.redis.pipeline(transaction=False) as pipe:
            for args in commands:
                pipe.execute_command(*args)
            return await pipe.execute(raise_on_error=False)


class AsyncJobQueue(JobQueue):
    """`JobQueue` whose `ensure_group` and `submit` are coroutines; submissions made at the
    same time share a pipeline (`AutoPipeline`, one per client when given)."""

    def __init__(self, client: aredis.Redis, job_type: str, pipeline: AutoPipeline | None = None) -> None:
        super().__init__(client, job_type)
        self.pipeline = pipeline or AutoPipeline(client)

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def submit(self, job_key: str, fields: dict[str, str]) -> bool:
        flat = [item for pair in fields.items() for item in pair]
        try:
            created = await self.pipeline.execute("EVALSHA", self._submit.sha, 2, job_key, self.stream, *flat)
        except NoScriptError:  # a restarted or flushed Redis: the script loads itself
            created = await self._submit(keys=[job_key, self.stream], args=flat)
        return bool(created)


try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # hiredis is in the requirements; without it the pure-Python packer is used
    _hiredis_pack = None


class _HiredisPacking:
    """Pack commands with hiredis's C packer (redis.asyncio packs in Python: a job submission
    is ~40 arguments, and packing them was a tenth of the API's CPU per submission).

    Only for arguments whose encoding is unambiguous (str and bytes, their subclasses such as
    a `StrEnum` status, non-bool int), as the Python packer would encode them; anything else
    takes the Python packer."""

    def pack_command(self, *args):
        if _hiredis_pack is None or not isinstance(args[0], str) or " " in args[0] \
                or self.encoder.encoding.lower().replace("-", "") != "utf8" \
                or self.encoder.encoding_errors != "strict":
            return super().pack_command(*args)
        packed = []
        for arg in args:
            if isinstance(arg, (str, bytes)):
                packed.append(arg)
            elif type(arg) is int:
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
