"""Storage on a local directory and on a real S3-compatible HTTP server."""

from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from consumers.storage import Storage


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return Storage(str(tmp_path / "bucket"), public_url="http://kiosk.test")
    endpoint, bucket = request.getfixturevalue("s3_bucket")
    return Storage(f"s3://{bucket}", s3_endpoint_url=endpoint)


def test_write_read_list_delete(storage):
    storage.write("uploads/a.tif", b"one")
    storage.write("output/job/a.zip", b"two")
    storage.write("output/job/a.zip", b"three")
    assert storage.read("uploads/a.tif") == b"one"
    assert storage.read("output/job/a.zip") == b"three"
    assert storage.size("output/job/a.zip") == 5
    assert storage.list("output/") == ["output/job/a.zip"]
    assert storage.exists("uploads/a.tif")
    storage.delete("uploads/a.tif")
    storage.delete("uploads/a.tif")
    assert not storage.exists("uploads/a.tif")
    with pytest.raises(FileNotFoundError):
        storage.read("uploads/a.tif")


def test_list_of_missing_prefix_is_empty(storage):
    assert storage.list("models/") == []


@pytest.mark.parametrize("key", ["", "/etc/passwd", "uploads/../../x", "uploads//x", "./x"])
def test_keys_cannot_escape_the_root(storage, key):
    with pytest.raises(ValueError):
        storage.path(key)


def test_local_download_url_is_served_by_the_api(tmp_path):
    storage = Storage(str(tmp_path), public_url="http://kiosk.test/")
    assert storage.download_url("output/a b.zip", 60) == "http://kiosk.test/api/download/output/a%20b.zip"


def test_s3_download_url_is_signed_and_works(s3_bucket):
    endpoint, bucket = s3_bucket
    storage = Storage(f"s3://{bucket}", s3_endpoint_url=endpoint)
    storage.write("output/j/result.zip", b"zip bytes")
    url = storage.download_url("output/j/result.zip", 300)
    query = parse_qs(urlparse(url).query)
    assert "Signature" in query or "X-Amz-Signature" in query
    assert httpx.get(url).content == b"zip bytes"
