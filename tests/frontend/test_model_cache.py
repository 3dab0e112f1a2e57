"""The model list: read from storage, reused for `models_cache_seconds`, then read again."""

import time

import httpx

from tests.fixtures.servers import wait_until
from tests.frontend.helpers import add_model

CACHE_SECONDS = 2


def versions(client: httpx.Client) -> list[str]:
    return client.get("/api/models").json()["models"]["NuclearSegmentation"]


def test_without_the_cache_a_new_version_is_listed_at_once(client, bucket_dir):
    assert versions(client) == ["1", "2"]
    add_model(bucket_dir, "NuclearSegmentation", "3")
    assert versions(client) == ["1", "2", "3"]


def test_the_cached_list_is_reused_until_it_is_old_then_refreshed(api_for, configure, bucket_dir):
    api = api_for(configure(models_cache_seconds=CACHE_SECONDS))
    with httpx.Client(base_url=api.url, timeout=30) as client:
        before_listing = time.monotonic()
        assert versions(client) == ["1", "2"]
        add_model(bucket_dir, "NuclearSegmentation", "3")
        assert versions(client) == ["1", "2"]  # from the cache
        wait_until(lambda: versions(client) == ["1", "2", "3"], 30, "the refreshed model list")
        assert time.monotonic() - before_listing >= CACHE_SECONDS
