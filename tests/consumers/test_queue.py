"""Queue primitives against a real redis-server."""

import threading

import pytest
import redis

from consumers.queue import GROUP, JobQueue


@pytest.fixture
def client(redis_url):
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


@pytest.fixture
def queue(client):
    queue = JobQueue(client, "segmentation", lease_seconds=1)
    queue.ensure_group()
    queue.ensure_group()  # idempotent
    return queue


def test_submit_creates_once_and_enqueues_once(queue, client):
    assert queue.submit("segmentation:" + "a" * 32, {"status": "new", "x": "1"})
    assert not queue.submit("segmentation:" + "a" * 32, {"status": "new", "x": "2"})
    assert client.hget("segmentation:" + "a" * 32, "x") == "1"
    assert queue.length() == 1


def test_claim_ack_leaves_nothing_outstanding(queue):
    queue.enqueue("job-1")
    queue.enqueue("job-2")
    deliveries = queue.claim("c1", count=5, block_seconds=0.1)
    assert [d.job_key for d in deliveries] == ["job-1", "job-2"]
    assert queue.length() == 2  # in progress still counts as outstanding work
    for delivery in deliveries:
        queue.ack(delivery)
    assert queue.length() == 0
    assert queue.claim("c1", count=5, block_seconds=0.05) == []


def test_claim_blocks_until_a_job_arrives(queue):
    claimed = []
    waiter = threading.Thread(target=lambda: claimed.extend(queue.claim("c1", 1, block_seconds=10)))
    waiter.start()
    queue.enqueue("late-job")
    waiter.join(10)
    assert [d.job_key for d in claimed] == ["late-job"]


def test_a_dead_consumers_job_is_requeued_after_its_lease(queue, client):
    queue.enqueue("job-1")
    [delivery] = queue.claim("dead", 1, block_seconds=0.1)
    assert queue.requeue_expired() == 0
    # The lease is 1 s: wait until the entry has been idle that long.
    _wait_idle(client, queue, delivery.entry_id, 1050)
    assert queue.requeue_expired() == 1
    [again] = queue.claim("alive", 1, block_seconds=0.1)
    assert again.job_key == "job-1" and again.entry_id != delivery.entry_id
    assert queue.length() == 1


def test_renewing_keeps_the_job(queue, client):
    queue.enqueue("job-1")
    [delivery] = queue.claim("c1", 1, block_seconds=0.1)
    _wait_idle(client, queue, delivery.entry_id, 1050)
    queue.renew("c1", [delivery])
    assert queue.requeue_expired() == 0
    assert queue.pending_of("c1") == [delivery.entry_id]


def test_hand_back_puts_the_job_at_the_end(queue):
    queue.enqueue("job-1")
    queue.enqueue("job-2")
    [first] = queue.claim("c1", 1, block_seconds=0.1)
    assert queue.hand_back([first]) == 1
    assert queue.hand_back([first]) == 0  # already handed back
    assert [d.job_key for d in queue.claim("c2", 5, block_seconds=0.1)] == ["job-2", "job-1"]
    queue.forget_consumer("c1")
    assert queue.pending_of("c1") == []


def test_late_ack_of_a_requeued_job_is_harmless(queue, client):
    queue.enqueue("job-1")
    [delivery] = queue.claim("slow", 1, block_seconds=0.1)
    _wait_idle(client, queue, delivery.entry_id, 1050)
    queue.requeue_expired()
    queue.ack(delivery)
    assert queue.length() == 1


def _wait_idle(client, queue, entry_id, idle_ms):
    from tests.fixtures.servers import wait_until

    def idle_enough():
        [entry] = client.xpending_range(queue.stream, GROUP, min=entry_id, max=entry_id, count=1)
        return entry["time_since_delivered"] >= idle_ms
    wait_until(idle_enough, 5, "lease expiry")
