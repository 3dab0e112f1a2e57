"""`AutoPipeline` and the submissions and job reads that share it, against a real redis-server."""

import asyncio

import pytest
import redis

from consumers.jobs import child_job_key, new_job_key
from consumers.queue import stream_name
from frontend.services.redis_async import AsyncJobQueue, AutoPipeline, redis_client
from tests.fixtures.servers import RedisServer
from tests.frontend.helpers import jobs_service, run_async


@pytest.fixture
def private_redis():
    """A redis-server of the test's own, so that its connection count is the test's alone."""
    server = RedisServer()
    yield server.url
    server.stop()


def connections_made(url: str) -> int:
    return redis.Redis.from_url(url).info("stats")["total_connections_received"]


def test_concurrent_commands_share_one_connection_and_each_gets_its_reply(private_redis):
    redis_url = private_redis

    async def concurrently():
        client = redis_client(redis_url)
        pipeline = AutoPipeline(client)
        try:
            await asyncio.gather(*(pipeline.execute("SET", f"k{i}", str(i)) for i in range(200)))
            return await asyncio.gather(*(pipeline.execute("GET", f"k{i}") for i in range(200)))
        finally:
            await client.aclose()

    before = connections_made(redis_url)
    assert run_async(concurrently) == [str(i) for i in range(200)]
    # One at a time, 200 concurrent commands would each take a pooled connection of their own.
    assert connections_made(redis_url) - before - 1 == 1  # `- 1`: the counting client itself


def test_an_error_reaches_only_its_own_caller(redis_url):
    redis.Redis.from_url(redis_url).set("a-string", "x")

    async def mixed():
        client = redis_client(redis_url)
        pipeline = AutoPipeline(client)
        try:
            return await asyncio.gather(pipeline.execute("SET", "before", "1"),
                                        pipeline.execute("HSET", "a-string", "field", "1"),
                                        pipeline.execute("INCR", "counter"), return_exceptions=True)
        finally:
            await client.aclose()

    ok, wrong_type, counted = run_async(mixed)
    assert ok is True and counted == 1
    assert isinstance(wrong_type, redis.ResponseError) and "WRONGTYPE" in str(wrong_type)


def test_a_cancelled_caller_leaves_the_others_their_replies(redis_url):
    async def one_cancelled():
        client = redis_client(redis_url)
        pipeline = AutoPipeline(client)
        try:
            first = asyncio.ensure_future(pipeline.execute("INCR", "n"))
            second = asyncio.ensure_future(pipeline.execute("INCR", "n"))
            await asyncio.sleep(0)
            first.cancel()
            return await second, await pipeline.execute("GET", "n")
        finally:
            await client.aclose()

    assert run_async(one_cancelled) == (2, "2")  # the cancelled command still ran, once


def test_an_unreachable_redis_fails_every_caller_with_the_connection_error():
    server = RedisServer()
    url = server.url
    server.stop()

    async def unreachable():
        client = redis_client(url)
        pipeline = AutoPipeline(client)
        try:
            return await asyncio.gather(*(pipeline.execute("GET", f"k{i}") for i in range(5)),
                                        return_exceptions=True)
        finally:
            await client.aclose()

    assert all(isinstance(error, redis.ConnectionError) for error in run_async(unreachable))


def test_submissions_survive_a_flushed_script_cache(redis_url):
    async def submit_around_a_flush():
        client = redis_client(redis_url)
        queue = AsyncJobQueue(client, "segmentation")
        try:
            created = [await queue.submit("segmentation:one", {"status": "new"})]
            await client.script_flush()
            created += await asyncio.gather(queue.submit("segmentation:two", {"status": "new"}),
                                            queue.submit("segmentation:one", {"status": "new"}))
            return created
        finally:
            await client.aclose()

    assert run_async(submit_around_a_flush) == [True, True, False]  # `one` exists: not queued twice
    assert redis.Redis.from_url(redis_url).xlen(stream_name("segmentation")) == 2


@pytest.mark.parametrize("jobs", [1, 64])
def test_concurrent_submissions_are_each_created_and_queued_once(redis_url, jobs):
    async def submit_all():
        client = redis_client(redis_url)
        queue = AsyncJobQueue(client, "segmentation")
        try:
            return await asyncio.gather(*(queue.submit(f"segmentation:{i}", {"status": "new", "n": str(i)})
                                          for i in range(jobs)))
        finally:
            await client.aclose()

    assert run_async(submit_all) == [True] * jobs
    check = redis.Redis.from_url(redis_url, decode_responses=True)
    assert check.xlen(stream_name("segmentation")) == jobs
    assert [check.hget(f"segmentation:{i}", "n") for i in range(jobs)] == [str(i) for i in range(jobs)]


def test_concurrent_job_views_and_expiries_share_one_connection(settings, private_redis):
    redis_url = private_redis

    writer = redis.Redis.from_url(redis_url, decode_responses=True)
    parent = new_job_key("segmentation")
    children = [child_job_key(parent, i) for i in range(3)]
    for i, child in enumerate(children):
        writer.hset(child, mapping={"status": "done", "parent": parent, "original_name": f"{i}.tif"})
    writer.hset(parent, mapping={"status": "waiting", "children": ",".join(children), "total_jobs": "3"})
    singles = [new_job_key("segmentation") for _ in range(150)]
    for key in singles:
        writer.hset(key, mapping={"status": "new", "original_name": "cells.tif"})
    unknown = new_job_key("segmentation")

    async def concurrently():
        client = redis_client(redis_url)
        jobs = jobs_service(settings, client)
        try:
            views = await asyncio.gather(*(jobs.view(key) for key in [parent] * 50 + singles + [unknown]))
            expired = await asyncio.gather(*(jobs.expire(key, 60) for key in [*singles, unknown]))
            return views, expired
        finally:
            await client.aclose()

    before = connections_made(redis_url)
    views, expired = run_async(concurrently)
    # One at a time, 200 concurrent reads would need more than the pool's 100 connections.
    assert connections_made(redis_url) - before - 1 == 1
    assert all([child.key for child in view.children] == children for view in views[:50])
    assert all(view.status == "new" and view.children == [] for view in views[50:-1])
    assert views[-1] is None
    assert expired == [True] * len(singles) + [False]
    assert 0 < writer.ttl(singles[0]) <= 60 and writer.ttl(parent) == -1
