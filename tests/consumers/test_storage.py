"""Storage on a local directory and on a real S3-compatible HTTP server; GCS URL signing."""

import datetime
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse, urlsplit

import boto3
import botocore.config
import gcsfs
import google.auth.compute_engine
import google.oauth2.service_account
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from google.cloud.storage._signing import generate_signed_url_v4

from consumers.storage import Storage, gcs_signing_options
from tests.fixtures.google_endpoints import IamCredentialsServer, MetadataServer

PROJECT_ROOT = Path(__file__).parents[2]


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


def test_local_writes_go_through_a_partial_file_that_listings_hide(tmp_path):
    """While a write is under way readers see the old object, listings hide its `.partial`; a
    failed write leaves the old object and no `.partial`."""
    storage = Storage(str(tmp_path / "bucket"))
    folder = tmp_path / "bucket" / "output" / "j"
    storage.write("output/j/a.zip", b"old")
    seen = []

    def chunks():
        yield b"ne"
        seen.append((sorted(p.name for p in folder.iterdir()), storage.read("output/j/a.zip"),
                     storage.list("output/")))
        yield b"w"

    storage.write_chunks("output/j/a.zip", chunks())
    [(files, during, listed)] = seen
    assert len(files) == 2 and files[0] == "a.zip" and files[1].startswith("a.zip.") and files[1].endswith(".partial")
    assert during == b"old" and listed == ["output/j/a.zip"]
    assert storage.read("output/j/a.zip") == b"new" and [p.name for p in folder.iterdir()] == ["a.zip"]

    def failing():
        yield b"half"
        raise OSError("the upload broke off")

    with pytest.raises(OSError):
        storage.write_chunks("output/j/a.zip", failing())
    assert storage.read("output/j/a.zip") == b"new" and [p.name for p in folder.iterdir()] == ["a.zip"]
    (folder / "b.zip.0123.partial").write_bytes(b"a writer that was killed")
    assert storage.list("output/") == ["output/j/a.zip"]


def test_local_download_url_is_served_by_the_api(tmp_path):
    storage = Storage(str(tmp_path), public_url="http://kiosk.test/")
    assert storage.download_url("output/a b.zip", 60) == "http://kiosk.test/api/download/output/a%20b.zip"


def test_s3_download_url_is_signed_and_works(s3_bucket, s3_checking_server, monkeypatch):
    """The URL is exactly botocore's presigned URL; an S3 that checks signatures serves it
    and refuses it forged, pointed at another object, or expired."""
    endpoint, bucket = s3_bucket
    storage = Storage(f"s3://{bucket}", s3_endpoint_url=endpoint)
    storage.write("output/j/result.zip", b"zip bytes")
    storage.write("output/j/other.zip", b"other bytes")
    url = storage.download_url("output/j/result.zip", 300)
    assert parse_qs(urlparse(url).query)["X-Amz-Expires"] == ["300"]
    assert httpx.get(url).content == b"zip bytes"

    signed_at = datetime.datetime(2026, 1, 2, 3, 4, 5)  # botocore's clock, frozen for both signers
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda *_, **__: signed_at)
    old = storage.download_url("output/j/result.zip", 300)
    reference = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                             config=botocore.config.Config(signature_version="s3v4"))
    botocore_url = reference.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "output/j/result.zip"}, ExpiresIn=300)
    assert old == botocore_url
    monkeypatch.undo()

    signature = parse_qs(urlparse(url).query)["X-Amz-Signature"][0]
    forged = url.replace(signature, "0" * len(signature))
    elsewhere = url.replace("result.zip", "other.zip")
    for link, why in ((forged, "signature does not match"), (elsewhere, "signature does not match"),
                      (old, "expired")):
        refused = httpx.get(link)
        assert (refused.status_code, refused.text) == (403, why), link
    assert httpx.get(url).content == b"zip bytes"


