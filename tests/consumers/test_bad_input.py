"""Bad input ends the job `failed` with a readable reason; consumers survive every case."""

import io
import logging
import zipfile
from types import SimpleNamespace

import numpy as np
import PIL.Image
import pytest
import redis
import tifffile

from consumers.jobs import JobStatus, new_job_key
from consumers.jobstore import JobStore
from consumers.services import guarded

from tests.consumers.conftest import synthetic_tiff
from tests.fixtures.servers import wait_until


def _png(shape, mode="L") -> bytes:
    buffer = io.BytesIO()
    PIL.Image.new(mode, shape[::-1]).save(buffer, "PNG")
    return buffer.getvalue()


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _five_channels() -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((5, 64, 64), np.uint16), metadata={"axes": "CYX"})
    return buffer.getvalue()


GOOD_TIFF = synthetic_tiff(seed=30, shape=(128, 128))[0]

CASES = {
    "zero-byte": ("empty.tif", b"", {}, "empty"),
    "not an image": ("notes.tif", b"Dear lab, here are my results...\n" * 20, {}, "not"),
    "truncated tiff": ("cut.tif", GOOD_TIFF[: len(GOOD_TIFF) // 3], {}, "cut.tif"),
    "truncated png": ("cut.png", _png((300, 300))[:60], {}, "cut.png"),
    "over the pixel limit": ("huge.png", _png((5000, 4000)), {}, "limit"),
    "wrong channel count": ("five.tif", _five_channels(), {}, "channel"),
    "channel out of range": ("one.tif", GOOD_TIFF, {"channels": (3,)}, "channel"),
    "unknown model": ("a.tif", GOOD_TIFF, {"model": "NoSuchModel"}, "NoSuchModel"),
    "unknown version": ("a.tif", GOOD_TIFF, {"model_version": "99"}, "99"),
    "zip-slip": ("slip.zip", _zip({"../../etc/evil.tif": GOOD_TIFF}), {}, "evil.tif"),
    "zip bomb": ("bomb.zip", _zip({f"z{i}.tif": bytes(30 * 1024 * 1024) for i in range(3)}), {}, "not a TIFF"),
    "zip bomb of tiff headers": ("bomb.zip", _zip({f"z{i}.tif": b"II*\x00" + bytes(30 * 1024 * 1024)
                                                  for i in range(3)}), {}, "times its compressed size"),
    # Told by its first bytes at fan-out: no child is created, nothing is unpacked.
    "zip of a text named .tif": ("notes.zip", _zip({"notes.tif": b"Dear lab...\n" * 50}), {},
                                 "'notes.tif' in the ZIP archive is not a TIFF"),
    "too many members": ("many.zip", _zip({f"m{i}.tif": GOOD_TIFF for i in range(9)}), {}, "8"),
    "corrupt zip": ("bad.zip", b"PK\x03\x04" + b"\x00" * 100, {}, "zip"),
    "zip without images": ("none.zip", _zip({"readme.txt": b"hello"}), {}, "image"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_with_a_reason(kiosk, case):
    name, data, options, expected = CASES[case]
    key = kiosk.client.submit(data, name, **options)
    job = kiosk.client.wait_final(key)
    assert job["status"] == "failed"
    reason = job["reason"]
    assert expected.lower() in reason.lower(), reason
    assert "Traceback" not in reason and len(reason.splitlines()[-1]) > 10
    assert len(kiosk.pool.alive()) == 2


def test_consumers_still_work_after_bad_input(kiosk):
    bad = kiosk.client.submit(b"", "empty.tif")
    good = kiosk.client.submit(GOOD_TIFF, "good.tif")
    assert kiosk.client.wait_final(bad)["status"] == "failed"
    assert kiosk.client.wait_final(good)["status"] == "done"
    assert len(kiosk.pool.alive()) == 2


def test_a_long_member_name_is_cut_as_upload_names_are(kiosk):
    key = kiosk.client.submit(_zip({"n" * 300 + ".tif": GOOD_TIFF}), "long.zip")
    job = kiosk.client.wait_status(key, {"waiting", "done", "failed"})
    assert job.get("reason") is None and job["total_jobs"] == "1"
    [child] = job["children"].split(",")
    wait_until(lambda: kiosk.client.job(child), 60, "the child")  # queued just after `waiting`
    assert kiosk.client.job(child)["original_name"] == "n" * 120 + ".tif"


def test_an_internal_error_gives_a_plain_reason_and_logs_the_detail(redis_url, caplog):
    store = JobStore(redis.Redis.from_url(redis_url, decode_responses=True), ttl_seconds=60)
    key = new_job_key("segmentation")
    store.redis.hset(key, "status", JobStatus.STARTED.value)

    def unpack() -> None:
        raise OSError(36, "File name too long", "/srv/kiosk/bucket/uploads/x.tif.0f.partial")

    with caplog.at_level(logging.ERROR, logger="consumers.services"):
        guarded(SimpleNamespace(store=store), key, unpack)
    reason = store.get(key)["reason"]
    assert "/srv" not in reason and "Errno" not in reason and "OSError" not in reason, reason
    assert reason.startswith("the kiosk could not process this job") and key in reason
    assert key in caplog.text and "/srv/kiosk/bucket/uploads/x.tif.0f.partial" in caplog.text
