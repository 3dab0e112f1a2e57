"""The submission hot path (`FastPredict`) and hiredis command packing, against real Redis."""

import json
from types import SimpleNamespace

import httpx
import pytest
import redis
from redis.asyncio.connection import Connection

from consumers.jobs import JobStatus
from consumers.queue import stream_name
from frontend.api.fast_predict import FastPredict
from frontend.services.redis_async import HiredisConnection, redis_client
from tests.fixtures.servers import RedisServer
from tests.frontend.helpers import jobs_service, run_async, tiff_bytes


class Recorder:
    """Stands for the FastAPI app behind `FastPredict`: records what reaches it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message["body"], message.get("more_body", False)
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"passed on"})


def call(settings, fast: FastPredict, body: bytes, headers: dict[str, str] | None = None,
         path: str = "/api/predict", chunks: int = 1) -> tuple[int, bytes, dict]:
    """One request through `fast` (the body sent in `chunks` parts), with real `Jobs` behind it:
    real Redis and the test's storage, as the app's lifespan wires them."""
    raw = [(k.encode(), v.encode()) for k, v in
           {"content-type": "application/json", **(headers or {})}.items()]
    size = max(1, -(-len(body) // chunks))
    parts = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    messages = [{"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
                for i, part in enumerate(parts)]
    sent: list[dict] = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    async def run() -> dict:
        client = redis_client(settings.redis_url)
        jobs = jobs_service(settings, client)
        await jobs.start()
        scope = {"type": "http", "method": "POST", "path": path, "headers": raw,
                 "app": SimpleNamespace(state=SimpleNamespace(jobs=jobs))}
        try:
            await fast(scope, receive, send)
        finally:
            await client.aclose()
        return scope

    scope = run_async(run)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), scope


@pytest.fixture
def image(bucket_dir):
    """An uploaded TIFF: its name after `uploads/`."""
    (bucket_dir / "uploads" / "f00d").mkdir(parents=True)
    (bucket_dir / "uploads" / "f00d" / "cells.tif").write_bytes(tiff_bytes())
    return "f00d/cells.tif"


def test_valid_submissions_are_answered_directly(settings, image, redis_url):
    behind = Recorder()
    fast = FastPredict(behind, token=None)
    body = json.dumps({"jobType": "segmentation", "imageName": image, "dataRescale": "2",
                       "jobForm": {"selectedChannels": "0"}}).encode()
    status, answer, scope = call(settings, fast, body, chunks=3)
    assert status == 200 and behind.bodies == []
    key = json.loads(answer)["hash"]
    stored = redis.Redis.from_url(redis_url, decode_responses=True)
    assert stored.hget(key, "status") == "new" and stored.hget(key, "input_file_name") == f"uploads/{image}"
    assert float(stored.hget(key, "scale")) == 2.0 and stored.hget(key, "channels") == "0"
    assert scope["route"] == "/api/predict"  # the metrics label


@pytest.mark.parametrize("body, headers", [
    (b'{"jobType": "segmentation"}', {}),  # invalid: FastAPI answers the 400
    (b"{not json", {}),
    (b'{"jobType": "segmentation", "imageName": "never-uploaded.tif"}', {}),  # rejected by Jobs
    (b'{"jobType": "segmentation", "imageName": "x.tif"}', {"content-type": "text/plain"}),
])
def test_everything_else_reaches_fastapi_with_its_body(settings, image, body, headers, redis_url):
    behind = Recorder()
    status, answer, _ = call(settings, FastPredict(behind, token=None), body, headers, chunks=2)
    assert (status, answer) == (299, b"passed on")
    assert behind.bodies == [body]
    assert redis.Redis.from_url(redis_url).xlen(stream_name("segmentation")) == 0


def test_a_token_is_checked_before_anything_is_queued(settings, image, redis_url):
    token = "fast-path-token-0123456789"
    body = json.dumps({"jobType": "segmentation", "imageName": image}).encode()
    for headers in ({}, {"authorization": "Bearer wrong-token-0123456789"}, {"authorization": token},
                    {"authorization": "Basic " + token}):
        behind = Recorder()
        assert call(settings, FastPredict(behind, token=token), body, headers)[0] == 299
        assert behind.bodies == [body]
    assert redis.Redis.from_url(redis_url).xlen(stream_name("segmentation")) == 0
    behind = Recorder()
    status, answer, _ = call(settings, FastPredict(behind, token=token), body, {"authorization": f"bearer {token}"})
    assert status == 200 and behind.bodies == [] and json.loads(answer)["hash"]


def test_other_paths_pass_untouched(settings):
    behind = Recorder()
    status, _, _ = call(settings, FastPredict(behind, token=None), b'{"hash": "x"}', path="/api/status")
    assert status == 299 and behind.bodies == [b'{"hash": "x"}']


@pytest.mark.parametrize("args", [
    ("SET", "key", "value"),
    ("HSET", "job", "name", "Zellkern-Übersicht.tif", "size", 12, "blob", b"\x00\xff\r\n"),
    ("EVALSHA", "0" * 40, 2, "a", "b", "", "-7"),
    ("HSET", "job", "status", JobStatus.NEW),  # a StrEnum: its value, as the Python packer sends
    ("SET", "key", 1.5),  # floats: the Python packer
    ("CLIENT SETINFO", "LIB-NAME", "x"),  # a command of two words: the Python packer
])
def test_hiredis_packing_is_byte_for_byte_the_python_packing(args):
    assert b"".join(HiredisConnection().pack_command(*args)) == b"".join(Connection().pack_command(*args))


def test_hiredis_packing_client_round_trips_through_redis(redis_url):
    async def round_trip():
        client = redis_client(redis_url)
        try:
            assert type(await client.connection_pool.get_connection()) is HiredisConnection
            await client.hset("packing-test", mapping={"name": "Übersicht ✓", "n": 3, "x": 0.25})
            return await client.hgetall("packing-test")
        finally:
            await client.aclose()
    assert run_async(round_trip) == {"name": "Übersicht ✓", "n": "3", "x": "0.25"}


def test_a_redis_outage_during_a_submission_is_503(api_for, configure, image):
    own_redis = RedisServer()
    api = api_for(configure(redis_url=own_redis.url))
    own_redis.stop()
    response = httpx.post(f"{api.url}/api/predict", json={"jobType": "segmentation", "imageName": image},
                          timeout=30)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert "unavailable" in response.json()["message"] and response.headers["x-request-id"]


def test_oversized_submissions_are_413(api_for, configure, image):
    api = api_for(configure(max_json_bytes=64))
    body = json.dumps({"jobType": "segmentation", "imageName": image, "imageUrl": "x" * 100}).encode()
    for headers in ({"content-type": "application/json"},
                    {"content-type": "application/json", "transfer-encoding": "chunked"}):
        content = body if "transfer-encoding" not in headers else iter([body[:40], body[40:]])
        response = httpx.post(f"{api.url}/api/predict", content=content, headers=headers, timeout=30)
        assert response.status_code == 413 and "limit" in response.json()["message"]
