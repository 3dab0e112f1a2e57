"""Fixtures shared by every test: real servers on loopback."""

import os
import uuid

import pytest
import redis

from tests.fixtures.servers import RedisServer, S3Server
from tests.fixtures.sigv4 import SigV4CheckingS3

pytest_plugins = ["tests.fixtures.model_server", "tests.fixtures.kiosk"]


@pytest.fixture(scope="session")
def redis_server():
    """One real redis-server for the session."""
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    """A Redis URL with an empty database for this test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3-compatible HTTP server for the session."""
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_checking_server(s3_server):
    """moto behind a stand-in that refuses forged or expired presigned URLs (moto serves any)."""
    server = SigV4CheckingS3(s3_server.endpoint_url, os.environ["AWS_SECRET_ACCESS_KEY"])
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_checking_server):
    """A fresh bucket on the S3-compatible server; yields (endpoint_url, bucket name)."""
    import boto3

    name = f"kiosk-test-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_checking_server.endpoint_url, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    return s3_checking_server.endpoint_url, name
