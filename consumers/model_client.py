"""Client for TensorFlow Serving's gRPC API (the cloud's tensorflow/serving or `modelserver`).

`ModelClient.predict` sends a batch of tiles in sub-batches the server accepts,
retrying with backoff while the server is unreachable or overloaded (a model
server scaling up from zero delays a job, it does not fail it), and shrinking
its batch size when the server names a smaller limit.
"""

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc
import numpy as np
from google.protobuf.message import Message
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, predict_pb2,
                                     prediction_service_pb2_grpc)

from consumers.errors import JobInputError
from consumers.retry import RetryPolicy

log = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
# A batch of 16 float32 256x256 tiles is 4 MiB, gRPC's default limit.
MAX_MESSAGE_BYTES = 512 * 1024 * 1024
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.RESOURCE_EXHAUSTED})
# TF-Serving's batching scheduler (and modelserver) refuse a too large batch with this wording.
BATCH_LIMIT = re.compile(r"Task size (\d+) is larger than maximum input batch size (\d+)")

# (TensorFlow DataType, numpy dtype, TensorProto field holding the values when
# tensor_content is empty, as in TF-Serving's default responses)
_DTYPES = [
    (types_pb2.DT_FLOAT, np.dtype(np.float32), "float_val"),
    (types_pb2.DT_DOUBLE, np.dtype(np.float64), "double_val"),
    (types_pb2.DT_INT8, np.dtype(np.int8), "int_val"),
    (types_pb2.DT_INT16, np.dtype(np.int16), "int_val"),
    (types_pb2.DT_INT32, np.dtype(np.int32), "int_val"),
    (types_pb2.DT_INT64, np.dtype(np.int64), "int64_val"),
    (types_pb2.DT_UINT8, np.dtype(np.uint8), "int_val"),
    (types_pb2.DT_UINT16, np.dtype(np.uint16), "int_val"),
    (types_pb2.DT_BOOL, np.dtype(np.bool_), "bool_val"),
]
_NUMPY_DTYPE = {data_type: dtype for data_type, dtype, _ in _DTYPES}
_DATA_TYPE = {dtype: data_type for data_type, dtype, _ in _DTYPES}
_VALUE_FIELD = {data_type: field for data_type, _, field in _DTYPES}

Response = TypeVar("Response", bound=Message)


class ModelServerError(Exception):
    """The model server answered with an error that is not the job's fault."""


class ModelCannotRun(ModelServerError):
    """The model server has the model but cannot run it (FAILED_PRECONDITION, e.g. variables it
    cannot restore): the model is broken, not the image. The text, with the server's detail, is
    for the operators' log; `reason` is for people."""

    def __init__(self, model: str, version: int | str | None, detail: str) -> None:
        self.reason = (f"model '{model}' version '{_label(version)}' could not run on the model server "
                       "(a fault of the model, not of the image)")
        super().__init__(f"{self.reason}: {detail}")


class ModelServerUnavailable(ModelServerError):
    """The model server did not answer within the retry budget (down, or scaling up from
    zero): the job goes back to the queue instead of failing."""


@dataclass(frozen=True)
class ModelSpec:
    """What a model takes and returns, learned from its serving signature."""

    name: str
    version: int
    input_name: str
    input_dtype: np.dtype
    tile_height: int | None  # None: any height
    tile_width: int | None
    channels: int | None
    output_names: tuple[str, ...]


@dataclass(frozen=True)
class PredictResult:
    """A model's outputs for a whole batch, and how many requests were retried to get them."""

    outputs: dict[str, np.ndarray]
    retries: int


def to_tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """Encode an array as its raw bytes in `tensor_content` (no per-element encoding)."""
    array = np.ascontiguousarray(array)
    return tensor_pb2.TensorProto(
        dtype=_DATA_TYPE[array.dtype],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in array.shape]),
        tensor_content=array.tobytes())


