"""Zip bombs against a real consumer process: each fails with a reason while the consumer's
peak memory stays flat, nothing big stays in storage, and the consumer keeps serving."""

import io
import json
import zipfile
from pathlib import Path

import pytest

from consumers.storage import Storage
from tests.consumers.conftest import synthetic_tiff
from tests.consumers.processing.samples import zip_of
from tests.fixtures.consumers import ConsumerPool, JobClient
from tests.fixtures.servers import RedisServer, wait_until

MiB = 1 << 20
BOMB_BYTES = 1536 * MiB  # the attack's member: 1.5 GiB of zeros, about 1.5 MB compressed
# What the consumer may grow by while it handles a bomb: a few 1 MiB pieces and zipfile's
# buffers. Holding the member (the old fan-out) grows it by the member's size or more.
PEAK_GROWTH_LIMIT = 64 * MiB
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def setup(nuclear_model_server, tmp_path_factory):
    """One consumer whose zip limit (2 GiB) would not stop the bomb by itself."""
    redis_server = RedisServer()
    bucket = tmp_path_factory.mktemp("bucket")
    pool = ConsumerPool(redis_server.url, str(bucket), nuclear_model_server.address,
                        KIOSK_MAX_ZIP_BYTES=str(2 * 1024 * MiB))
    [consumer] = pool.start(1)
    pool.wait_serving([consumer])
    client = JobClient(redis_server.url, Storage(str(bucket)))
    yield pool, consumer, client, bucket
    pool.stop()
    client.close()
    redis_server.stop()


def bomb(head: bytes, size: int = BOMB_BYTES) -> bytes:
    """A zip of one image `bomb.tif`: `head`, then zeros up to `size` bytes (written in pieces)."""
    buffer = io.BytesIO()
    zeros = bytes(MiB)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("bomb.tif", "w", force_zip64=True) as member:
            member.write(head)
            for _ in range((size - len(head)) // MiB):
                member.write(zeros)
    return buffer.getvalue()


def peak_rss(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize("head, expected", [
    (b"", "is not a TIFF, PNG or JPEG image"),  # zeros from the first byte: refused by its kind
    (PNG_MAGIC, "times its compressed size"),  # a PNG's first bytes, then zeros: the ratio stops it
], ids=["zeros", "png-magic-then-zeros"])
def test_a_zip_bomb_fails_with_a_reason_and_bounded_memory(setup, head, expected):
    pool, consumer, client, bucket = setup
    data = bomb(head)
    assert len(data) < 4 * MiB
    pid = pool.processes[consumer].pid
    before = peak_rss(pid)
    key = client.submit(data, "bomb.zip")
    job = client.wait_final(key, timeout=300)
    assert job["status"] == "failed"
    assert expected in job["reason"] and "bomb.tif" in job["reason"], job["reason"]
    growth = peak_rss(pid) - before
    print(f"peak RSS {before / MiB:.0f} MiB before, grew by {growth / MiB:.1f} MiB")
    assert growth < PEAK_GROWTH_LIMIT, f"the consumer's peak memory grew by {growth / MiB:.0f} MiB"
    folder = bucket / "uploads" / key.split(":")[1]
    assert sorted(p.name for p in folder.iterdir()) == ["bomb.zip"]  # nothing unpacked stays
    assert not [p for p in bucket.rglob("*.partial")]
    assert "children" not in job  # no child job was created
    assert pool.alive() == [consumer]


def test_the_consumer_still_unpacks_good_zips_after_bombs(setup):
    pool, consumer, client, bucket = setup
    members = {"plate/a.tif": synthetic_tiff(40, (128, 128))[0], "b.tif": synthetic_tiff(41, (128, 128))[0]}
    client.submit(bomb(b""), "bomb.zip")
    key = client.submit(zip_of(members), "good.zip")
    job = client.wait_status(key, {"waiting", "done", "failed"}, timeout=300)
    assert job["total_jobs"] == "2", job.get("reason")
    keys = job["children"].split(",")  # each child is queued just after the zip turns `waiting`
    wait_until(lambda: all(client.job(child) for child in keys), 60, "the children")
    assert sorted(client.job(child)["original_name"] for child in keys) == ["b.tif", "plate__a.tif"]
    folder = bucket / "uploads" / key.split(":")[1]
    assert (folder / "plate__a.tif").read_bytes() == members["plate/a.tif"]
    assert pool.alive() == [consumer]


def test_failures_name_images_unambiguously(setup):
    _, _, client, _ = setup
    upload = zip_of({"a,b.tif": b"II*\x00 a TIFF's first bytes, then nothing an image is made of",
                   "good.tif": synthetic_tiff(42, (128, 128))[0]})
    job = client.wait_final(client.submit(upload, "commas.zip"), timeout=300)
    failures = json.loads(job["failures"])
    assert "a,b.tif" in failures and set(failures) <= {"a,b.tif", "good.tif"}
