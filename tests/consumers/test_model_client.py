"""ModelClient against a real `python -m modelserver` subprocess."""

import logging
import time
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import grpc
import numpy as np
import pytest
import redis
from tensorflow.core.framework import tensor_pb2, types_pb2

from consumers.errors import JobInputError
from consumers.jobs import JobStatus, new_job_key
from consumers.jobstore import JobStore
from consumers.model_client import (ModelCannotRun, ModelClient, ModelServerUnavailable, ModelSpec,
                                    to_ndarray, to_tensor_proto)
from consumers.retry import RetryPolicy
from consumers.services import guarded
from tests.fixtures.model_server import TINY_MODEL, ModelServerProcess
from tests.fixtures.servers import free_port, wait_until
from tests.modelserver.test_serving_parity import _keras_in_module

QUICK_BACKOFF = RetryPolicy(initial_seconds=0.1, max_seconds=0.5)


def tiles(count: int, size: int = 8) -> np.ndarray:
    """Distinct values in every tile, negative and above 1 too, so clipping shows."""
    return np.random.default_rng(count).uniform(-1, 2, (count, size, size, 1)).astype(np.float32)


def assert_tiny_model_outputs(outputs: dict[str, np.ndarray], batch: np.ndarray) -> None:
    np.testing.assert_array_equal(outputs["fgbg"], np.clip(batch, 0, 1))
    np.testing.assert_array_equal(outputs["inner_distance"], 2 * batch)


@pytest.fixture
def client(model_server):
    with ModelClient(model_server.address, retry_budget_seconds=30) as client:
        yield client


def test_metadata_is_learned_from_the_server(client):
    assert client.metadata(TINY_MODEL) == ModelSpec(
        name=TINY_MODEL, version=1, input_name="image", input_dtype=np.dtype(np.float32),
        tile_height=None, tile_width=None, channels=1, output_names=("fgbg", "inner_distance"))
    assert client.metadata(TINY_MODEL, "1").version == 1


def test_predict_returns_the_model_numbers(client):
    batch = tiles(3)

    result = client.predict(TINY_MODEL, None, batch)

    assert_tiny_model_outputs(result.outputs, batch)
    assert result.retries == 0


def test_sixteen_full_size_tiles_pass_the_4_mb_grpc_default(client):
    batch = tiles(16, size=256)
    assert to_tensor_proto(batch).ByteSize() > 4 * 1024 * 1024  # gRPC's default message limit

    assert_tiny_model_outputs(client.predict(TINY_MODEL, "1", batch).outputs, batch)


@pytest.fixture(scope="module")
def server_taking_8(tiny_model_repository):
    server = ModelServerProcess(tiny_model_repository, max_batch_size=8).start()
    yield server
    server.stop()


def test_client_shrinks_its_batches_to_the_server_limit_and_keeps_order(server_taking_8):
    batch = tiles(40)

    with ModelClient(server_taking_8.address, max_batch_size=16) as client:
        result = client.predict(TINY_MODEL, None, batch)

        assert client.max_batch_size == 8
    assert_tiny_model_outputs(result.outputs, batch)


@pytest.mark.parametrize("version, message", [
    (None, "model 'Nope' version 'latest' is not available on the model server"),
    ("3", "model 'Nope' version '3' is not available on the model server"),
])
def test_unknown_model_is_a_job_input_error(client, version, message):
    with pytest.raises(JobInputError, match=message):
        client.predict("Nope", version, tiles(1))


def test_unknown_version_is_a_job_input_error(client):
    with pytest.raises(JobInputError, match=f"model '{TINY_MODEL}' version '9' is not available"):
        client.metadata(TINY_MODEL, 9)


def test_image_the_model_cannot_take_is_a_job_input_error(client):
    with pytest.raises(JobInputError, match="cannot process this image: input 'image' has shape"):
        client.predict(TINY_MODEL, None, np.zeros((1, 8, 8, 3), np.float32))


@pytest.fixture(scope="module")
def broken_model_server(tmp_path_factory):
    """A model that loads (its metadata answers) but cannot run: its variables cannot be restored."""
    repository = tmp_path_factory.mktemp("broken-model")
    _keras_in_module(repository / "Broken" / "1")
    server = ModelServerProcess(repository).start()
    yield server
    server.stop()


def test_a_model_that_cannot_run_fails_the_job_plainly_not_blaming_the_image(broken_model_server, redis_url,
                                                                             caplog):
    store = JobStore(redis.Redis.from_url(redis_url, decode_responses=True), ttl_seconds=60)
    key = new_job_key("segmentation")
    store.redis.hset(key, "status", JobStatus.PREDICTING.value)

    with ModelClient(broken_model_server.address, retry_budget_seconds=30) as client:
        assert client.metadata("Broken").input_name == "image"
        with pytest.raises(ModelCannotRun, match="Could not find variable"):
            client.predict("Broken", None, tiles(1))
        with caplog.at_level(logging.ERROR, logger="consumers.services"):
            assert guarded(SimpleNamespace(store=store), key, client.predict, "Broken", None, tiles(2)) is None

    job = store.get(key)
    assert job["status"] == JobStatus.FAILED.value
    assert job["reason"] == ("model 'Broken' version 'latest' could not run on the model server (a fault of "
                             f"the model, not of the image); its operators can find the detail in the logs under {key}")
    assert key in caplog.text and "Could not find variable" in caplog.text


