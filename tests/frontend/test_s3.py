"""Cloud storage: uploads go to the bucket, downloads are time-limited signed URLs."""

import datetime
from unittest import mock
from urllib.parse import parse_qs, urlparse

import boto3
import botocore.config
import httpx
import pytest
import redis

from consumers.jobs import JobStatus
from consumers.jobstore import JobStore
from tests.frontend.helpers import tiff_bytes


@pytest.fixture
def s3(s3_bucket):
    endpoint, bucket = s3_bucket
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.put_object(Bucket=bucket, Key="models/NuclearSegmentation/4/saved_model.pb", Body=b"x")
    return client, bucket


@pytest.fixture
def cloud(api_for, configure, s3, s3_bucket):
    endpoint, bucket = s3_bucket
    api = api_for(configure(storage_url=f"s3://{bucket}", s3_endpoint_url=endpoint, signed_url_seconds=LINK_SECONDS))
    with httpx.Client(base_url=api.url, timeout=60) as client:
        yield client


LINK_SECONDS = 600


def botocore_presigned(endpoint: str, bucket: str, key: str, url: str) -> str:
    """botocore's SigV4 presigned URL of `key` for LINK_SECONDS, signed when `url` says it was."""
    signed_at = datetime.datetime.strptime(parse_qs(urlparse(url).query)["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          config=botocore.config.Config(signature_version="s3v4"))
    with mock.patch("botocore.auth.get_current_datetime", return_value=signed_at):
        return client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                             ExpiresIn=LINK_SECONDS)


def forged(url: str) -> str:
    signature = parse_qs(urlparse(url).query)["X-Amz-Signature"][0]
    return url.replace(signature, "0" * len(signature))


def test_upload_predict_and_signed_result(cloud, s3, s3_bucket, redis_url):
    """Links are botocore's presigned URLs, served by an S3 that checks them, refused forged."""
    client, bucket = s3
    endpoint = s3_bucket[0]
    content = tiff_bytes() + bytes(6 * 1024**2)  # above s3fs's 5 MiB part size: a multipart upload
    uploaded = cloud.post("/api/upload", files={"file": ("cells.tif", content)}).json()
    key = uploaded["uploadedName"]
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == content
    assert uploaded["imageURL"] == botocore_presigned(endpoint, bucket, key, uploaded["imageURL"])
    assert httpx.get(uploaded["imageURL"]).content == content
    assert httpx.get(forged(uploaded["imageURL"])).status_code == 403

    assert cloud.post("/api/predict", json={"jobType": "segmentation", "imageName": "gone.tif"}).status_code == 400
    job = cloud.post("/api/predict", json={"jobType": "segmentation",
                                           "imageName": key.removeprefix("uploads/")}).json()["hash"]
    assert cloud.post("/api/redis", json={"hash": job, "key": "model_version"}).json() == {"value": "4"}

    output = f"output/{job.split(':')[1]}/cells.zip"
    client.put_object(Bucket=bucket, Key=output, Body=b"the result archive")
    store = JobStore(redis.Redis.from_url(redis_url, decode_responses=True), ttl_seconds=60)
    store.set_status(job, JobStatus.DONE, output_file_name=output, output_url="https://expired.example/x")
    url = cloud.post("/api/redis", json={"hash": job, "key": "output_url"}).json()["value"]
    assert url == botocore_presigned(endpoint, bucket, output, url)
    assert httpx.get(url).content == b"the result archive"
    assert httpx.get(forged(url)).status_code == 403
    assert httpx.get(url.split("?")[0]).status_code == 403  # the bucket itself stays private
    view = cloud.get(f"/api/jobs/{job}").json()
    assert httpx.get(view["outputUrl"]).content == b"the result archive"
    redirect = cloud.get(f"/api/download/{output}")
    assert redirect.status_code == 307
    assert redirect.headers["location"] == botocore_presigned(endpoint, bucket, output, redirect.headers["location"])
    assert cloud.get(f"/api/download/{output}", follow_redirects=True).content == b"the result archive"
    folder = output.rsplit("/", 1)[0]
    assert cloud.get(f"/api/download/{folder}").status_code == 404  # a prefix, not an object
    assert cloud.get(f"/api/download/{key.rsplit('/', 1)[0]}").json() == {"message": "no such file"}
    refused = cloud.post("/api/predict", json={"jobType": "segmentation", "imageName": "x.tif",
                                               "uploadedName": key.rsplit("/", 1)[0]})
    assert refused.status_code == 400 and "is a folder" in refused.json()["message"]


def test_models_are_listed_from_the_bucket(cloud):
    assert cloud.get("/api/models").json() == {"models": {"NuclearSegmentation": ["4"]}}
