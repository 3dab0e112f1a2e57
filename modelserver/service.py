"""gRPC servicers for TF-Serving's PredictionService and ModelService over a ModelRepository.

RPCs not overridden here (Classify, Regress, MultiInference, HandleReloadConfigRequest)
keep the generated base classes' behaviour: they answer UNIMPLEMENTED.
"""

import functools
from collections.abc import Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from modelserver.errors import ServingError
from modelserver.predict import predict
from modelserver.repository import ModelRepository

SIGNATURE_DEF_FIELD = "signature_def"

Response = TypeVar("Response", bound=Message)


def _answers_serving_errors(method: Callable[..., Response]) -> Callable[..., Response]:
    """Turn a ServingError raised by an RPC handler into that gRPC status."""
    @functools.wraps(method)
    def handler(self, request: Message, context: grpc.ServicerContext) -> Response:
        try:
            return method(self, request, context)
        except ServingError as error:
            context.abort(error.code, error.message)
    return handler


def _model_spec(request: Message) -> model_pb2.ModelSpec:
    if not request.HasField("model_spec"):
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
    spec = request.model_spec
    if spec.version_label:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           "version labels are not supported by this model server; "
                           "ask for a version number or for the latest version")
    return spec


def _version(spec: model_pb2.ModelSpec) -> int | None:
    return spec.version.value if spec.HasField("version") else None


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata."""

    def __init__(self, repository: ModelRepository, max_batch_size: int) -> None:
        self._repository = repository
        self._max_batch_size = max_batch_size

    @_answers_serving_errors
    def Predict(self, request: predict_pb2.PredictRequest,
                context: grpc.ServicerContext) -> predict_pb2.PredictResponse:
        spec = _model_spec(request)
        model = self._repository.get(spec.name, _version(spec))
        return predict(model, request, self._max_batch_size)

    @_answers_serving_errors
    def GetModelMetadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest,
                         context: grpc.ServicerContext
                         ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        spec = _model_spec(request)
        if not request.metadata_field:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               "GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"Metadata field {field} is not supported")
        model = self._repository.get(spec.name, _version(spec))
        signatures = get_model_metadata_pb2.SignatureDefMap(signature_def=model.signature_defs)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = model.version
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signatures)
        return response


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus: every loaded version is AVAILABLE."""

    def __init__(self, repository: ModelRepository) -> None:
        self._repository = repository

    @_answers_serving_errors
    def GetModelStatus(self, request: get_model_status_pb2.GetModelStatusRequest,
                       context: grpc.ServicerContext
                       ) -> get_model_status_pb2.GetModelStatusResponse:
        spec = _model_spec(request)
        version = _version(spec)
        if version is None:
            versions = sorted(self._repository.versions(spec.name))
            if not versions:
                raise ServingError(grpc.StatusCode.NOT_FOUND,
                                   f"Could not find any versions of model {spec.name}")
        else:
            try:
                versions = [self._repository.get(spec.name, version).version]
            except ServingError:
                raise ServingError(grpc.StatusCode.NOT_FOUND,
                                   f"Could not find version {version} of model {spec.name}"
                                   ) from None
        available = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return get_model_status_pb2.GetModelStatusResponse(model_version_status=[
            get_model_status_pb2.ModelVersionStatus(version=number, state=available)
            for number in versions])