def to_ndarray(tensor: tensor_pb2.TensorProto) -> np.ndarray:
    """Decode a TensorProto, from `tensor_content` if set, else from its typed value field."""
    dtype = _NUMPY_DTYPE[tensor.dtype]
    shape = [dim.size for dim in tensor.tensor_shape.dim]
    if tensor.tensor_content:
        return np.frombuffer(tensor.tensor_content, dtype=dtype).reshape(shape)
    return np.asarray(getattr(tensor, _VALUE_FIELD[tensor.dtype]), dtype=dtype).reshape(shape)


class ModelClient:
    """Predictions and model metadata from a TF-Serving compatible server at `address`.

    `max_batch_size` is the largest sub-batch sent; it drops to the server's own
    limit if the server refuses a batch as too large. Calls that fail with
    UNAVAILABLE, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED are retried after
    `backoff.delay(n)` seconds (its `attempts` is not used) for as long as
    `retry_budget_seconds` allows, then raise ModelServerUnavailable. Unknown models
    and images a model cannot take raise JobInputError, a model the server cannot run
    ModelCannotRun. Safe to share between threads.
    """

    def __init__(self, address: str, *, max_batch_size: int = 16,
                 retry_budget_seconds: float = 600, timeout_seconds: float = 60,
                 backoff: RetryPolicy = RetryPolicy(initial_seconds=0.5, max_seconds=10.0),
                 signature_name: str = DEFAULT_SIGNATURE) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        self.address = address
        self.max_batch_size = max_batch_size
        self.retry_budget_seconds = retry_budget_seconds
        self.timeout_seconds = timeout_seconds
        self.backoff = backoff
        self.signature_name = signature_name
        self._channel = grpc.insecure_channel(address, options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            # gRPC's own reconnect backoff grows to 120 s by default; cap it like ours
            # so a server that comes back is reached within one of our retries.
            ("grpc.initial_reconnect_backoff_ms", int(backoff.initial_seconds * 1000)),
            ("grpc.min_reconnect_backoff_ms", int(backoff.initial_seconds * 1000)),
            ("grpc.max_reconnect_backoff_ms", int(backoff.max_seconds * 1000)),
        ])
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._specs: dict[tuple[str, int | None], ModelSpec] = {}

    def close(self) -> None:
        """Close the connection."""
        self._channel.close()

    def __enter__(self) -> "ModelClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def metadata(self, model: str, version: int | str | None = None) -> ModelSpec:
        """The input and outputs of `model` (its highest version if `version` is None).

        Cached for the client's lifetime: with `version` None a consumer keeps the version
        that was the latest at its first call until it restarts.
        """
        key = (model, _version_number(version))
        if key not in self._specs:
            request = get_model_metadata_pb2.GetModelMetadataRequest(
                metadata_field=["signature_def"])
            _set_model_spec(request.model_spec, model, key[1])
            try:
                response, _ = self._call(self._stub.GetModelMetadata, request, model, key[1])
            except grpc.RpcError as error:
                raise _rejected(error, model, key[1]) from error
            self._specs[key] = self._model_spec(model, response)
        return self._specs[key]

    def predict(self, model: str, version: int | str | None, batch: np.ndarray) -> PredictResult:
        """Run `model` on `batch` ([N, H, W, C], any N) and return its outputs for all N.

        Every sub-batch goes to the same model version: the one the server names
        the latest when `version` is None.
        """
        if len(batch) == 0:
            raise ValueError("predict needs at least one tile")
        spec = self.metadata(model, version)
        batch = np.ascontiguousarray(batch, dtype=spec.input_dtype)
        parts: dict[str, list[np.ndarray]] = {}
        retries = start = 0
        while start < len(batch):
            size = self.max_batch_size
            request = predict_pb2.PredictRequest()
            _set_model_spec(request.model_spec, model, spec.version, self.signature_name)
            request.inputs[spec.input_name].CopyFrom(to_tensor_proto(batch[start:start + size]))
            try:
                response, call_retries = self._call(self._stub.Predict, request, model, version)
            except grpc.RpcError as error:
                server_limit = _server_batch_limit(error)
                if server_limit is None or not 0 < server_limit < min(size, len(batch) - start):
                    raise _rejected(error, model, version) from error
                log.warning("model server at %s accepts batches of at most %d tiles, not %d: "
                            "sending smaller batches from now on", self.address, server_limit,
                            size)
                self.max_batch_size = server_limit
                continue
            retries += call_retries
            for name, tensor in response.outputs.items():
                parts.setdefault(name, []).append(to_ndarray(tensor))
            start += size
        return PredictResult({name: np.concatenate(arrays) for name, arrays in parts.items()},
                             retries)

    def _call(self, method: Callable[..., Response], request: Message, model: str,
              version: int | None) -> tuple[Response, int]:
        """Call `method`, retrying transient failures; return the response and the retry count.

        NOT_FOUND raises JobInputError; other non-transient failures are re-raised.
        """
        retries = 0
        give_up_at: float | None = None
        while True:
            try:
                return method(request, timeout=self.timeout_seconds), retries
            except grpc.RpcError as error:
                code = error.code()
                if code == grpc.StatusCode.NOT_FOUND:
                    raise JobInputError(
                        f"model '{model}' version '{_label(version)}' is not available on "
                        "the model server") from error
                if code not in RETRYABLE:
                    raise
                now = time.monotonic()
                give_up_at = give_up_at or now + self.retry_budget_seconds
                delay = self.backoff.delay(retries + 1)
                if now + delay > give_up_at:
                    raise ModelServerUnavailable(
                        f"the model server at {self.address} did not answer for "
                        f"{self.retry_budget_seconds:.0f} s ({retries} retries); last error: "
                        f"{code.name}: {error.details()}") from error
                log.warning("model server at %s: %s (%s); retry %d in %.1f s", self.address,
                            code.name, error.details(), retries + 1, delay)
                time.sleep(delay)
                retries += 1

    def _model_spec(self, model: str,
                    response: get_model_metadata_pb2.GetModelMetadataResponse) -> ModelSpec:
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        signature = signatures.signature_def.get(self.signature_name)
        if signature is None:
            raise JobInputError(f"model '{model}' has no '{self.signature_name}' signature")
        if len(signature.inputs) != 1:
            raise JobInputError(f"model '{model}' takes {len(signature.inputs)} inputs; the kiosk "
                                "can only run models that take one image")
        (input_name, tensor), = signature.inputs.items()
        dims = [dim.size if dim.size >= 0 else None for dim in tensor.tensor_shape.dim]
        if tensor.tensor_shape.unknown_rank or len(dims) != 4:
            raise JobInputError(f"model '{model}' does not take images as "
                                "[batch, height, width, channels]")
        return ModelSpec(name=model, version=response.model_spec.version.value,
                         input_name=input_name, input_dtype=_NUMPY_DTYPE[tensor.dtype],
                         tile_height=dims[1], tile_width=dims[2], channels=dims[3],
                         output_names=tuple(sorted(signature.outputs)))


