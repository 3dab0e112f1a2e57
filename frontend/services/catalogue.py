"""The models in storage (`models/<Name>/<version>/…`), listed at most every few seconds."""

import asyncio
import time

from frontend.core.security import is_ascii_number
from frontend.services.bucket import Bucket


def models_from_keys(keys: list[str]) -> dict[str, list[str]]:
    """Model name → versions (numeric order) from object keys under `models/`."""
    found: dict[str, set[str]] = {}
    for key in keys:
        parts = key.split("/")
        if len(parts) >= 4 and parts[0] == "models" and is_ascii_number(parts[2]):
            found.setdefault(parts[1], set()).add(parts[2])
    return {name: sorted(versions, key=int) for name, versions in sorted(found.items())}


class ModelCatalogue:
    """Caches the model list for `max_age` seconds; one listing at a time."""

    def __init__(self, bucket: Bucket, max_age: float) -> None:
        self.bucket = bucket
        self.max_age = max_age
        self._models: dict[str, list[str]] = {}
        self._listed_at = float("-inf")
        self._lock = asyncio.Lock()

    async def models(self) -> dict[str, list[str]]:
        if time.monotonic() - self._listed_at <= self.max_age:
            return self._models
        async with self._lock:
            if time.monotonic() - self._listed_at > self.max_age:
                self._models = models_from_keys(await self.bucket.list("models/"))
                self._listed_at = time.monotonic()
        return self._models
