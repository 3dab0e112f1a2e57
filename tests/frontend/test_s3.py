"""Cloud storage: uploads go to the bucket, downloads are time-limited signed URLs."""

import time
from urllib.parse import parse_qs, urlparse

import boto3
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
    api = api_for(configure(storage_url=f"s3://{bucket}", s3_endpoint_url=endpoint, signed_url_seconds=600))
    with httpx.Client(base_url=api.url, timeout=60) as client:
        yield client


def expires_in(url: str) -> float:
    """Seconds a presigned URL stays valid (SigV2 `Expires` or SigV4 `X-Amz-Expires`)."""
    query = parse_qs(urlparse(url).query)
    if "X-Amz-Expires" in query:
        return float(query["X-Amz-Expires"][0])
    return float(query["Expires"][0]) - time.time()


def signed(url: str) -> bool:
    query = parse_qs(urlparse(url).query)
    return "X-Amz-Signature" in query or "Signature" in query


def test_upload_predict_and_signed_result(cloud, s3, redis_url):
    client, bucket = s3
    content = tiff_bytes() + bytes(6 * 1024**2)  # above s3fs's 5 MiB part size: a multipart upload
    uploaded = cloud.post("/api/upload", files={"file": ("cells.tif", content)}).json()
    key = uploaded["uploadedName"]
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == content
    assert signed(uploaded["imageURL"])
    assert httpx.get(uploaded["imageURL"]).content == content

    assert cloud.post("/api/predict", json={"jobType": "segmentation", "imageName": "gone.tif"}).status_code == 400
    job = cloud.post("/api/predict", json={"jobType": "segmentation",
                                           "imageName": key.removeprefix("uploads/")}).json()["hash"]
    assert cloud.post("/api/redis", json={"hash": job, "key": "model_version"}).json() == {"value": "4"}

    output = f"output/{job.split(':')[1]}/cells.zip"
    client.put_object(Bucket=bucket, Key=output, Body=b"the result archive")
    store = JobStore(redis.Redis.from_url(redis_url, decode_responses=True), ttl_seconds=60)
    store.set_status(job, JobStatus.DONE, output_file_name=output, output_url="https://expired.example/x")
    url = cloud.post("/api/redis", json={"hash": job, "key": "output_url"}).json()["value"]
    assert signed(url) and expires_in(url) == pytest.approx(600, abs=30)
    assert httpx.get(url).content == b"the result archive"
    assert httpx.get(url.split("?")[0]).status_code == 403  # the bucket itself stays private
    view = cloud.get(f"/api/jobs/{job}").json()
    assert httpx.get(view["outputUrl"]).content == b"the result archive"
    redirect = cloud.get(f"/api/download/{output}")
    assert redirect.status_code == 307 and signed(redirect.headers["location"])
    assert cloud.get(f"/api/download/{output}", follow_redirects=True).content == b"the result archive"
    folder = output.rsplit("/", 1)[0]
    assert cloud.get(f"/api/download/{folder}").status_code == 404  # a prefix, not an object
    assert cloud.get(f"/api/download/{key.rsplit('/', 1)[0]}").json() == {"message": "no such file"}
    refused = cloud.post("/api/predict", json={"jobType": "segmentation", "imageName": "x.tif",
                                               "uploadedName": key.rsplit("/", 1)[0]})
    assert refused.status_code == 400 and "is a folder" in refused.json()["message"]


def test_models_are_listed_from_the_bucket(cloud):
    assert cloud.get("/api/models").json() == {"models": {"NuclearSegmentation": ["4"]}}
