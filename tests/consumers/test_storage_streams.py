"""Streaming writes and reads of storage (what zip fan-out uses), on a directory and on S3 (moto)."""

import boto3
import pytest

from consumers.storage import Storage


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return Storage(str(tmp_path / "bucket"))
    endpoint, name = request.getfixturevalue("s3_bucket")
    return Storage(f"s3://{name}", s3_endpoint_url=endpoint)


def test_chunks_are_stored_whole_and_read_back_in_ranges(storage):
    storage.write_chunks("uploads/j/a.tif", (bytes([n]) * 1_000_000 for n in range(7)))
    assert storage.size("uploads/j/a.tif") == 7_000_000
    with storage.open("uploads/j/a.tif") as file:
        file.seek(3_000_000)
        assert file.read(4) == bytes([3]) * 4


def test_chunks_that_fail_leave_nothing_behind(storage, request):
    def failing():
        yield bytes(6 * 1024 * 1024)  # past S3's 5 MiB part: a multipart upload has begun
        raise ValueError("the member is a bomb")

    with pytest.raises(ValueError, match="bomb"):
        storage.write_chunks("uploads/j/bomb.tif", failing())
    assert storage.list("uploads/") == [] and not storage.exists("uploads/j/bomb.tif")
    if storage.is_local:
        assert not list(storage.fs.find(storage.root))  # no partial file either
    else:
        endpoint, name = request.getfixturevalue("s3_bucket")
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        assert "Uploads" not in client.list_multipart_uploads(Bucket=name)  # aborted, not pending
