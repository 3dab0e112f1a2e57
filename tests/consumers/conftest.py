"""End-to-end fixtures: a real Redis, a storage root and consumer processes."""

from types import SimpleNamespace

import numpy as np
import pytest

from consumers.storage import Storage
from tests.fixtures.consumers import ConsumerPool, JobClient
from tests.fixtures.servers import RedisServer
from training.evaluate import tiff_bytes
from training.synthetic import make_sample


@pytest.fixture(scope="module")
def kiosk(nuclear_model_server, tmp_path_factory):
    """Two consumers over a fresh Redis and bucket, using the real default model."""
    redis_server = RedisServer()
    bucket = tmp_path_factory.mktemp("bucket")
    pool = ConsumerPool(redis_server.url, str(bucket), nuclear_model_server.address)
    pool.wait_serving(pool.start(2))
    client = JobClient(redis_server.url, Storage(str(bucket)))
    yield SimpleNamespace(pool=pool, client=client, storage=client.storage,
                          model_server=nuclear_model_server)
    pool.stop()
    client.close()
    redis_server.stop()


def synthetic_tiff(seed: int, shape=(512, 512)) -> tuple[bytes, np.ndarray]:
    """A synthetic nuclei image as 16-bit TIFF bytes, and its true labels."""
    image, labels = make_sample(np.random.default_rng(seed), shape)
    return tiff_bytes(image), labels
