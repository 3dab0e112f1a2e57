"""The kiosk's storage as the API uses it: awaitable, with download links that work."""

import posixpath
import shutil
from typing import BinaryIO

import anyio.to_thread

from consumers.storage import Storage
from frontend.core.config import FrontendSettings
from frontend.core.security import signed_query

COPY_CHUNK_BYTES = 1024**2


class Bucket:
    """`Storage` for async code. On local storage a stat or a URL is computed inline
    (cheaper than a thread hop); anything that may touch the network runs in a thread."""

    def __init__(self, storage: Storage, settings: FrontendSettings) -> None:
        self.storage = storage
        self.link_seconds = settings.signed_url_seconds
        self.secret = settings.token

    async def _call(self, function, *args):
        if self.storage.is_local:
            return function(*args)
        return await anyio.to_thread.run_sync(function, *args)

    def is_valid_key(self, key: str) -> bool:
        """True for keys that stay inside the bucket (no `..`, no absolute paths)."""
        try:
            self.storage.path(key)
        except ValueError:
            return False
        return True

    async def exists(self, key: str) -> bool:
        return await self._call(self.storage.exists, key)

    async def is_file(self, key: str) -> bool:
        """True when `key` is an object, not a folder (`exists` is true for both)."""
        return await self._call(self._is_file, key)

    def _is_file(self, key: str) -> bool:
        return bool(self.storage.fs.isfile(self.storage.path(key)))

    async def head(self, key: str, size: int) -> bytes:
        """The first `size` bytes of object `key`."""
        return await self._call(self._head, key, size)

    def _head(self, key: str, size: int) -> bytes:
        with self.storage.open(key) as file:
            return file.read(size)

    async def list(self, prefix: str) -> list[str]:
        return await anyio.to_thread.run_sync(self.storage.list, prefix)

    async def link(self, key: str) -> str:
        """A download URL for `key`: signed by the bucket, or served (and signed) by this API."""
        url = await self._call(self.storage.download_url, key, self.link_seconds)
        if self.storage.is_local and self.secret:
            url = f"{url}?{signed_query(key, self.link_seconds, self.secret)}"
        return url

    def local_path(self, key: str) -> str | None:
        """The file holding `key` on local storage; None for cloud buckets."""
        return self.storage.path(key) if self.storage.is_local else None

    async def save(self, key: str, source: BinaryIO) -> None:
        """Copy a file object to `key` in chunks (a multipart upload on S3 and GCS)."""
        await anyio.to_thread.run_sync(self._save, key, source)

    def _save(self, key: str, source: BinaryIO) -> None:
        path = self.storage.path(key)
        if self.storage.is_local:
            self.storage.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        with self.storage.fs.open(path, "wb") as target:
            shutil.copyfileobj(source, target, COPY_CHUNK_BYTES)
