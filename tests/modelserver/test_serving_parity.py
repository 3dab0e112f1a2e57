"""Models run the way TF-Serving runs them: the session loader and the signature's tensor names.

TF-Serving restores a SavedModel's variables through its saver and runs a signature
by tensor name; `tf.saved_model.load` rebuilds the object graph instead, which also
works for SavedModels TF-Serving cannot run. These tests hold every committed model,
and the local model server, to the session-loader path.
"""

from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from modelserver.repository import load_served_model
from tests.fixtures.model_server import PROJECT_ROOT, ModelServerProcess

COMMITTED_MODELS = sorted(PROJECT_ROOT.glob("models/*/[0-9]*/saved_model.pb"))


def _signature_inputs(path: Path) -> dict[str, np.ndarray]:
    """A reproducible input for each input of the serving signature (unknown dims: 1 batch, 48 px)."""
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    rng = np.random.default_rng(0)
    inputs = {}
    for name, spec in signature.structured_input_signature[1].items():
        shape = [dim if dim is not None else (1 if axis == 0 else 48) for axis, dim in enumerate(spec.shape)]
        inputs[name] = rng.random(shape, dtype=np.float32)
    return inputs


@pytest.mark.parametrize("saved_model", COMMITTED_MODELS, ids=lambda path: "/".join(path.parts[-3:-1]))
def test_committed_model_runs_under_the_session_loader_like_in_process(saved_model):
    path = saved_model.parent
    inputs = _signature_inputs(path)
    in_process = tf.saved_model.load(str(path)).signatures["serving_default"](
        **{name: tf.constant(value) for name, value in inputs.items()})

    served = load_served_model(path.parent.name, int(path.name), path)
    outputs = served.run("serving_default", inputs, sorted(in_process))

    assert sorted(outputs) == sorted(in_process)
    for name, value in outputs.items():
        np.testing.assert_allclose(value, in_process[name].numpy(), rtol=1e-5, atol=1e-6)


def test_there_is_a_committed_model():
    assert COMMITTED_MODELS, "no SavedModel under models/"


def _keras_in_module(path: Path) -> None:
    """The Keras 3 pattern TF-Serving cannot run: a Keras model in a tf.Module, tf.saved_model.save."""
    import keras

    image = keras.Input((None, None, 1), name="image")
    model = keras.Model(image, keras.layers.Conv2D(1, 3, padding="same", name="fgbg")(image))

    class Serving(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32, name="image")])
        def serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"fgbg": self.model(image)}

    serving = Serving()
    tf.saved_model.save(serving, str(path), signatures={"serving_default": serving.serve})


def test_model_tf_serving_cannot_run_fails_in_the_model_server_with_its_error(tmp_path):
    _keras_in_module(tmp_path / "Broken" / "1")
    server = ModelServerProcess(tmp_path)
    server.start()
    try:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "Broken"
        request.inputs["image"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 8, 8, 1), np.float32)))
        with grpc.insecure_channel(server.address) as channel:
            with pytest.raises(grpc.RpcError) as raised:
                prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
    finally:
        server.stop()

    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "Could not find variable" in raised.value.details()
