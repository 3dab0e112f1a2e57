"""Run a PredictRequest on a loaded model, validating it the way TF-Serving does."""

from collections.abc import Mapping

import grpc
import tensorflow as tf
from google.protobuf.message import Message
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2

from modelserver.errors import ServingError
from modelserver.repository import ServedModel

DEFAULT_SIGNATURE = "serving_default"

_STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def predict(model: ServedModel, request: predict_pb2.PredictRequest,
            max_batch_size: int) -> predict_pb2.PredictResponse:
    """Answer `request` with `model`; raise ServingError with TF-Serving's code and wording."""
    signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature = model.signature_defs.get(signature_name)
    if signature is None:
        raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                           f'Serving signature key "{signature_name}" not found.')
    _check_inputs(signature.inputs, request.inputs, max_batch_size)
    output_names = _output_names(signature.outputs, request.output_filter)

    inputs = {name: tf.make_ndarray(tensor) for name, tensor in request.inputs.items()}
    try:
        outputs = model.run(signature_name, inputs, output_names)
    except tf.errors.OpError as error:
        raise ServingError(_STATUS_BY_NUMBER.get(error.error_code, grpc.StatusCode.UNKNOWN),
                           error.message) from error

    response = predict_pb2.PredictResponse()
    response.model_spec.name = model.name
    response.model_spec.version.value = model.version
    response.model_spec.signature_name = signature_name
    for name in output_names:
        # make_tensor_proto fills tensor_content with the raw bytes: no per-element encoding.
        response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name]))
    return response


def _check_inputs(expected: Mapping[str, Message], sent: Mapping[str, tensor_pb2.TensorProto],
                  max_batch_size: int) -> None:
    if len(sent) != len(expected):
        raise ServingError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"input size does not match signature: {len(sent)}!={len(expected)} "
            f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
            f"Sent extra: {{{','.join(sorted(set(sent) - set(expected)))}}}. "
            f"Missing but required: {{{','.join(sorted(set(expected) - set(sent)))}}}.")
    for position, (name, tensor) in enumerate(sorted(sent.items())):
        info = expected.get(name)
        if info is None:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input tensor alias not found in signature: {name}. "
                f"Inputs expected to be in the set {{{','.join(sorted(expected))}}}.")
        if tensor.dtype != info.dtype:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Expects arg[{position}] to be {_dtype_name(info.dtype)} "
                f"but {_dtype_name(tensor.dtype)} is provided")
        shape = [dim.size for dim in tensor.tensor_shape.dim]
        if shape and shape[0] > max_batch_size:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Task size {shape[0]} is larger than maximum input batch size {max_batch_size}")
        if not _shape_fits(shape, info.tensor_shape):
            wanted = [dim.size for dim in info.tensor_shape.dim]
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"input {name!r} has shape {shape} but the model expects {wanted} "
                               "(-1: any size)")


def _shape_fits(shape: list[int], expected: tensor_shape_pb2.TensorShapeProto) -> bool:
    if expected.unknown_rank:
        return True
    return len(shape) == len(expected.dim) and all(
        want.size in (-1, size) for want, size in zip(expected.dim, shape))


def _output_names(outputs: Mapping[str, Message], output_filter: list[str]) -> list[str]:
    for name in output_filter:
        if name not in outputs:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"output tensor alias not found in signature: {name} "
                f"Outputs expected to be in the set {{{','.join(sorted(outputs))}}}.")
    return list(output_filter) or sorted(outputs)


def _dtype_name(dtype: int) -> str:
    """TensorFlow's short name of a DataType, e.g. DT_FLOAT -> "float", as in its own errors."""
    return types_pb2.DataType.Name(dtype).removeprefix("DT_").lower()
