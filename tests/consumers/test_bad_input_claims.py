"""The README's bad-input claims, checked through real consumer processes: more than
`KIOSK_MAX_CHANNELS` (16) channels, and zip members named by absolute paths or drive letters."""

import io
import zipfile

import numpy as np
import pytest
import tifffile

from consumers.settings import ConsumerSettings
from tests.consumers.conftest import synthetic_tiff

GOOD_TIFF = synthetic_tiff(seed=31, shape=(64, 64))[0]


def _channels(count: int) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((count, 32, 32), np.uint16), metadata={"axes": "CYX"})
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)  # the name exactly as given
    return buffer.getvalue()


def test_the_channel_limit_is_16_by_default():
    assert ConsumerSettings.model_construct().max_channels == 16


def test_more_than_16_channels_fail_with_the_limit_and_16_do_not(kiosk):
    over = kiosk.client.wait_final(kiosk.client.submit(_channels(17), "seventeen.tif"))
    assert over["status"] == "failed"
    assert "has 17 channels" in over["reason"] and "at most 16 are supported" in over["reason"], over["reason"]
    at_limit = kiosk.client.wait_final(kiosk.client.submit(_channels(16), "sixteen.tif"))
    # 16 is within the limit: what stops it is the model's one channel, and it says so.
    assert at_limit["status"] == "failed" and "at most 16" not in at_limit["reason"], at_limit["reason"]
    assert "choose the channel" in at_limit["reason"], at_limit["reason"]
    assert len(kiosk.pool.alive()) == 2


@pytest.mark.parametrize("member, why", [
    ("/etc/evil.tif", "is an absolute path"),
    ("\\\\server\\share\\evil.tif", "is an absolute path"),
    ("C:/Windows/evil.tif", "starts with a drive letter"),
    ("c:\\evil.tif", "starts with a drive letter"),
])
def test_zip_members_named_outside_their_folder_fail_the_zip_before_unpacking(kiosk, member, why):
    key = kiosk.client.submit(_zip({"good.tif": GOOD_TIFF, member: GOOD_TIFF}), "slip.zip")
    job = kiosk.client.wait_final(key)
    assert job["status"] == "failed"
    assert job["reason"] == f"the ZIP archive is unsafe: the member '{member}' {why}", job["reason"]
    assert not job.get("children")
    folder = job["input_file_name"].rsplit("/", 1)[0] + "/"
    assert kiosk.storage.list(folder) == [job["input_file_name"]]  # nothing unpacked beside it
    assert len(kiosk.pool.alive()) == 2
