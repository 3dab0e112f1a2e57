"""`python -m modelserver` in a subprocess, spoken to with TF-Serving's own gRPC stubs."""

import shutil
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from consumers.model_client import to_ndarray, to_tensor_proto
from tests.fixtures.model_server import TINY_MODEL, ModelServerProcess
from tests.fixtures.servers import wait_until

AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE


@pytest.fixture(scope="module")
def channel(model_server):
    with grpc.insecure_channel(model_server.address) as channel:
        yield channel


@pytest.fixture
def prediction(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture
def models(channel):
    return model_service_pb2_grpc.ModelServiceStub(channel)


def predict_request(image: np.ndarray, model: str = TINY_MODEL, input_name: str = "image",
                    **model_spec) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(model_spec={"name": model, **model_spec})
    request.inputs[input_name].CopyFrom(to_tensor_proto(image))
    return request


def rpc_error(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call(request, timeout=30)
    return raised.value


def model_status(stub, name, **version):
    return stub.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(
        model_spec={"name": name, **version}), timeout=30)


def tiles(count: int, size: int = 8) -> np.ndarray:
    """Distinct values in every tile, negative and above 1 too, so clipping shows."""
    return np.random.default_rng(count).uniform(-1, 2, (count, size, size, 1)).astype(np.float32)


def test_model_status_reports_loaded_version_available(models):
    response = model_status(models, TINY_MODEL)

    assert [(status.version, status.state) for status in response.model_version_status] == [
        (1, AVAILABLE)]
    assert model_status(models, TINY_MODEL, version={"value": 1}).model_version_status[0].state \
        == AVAILABLE


@pytest.mark.parametrize("version, message", [
    (None, "Could not find any versions of model Nope"),
    (5, "Could not find version 5 of model Nope"),
])
def test_model_status_of_unknown_model_is_not_found(models, version, message):
    spec = {"name": "Nope"} if version is None else {"name": "Nope", "version": {"value": version}}
    error = rpc_error(models.GetModelStatus,
                      get_model_status_pb2.GetModelStatusRequest(model_spec=spec))

    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, message)


def test_metadata_is_the_signature_def_map_packed_like_tf_serving(prediction):
    response = prediction.GetModelMetadata(get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec={"name": TINY_MODEL}, metadata_field=["signature_def"]), timeout=30)

    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    serving = signatures.signature_def["serving_default"]
    image = serving.inputs["image"]
    assert image.dtype == types_pb2.DT_FLOAT
    assert [dim.size for dim in image.tensor_shape.dim] == [-1, -1, -1, 1]
    assert sorted(serving.outputs) == ["fgbg", "inner_distance"]
    assert (response.model_spec.name, response.model_spec.version.value) == (TINY_MODEL, 1)


def test_metadata_refuses_fields_other_than_signature_def(prediction):
    error = rpc_error(prediction.GetModelMetadata, get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec={"name": TINY_MODEL}, metadata_field=["graph"]))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "Metadata field graph is not supported"


def test_predict_answers_the_model_outputs_as_raw_tensor_content(prediction):
    image = tiles(3)

    response = prediction.Predict(predict_request(image), timeout=30)

    assert response.outputs["fgbg"].tensor_content  # raw bytes, not float_val
    np.testing.assert_array_equal(to_ndarray(response.outputs["fgbg"]), np.clip(image, 0, 1))
    np.testing.assert_array_equal(to_ndarray(response.outputs["inner_distance"]), 2 * image)
    assert (response.model_spec.name, response.model_spec.version.value,
            response.model_spec.signature_name) == (TINY_MODEL, 1, "serving_default")


def test_predict_accepts_values_in_typed_fields(prediction):
    request = predict_pb2.PredictRequest(model_spec={"name": TINY_MODEL})
    request.inputs["image"].CopyFrom(tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape={"dim": [{"size": 1}, {"size": 1}, {"size": 3},
                                                        {"size": 1}]},
        float_val=[-0.5, 0.5, 1.5]))

    response = prediction.Predict(request, timeout=30)

    assert to_ndarray(response.outputs["inner_distance"]).ravel().tolist() == [-1.0, 1.0, 3.0]