def _service_account_key(key: rsa.RSAPrivateKey | None = None,
                         email: str = "kiosk@lab.iam.gserviceaccount.com") -> google.oauth2.service_account.Credentials:
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return google.oauth2.service_account.Credentials.from_service_account_info({
        "type": "service_account", "client_email": email,
        "private_key": pem, "private_key_id": "1", "token_uri": "https://oauth2.googleapis.com/token"})


def test_gcs_urls_are_v4_signed_locally_with_a_service_account_key():
    credentials = _service_account_key()
    fs = gcsfs.GCSFileSystem(token=credentials, project="lab")
    url = fs.sign("kiosk-bucket/output/1/cells.zip", expiration=600, version="v4",
                  **gcs_signing_options(credentials))
    query = parse_qs(urlsplit(url).query)
    assert urlsplit(url).path == "/kiosk-bucket/output/1/cells.zip"
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"] and query["X-Goog-Expires"] == ["600"]
    assert query["X-Goog-Credential"][0].startswith("kiosk@lab.iam.gserviceaccount.com/")
    assert len(query["X-Goog-Signature"][0]) == 512  # hex of a 2048-bit RSA signature


def test_keyless_gcs_credentials_sign_through_iam_as_their_own_account():
    """Workload Identity tokens carry no private key: google-cloud-storage must be told
    whose signBlob to call and with which token."""
    credentials = google.auth.compute_engine.Credentials(
        service_account_email="kiosk-frontend@lab.iam.gserviceaccount.com")
    credentials.token = "ya29.token"
    credentials.expiry = datetime.datetime.utcnow() + datetime.timedelta(hours=1)
    assert gcs_signing_options(credentials) == {
        "service_account_email": "kiosk-frontend@lab.iam.gserviceaccount.com",
        "access_token": "ya29.token"}
    assert gcs_signing_options(_service_account_key()) == {}


def test_workload_identity_signs_gcs_urls_live_through_the_iam_api(tmp_path):
    """The whole keyless path of a GKE pod, in a process of its own: gcsfs finds the
    metadata server's credentials, `download_url` takes the account's email and token from
    it, and google-cloud-storage calls signBlob over HTTPS (through a proxy, to a stand-in
    that signs with the account's key). The URL must be exactly the one that key signs."""
    email, token = "kiosk-frontend@lab.iam.gserviceaccount.com", "ya29.workload-identity"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    metadata = MetadataServer(email, token, project="lab")
    iam = IamCredentialsServer(email, key, token, ca_file=str(tmp_path / "ca.pem"))
    environment = {name: value for name, value in os.environ.items()
                   if name not in ("GOOGLE_APPLICATION_CREDENTIALS", "no_proxy", "NO_PROXY")}
    environment.update(GCE_METADATA_HOST=metadata.host, GCE_METADATA_IP=metadata.host,
                       HTTPS_PROXY=iam.proxy_url, REQUESTS_CA_BUNDLE=str(tmp_path / "ca.pem"),
                       NO_PROXY="127.0.0.1", HOME=str(tmp_path))  # no gcloud user credentials
    probe = ("from consumers.storage import Storage; "
             "print(Storage('gs://kiosk-bucket').download_url('output/1/cells.zip', 600))")
    try:
        done = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, env=environment,
                              capture_output=True, text=True, timeout=120)
    finally:
        metadata.stop()
        iam.stop()
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    query = parse_qs(urlsplit(url).query)
    assert len(iam.signed) == 1 and "/computeMetadata/v1/instance/service-accounts/default/token" in metadata.paths
    assert query["X-Goog-Credential"][0].startswith(f"{email}/")
    signed_with_the_key = generate_signed_url_v4(
        _service_account_key(key, email), "/kiosk-bucket/output/1/cells.zip", expiration=600,
        api_access_endpoint="https://storage.googleapis.com",
        _request_timestamp=query["X-Goog-Date"][0])  # google-cloud-storage's hook for tests
    assert url == signed_with_the_key
