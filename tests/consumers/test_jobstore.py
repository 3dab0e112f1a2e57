"""Job hashes: guarded status transitions, expiry and zip-child bookkeeping."""

import pytest
import redis

from consumers.jobs import (JobRequest, JobStatus, child_job_key, is_job_key, new_job_key,
                            parse_job_key)
from consumers.jobstore import JobStore
from consumers.queue import JobQueue


@pytest.fixture
def client(redis_url):
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


def _create(client, key, **extra):
    queue = JobQueue(client, "segmentation")
    queue.ensure_group()
    request = JobRequest(job_type="segmentation", input_file_name="uploads/a.tif",
                         original_name="a.tif", model_name="NuclearSegmentation",
                         channels=(0, 2), scale=0.5)
    assert queue.submit(key, {**request.to_fields(), "status": "new", **extra})
    return request


def test_request_round_trips_through_redis(client):
    key = new_job_key("segmentation")
    request = _create(client, key)
    assert JobRequest.from_fields(client.hgetall(key)) == request


def test_final_status_is_never_overwritten_and_sets_ttl(client):
    store = JobStore(client, ttl_seconds=100)
    key = new_job_key("segmentation")
    _create(client, key)
    assert store.set_status(key, JobStatus.PREDICTING)
    assert client.ttl(key) == -1
    assert store.set_status(key, JobStatus.DONE, output_file_name="output/x.zip")
    assert 99 <= client.ttl(key) <= 100  # the configured TTL, from the final status on
    assert not store.fail(key, "late duplicate")
    assert not store.set_status(key, JobStatus.PREDICTING)
    job = store.get(key)
    assert job["status"] == "done" and "reason" not in job


def test_updates_to_a_missing_job_are_refused(client):
    store = JobStore(client, ttl_seconds=100)
    assert not store.set_status(new_job_key("segmentation"), JobStatus.STARTED)
    assert store.get(new_job_key("segmentation")) == {}


def test_last_child_queues_its_parent_once(client):
    store = JobStore(client, ttl_seconds=100)
    queue = JobQueue(client, "segmentation")
    parent = new_job_key("segmentation")
    _create(client, parent, total_jobs="3")
    queue.claim("c", 5, 0.05)  # take the parent's own entry
    children = [child_job_key(parent, i) for i in range(3)]
    assert children == [child_job_key(parent, i) for i in range(3)]  # deterministic
    assert not store.child_finished(parent, children[0], "segmentation")
    assert not store.child_finished(parent, children[0], "segmentation")  # counted once
    assert client.hget(parent, "progress") == "33"
    assert not store.child_finished(parent, children[1], "segmentation")
    assert store.child_finished(parent, children[2], "segmentation")
    assert not store.child_finished(parent, children[2], "segmentation")
    assert client.hget(parent, "progress") == "99"
    assert [d.job_key for d in queue.claim("c", 5, 0.05)] == [parent]
    assert store.finished_children(parent) == set(children)


def test_expire_covers_the_zip_bookkeeping(client):
    store = JobStore(client, ttl_seconds=100)
    parent = new_job_key("segmentation")
    _create(client, parent, total_jobs="2")
    store.child_finished(parent, child_job_key(parent, 0), "segmentation")
    assert store.expire(parent, 5)
    assert 4 <= client.ttl(parent) <= 5 and 4 <= client.ttl(f"{parent}:finished") <= 5
    assert not store.expire(new_job_key("segmentation"), 5)


def test_job_keys():
    key = new_job_key("segmentation")
    assert is_job_key(key) and parse_job_key(key)[0] == "segmentation"
    for bad in ["segmentation:xyz", "other:" + "a" * 32, "queue:segmentation", key + ":finished"]:
        assert not is_job_key(bad)
    with pytest.raises(ValueError):
        new_job_key("nope")
    assert JobStatus.DONE.final and JobStatus.FAILED.final and not JobStatus.WAITING.final