def test_output_filter_returns_only_the_named_outputs(prediction):
    request = predict_request(tiles(1))
    request.output_filter.append("fgbg")

    assert list(prediction.Predict(request, timeout=30).outputs) == ["fgbg"]


@pytest.mark.parametrize("model_spec, message", [
    ({"model": "Nope"}, "Servable not found for request: Latest(Nope)"),
    ({"version": {"value": 7}}, f"Servable not found for request: Specific({TINY_MODEL}, 7)"),
])
def test_predict_on_unknown_model_or_version_is_not_found(prediction, model_spec, message):
    error = rpc_error(prediction.Predict, predict_request(tiles(1), **model_spec))

    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, message)


def test_predict_with_unknown_signature_fails_its_precondition_as_in_tf_serving(prediction):
    error = rpc_error(prediction.Predict, predict_request(tiles(1), signature_name="nope"))

    assert (error.code(), error.details()) == (grpc.StatusCode.FAILED_PRECONDITION,
                                               'Serving signature key "nope" not found.')


@pytest.mark.parametrize("request_maker, message", [
    (lambda: predict_request(tiles(1), input_name="pixels"),
     "input tensor alias not found in signature: pixels. Inputs expected to be in the set "
     "{image}."),
    (lambda: predict_request(tiles(1).astype(np.float64)),
     "Expects arg[0] to be float but double is provided"),
    (lambda: predict_request(np.zeros((2, 8, 8, 3), np.float32)),
     "input 'image' has shape [2, 8, 8, 3] but the model expects [-1, -1, -1, 1] (-1: any size)"),
    (lambda: predict_request(tiles(17)),
     "Task size 17 is larger than maximum input batch size 16"),
])
def test_bad_input_is_an_invalid_argument(prediction, request_maker, message):
    error = rpc_error(prediction.Predict, request_maker())

    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)


def test_rpcs_other_than_predict_and_metadata_are_unimplemented(prediction):
    error = rpc_error(prediction.Classify, classification_pb2.ClassificationRequest(
        model_spec={"name": TINY_MODEL}))

    assert error.code() == grpc.StatusCode.UNIMPLEMENTED


def test_concurrent_predictions_each_get_their_own_answer(prediction):
    images = [tiles(count) for count in range(1, 17)]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda image: prediction.Predict(predict_request(image),
                                                                 timeout=60), images))

    for image, answer in zip(images, answers):
        np.testing.assert_array_equal(to_ndarray(answer.outputs["inner_distance"]), 2 * image)


def test_models_dropped_into_the_repository_are_served_without_restart(tiny_model_repository,
                                                                       tmp_path):
    repository = tmp_path / "models"
    shutil.copytree(tiny_model_repository, repository)
    server = ModelServerProcess(repository, poll_seconds=0.2).start()
    try:
        with grpc.insecure_channel(server.address) as channel:
            models = model_service_pb2_grpc.ModelServiceStub(channel)
            prediction = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            # Renamed in whole, as an operator (or a sync from the bucket) should.
            shutil.copytree(repository / TINY_MODEL / "1", tmp_path / "v2")
            (tmp_path / "v2").rename(repository / TINY_MODEL / "2")
            shutil.copytree(repository / TINY_MODEL / "1", tmp_path / "late")
            (repository / "LateModel").mkdir()
            (tmp_path / "late").rename(repository / "LateModel" / "1")

            # TinyModel is known already: only the periodic scan finds its version 2.
            wait_until(lambda: len(model_status(models, TINY_MODEL).model_version_status) == 2,
                       60, "version 2 of TinyModel")
            latest = prediction.Predict(predict_request(tiles(1)), timeout=30)
            late = prediction.Predict(predict_request(tiles(2), model="LateModel"), timeout=30)
    finally:
        exit_code = server.stop()

    assert latest.model_spec.version.value == 2
    np.testing.assert_array_equal(to_ndarray(late.outputs["inner_distance"]), 2 * tiles(2))
    assert exit_code == 0
    assert "loaded model LateModel version 1" in server.log()


def test_sigterm_stops_the_server_cleanly(tiny_model_repository):
    server = ModelServerProcess(tiny_model_repository).start()

    assert server.stop() == 0
    assert server.log().rstrip().endswith("stopped")