def test_predict_waits_for_a_server_that_comes_back(tiny_model_repository, caplog):
    server = ModelServerProcess(tiny_model_repository).start()
    client = ModelClient(server.address, retry_budget_seconds=300, backoff=QUICK_BACKOFF)
    try:
        client.metadata(TINY_MODEL)
        server.stop()
        batch = tiles(4)
        with caplog.at_level(logging.WARNING, logger="consumers.model_client"), \
                ThreadPoolExecutor(1) as pool:
            pending = pool.submit(client.predict, TINY_MODEL, None, batch)
            wait_until(lambda: "retry 1 in" in caplog.text, 60, "a failed predict")
            server.start()
            result = pending.result(timeout=300)
    finally:
        client.close()
        server.stop()

    assert result.retries > 0
    assert_tiny_model_outputs(result.outputs, batch)


class FlakyProxy(grpc.GenericRpcHandler):
    """A real gRPC hop in front of the model server whose first Predict calls fail:
    aborted with `code`, or answered too late for the client's deadline."""

    def __init__(self, target: str, code: grpc.StatusCode, failures: int, late_seconds: float) -> None:
        self.channel = grpc.insecure_channel(target)
        self.code, self.failures, self.late_seconds = code, failures, late_seconds

    def service(self, details):
        forward = self.channel.unary_unary(details.method)  # raw bytes both ways

        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            if details.method.endswith("/Predict") and self.failures > 0:
                self.failures -= 1
                if self.code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    time.sleep(self.late_seconds)
                else:
                    context.abort(self.code, "batch queue is full")  # what TF-Serving says when busy
            return forward(request)

        return grpc.unary_unary_rpc_method_handler(handle)


@pytest.mark.parametrize("code", [grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED])
def test_busy_or_slow_server_answers_are_retried(model_server, code, caplog):
    # Each call has 3 s (room for a loaded machine); a late answer comes after 3.5 s, past it.
    proxy = FlakyProxy(model_server.address, code, failures=2, late_seconds=3.5)
    server = grpc.server(futures.ThreadPoolExecutor(4), handlers=[proxy])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    batch = tiles(3)
    try:
        with caplog.at_level(logging.WARNING, logger="consumers.model_client"), \
                ModelClient(f"127.0.0.1:{port}", retry_budget_seconds=60, timeout_seconds=3,
                            backoff=QUICK_BACKOFF) as client:
            result = client.predict(TINY_MODEL, None, batch)
    finally:
        server.stop(0)
        proxy.channel.close()

    assert result.retries == 2 and proxy.failures == 0
    assert code.name in caplog.text
    assert_tiny_model_outputs(result.outputs, batch)


def test_server_that_never_answers_is_a_transient_error_after_the_budget():
    with ModelClient(f"127.0.0.1:{free_port()}", retry_budget_seconds=1,
                     backoff=QUICK_BACKOFF) as client:
        with pytest.raises(ModelServerUnavailable, match=r"did not answer for 1 s \(\d+ retries\); "
                                                   "last error: UNAVAILABLE"):
            client.metadata(TINY_MODEL)


def test_tensor_round_trip_through_raw_bytes():
    batch = tiles(2)

    proto = to_tensor_proto(batch)

    assert proto.dtype == types_pb2.DT_FLOAT and len(proto.tensor_content) == batch.nbytes
    np.testing.assert_array_equal(to_ndarray(proto), batch)


def test_tensor_in_typed_value_fields_is_decoded():
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT32,
                                   tensor_shape={"dim": [{"size": 2}, {"size": 2}]},
                                   int_val=[1, 2, 3, 4])

    np.testing.assert_array_equal(to_ndarray(proto), np.array([[1, 2], [3, 4]], np.int32))


def test_real_nuclear_segmentation_model_segments_tiles(nuclear_model_server):
    with ModelClient(nuclear_model_server.address, retry_budget_seconds=30) as client:
        spec = client.metadata("NuclearSegmentation")
        batch = tiles(2, size=256)
        result = client.predict("NuclearSegmentation", None, batch)

    assert (spec.input_name, spec.input_dtype, spec.channels) == ("image", np.float32, 1)
    assert {"fgbg", "inner_distance"} <= set(spec.output_names)
    for name in ("fgbg", "inner_distance"):
        assert result.outputs[name].shape[:3] == (2, 256, 256)
        assert np.isfinite(result.outputs[name]).all()