def _version_number(version: int | str | None) -> int | None:
    """Versions arrive as job fields (strings); "" and None mean the latest."""
    if version is None or version == "":
        return None
    if not str(version).isdigit():
        raise JobInputError(f"model version '{version}' is not a version number")
    return int(version)


def _label(version: int | str | None) -> str:
    return "latest" if version is None or version == "" else str(version)


def _set_model_spec(spec: Message, model: str, version: int | None,
                    signature_name: str | None = None) -> None:
    spec.name = model
    if version is not None:
        spec.version.value = version
    if signature_name:
        spec.signature_name = signature_name


def _server_batch_limit(error: grpc.RpcError) -> int | None:
    """The server's maximum batch size if `error` refused a batch as too large."""
    if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
        return None
    match = BATCH_LIMIT.search(error.details() or "")
    return int(match.group(2)) if match else None


def _rejected(error: grpc.RpcError, model: str, version: int | str | None) -> Exception:
    """The job error for a request the server refused for good (or a transient one otherwise)."""
    if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
        return JobInputError(f"model '{model}' version '{_label(version)}' cannot process "
                             f"this image: {error.details()}")
    if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
        return ModelCannotRun(model, version, error.details())
    return ModelServerError(f"model server error for model '{model}': "
                            f"{error.code().name}: {error.details()}")
