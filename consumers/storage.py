"""One storage interface over a local directory, `gs://` and `s3://` (fsspec).

Keys are bucket paths in the kiosk layout: `uploads/…`, `output/…`,
`models/<Name>/<version>/…`.
"""

import os
import posixpath
import uuid
from collections.abc import Iterable
from typing import BinaryIO
from urllib.parse import quote

import fsspec
import google.auth.credentials
import google.auth.transport.requests
from fsspec.implementations.local import LocalFileSystem

from consumers.settings import KioskSettings

DOWNLOAD_ROUTE = "/api/download/"
"""Where the API serves objects of local storage (clouds use signed URLs)."""


class Storage:
    """Objects under one root: a directory path, `gs://bucket` or `s3://bucket[/prefix]`."""

    def __init__(self, url: str, *, s3_endpoint_url: str | None = None,
                 public_url: str = "http://127.0.0.1:8080") -> None:
        options = {}
        if url.startswith("s3://"):
            # botocore presigns with SigV2 by default where a region still accepts it;
            # S3 refuses SigV2 on buckets created since 2020 (and caps SigV4 links at 7 days).
            options["config_kwargs"] = {"signature_version": "s3v4"}
            if s3_endpoint_url:
                options["endpoint_url"] = s3_endpoint_url
        self.fs, root = fsspec.url_to_fs(url, **options)
        self.root = root.rstrip("/")
        self.public_url = public_url.rstrip("/")
        if self.is_local:
            self.fs.makedirs(self.root, exist_ok=True)

    @classmethod
    def from_settings(cls, settings: KioskSettings) -> "Storage":
        """The storage the settings name."""
        return cls(settings.storage_url, s3_endpoint_url=settings.s3_endpoint_url,
                   public_url=settings.public_url)

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def path(self, key: str) -> str:
        """The filesystem path of `key`; ValueError for keys that would leave the root."""
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"invalid storage key {key!r}")
        return posixpath.join(self.root, key)

    def read(self, key: str) -> bytes:
        """The bytes of object `key` (FileNotFoundError when missing)."""
        return self.fs.cat_file(self.path(key))

    def open(self, key: str) -> BinaryIO:
        """Object `key` opened for reading (seekable; a bucket's is fetched in ranges)."""
        return self.fs.open(self.path(key), "rb")

    def write(self, key: str, data: bytes) -> None:
        """Store `data` as `key`; readers never see a partial object."""
        if self.is_local:
            self.write_chunks(key, (data,))
        else:
            self.fs.pipe_file(self.path(key), data)

    def write_chunks(self, key: str, chunks: Iterable[bytes]) -> None:
        """Store `chunks` as `key`, holding one at a time; readers never see a partial object,
        and when `chunks` fails (or the write does) nothing is left behind."""
        path = self.path(key)
        if self.is_local:
            # Write beside and rename: a reader sees the old object or the whole new one.
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            partial = f"{path}.{uuid.uuid4().hex}.partial"  # two writers never share one
            try:
                with open(partial, "wb") as file:
                    for chunk in chunks:
                        file.write(chunk)
                os.replace(partial, path)
            finally:
                if os.path.exists(partial):
                    os.remove(partial)
            return
        file = self.fs.open(path, "wb", autocommit=False)  # a multipart upload, completed below
        try:
            for chunk in chunks:
                file.write(chunk)
            file.close()
        except BaseException:
            file.discard()  # the upload is aborted: no object appears
            raise
        file.commit()

    def exists(self, key: str) -> bool:
        return self.fs.exists(self.path(key))

    def delete(self, key: str) -> None:
        """Remove object `key` if it exists."""
        try:
            self.fs.rm_file(self.path(key))
        except FileNotFoundError:
            pass

    def list(self, prefix: str) -> list[str]:
        """Keys of every object under `prefix` (a folder key like `models/`)."""
        base = self.path(prefix.rstrip("/"))
        try:
            paths = self.fs.find(base)
        except FileNotFoundError:
            return []
        start = len(self.root) + 1
        return sorted(p[start:] for p in paths if not p.endswith(".partial"))

    def size(self, key: str) -> int:
        return int(self.fs.size(self.path(key)))

    def download_url(self, key: str, expires_seconds: int) -> str:
        """A URL that downloads `key`: signed for cloud buckets, served by the API locally."""
        if self.is_local:
            return f"{self.public_url}{DOWNLOAD_ROUTE}{quote(key)}"
        if "gs" in self.fs.protocol:
            return self.fs.sign(self.path(key), expiration=expires_seconds, version="v4",
                                **gcs_signing_options(self.fs.credentials.credentials))
        return self.fs.sign(self.path(key), expiration=expires_seconds)


def gcs_signing_options(credentials: google.auth.credentials.Credentials) -> dict[str, str]:
    """How google-cloud-storage signs URLs with `credentials`.

    A service-account key signs locally (no options). Workload Identity and the
    metadata server give tokens without a private key: those sign through the IAM
    signBlob API as the pod's own service account, which needs
    `roles/iam.serviceAccountTokenCreator` on itself (the stack grants it).
    """
    if isinstance(credentials, google.auth.credentials.Signing):
        return {}
    if not credentials.valid:
        credentials.refresh(google.auth.transport.requests.Request())
    return {"service_account_email": credentials.service_account_email,
            "access_token": credentials.token}
