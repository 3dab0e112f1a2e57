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


def _served_tensorflow_versions() -> set[str]:
    """The TensorFlow versions (major.minor) of the TF-Serving images the stacks deploy: the
    Pulumi.yaml default and the TfServing component's."""
    import re

    import yaml

    from components.k8s.tf_serving import TfServingArgs

    config = yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text())["config"]
    images = {config["tfServingImage"]["default"], TfServingArgs.__dataclass_fields__["image"].default}
    return {re.fullmatch(r"tensorflow/serving:(\d+\.\d+)\.\d+(-gpu)?", image).group(1) for image in images}


def _exporting_version(path: Path) -> str:
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    version = saved.meta_graphs[0].meta_info_def.tensorflow_version
    return ".".join(version.split(".")[:2])


@pytest.mark.parametrize("saved_model", COMMITTED_MODELS, ids=lambda path: "/".join(path.parts[-3:-1]))
def test_the_cloud_serves_each_model_with_the_tensorflow_that_exported_it(saved_model):
    """TF-Serving X.Y is built on TensorFlow X.Y; a model exported by a newer TensorFlow may use ops
    or attributes an older server lacks."""
    assert _served_tensorflow_versions() == {_exporting_version(saved_model.parent)}


@pytest.mark.parametrize("saved_model", COMMITTED_MODELS, ids=lambda path: "/".join(path.parts[-3:-1]))
def test_every_op_of_a_committed_model_exists_in_this_tensorflow(saved_model):
    """This TensorFlow is the served version (the test above): every op the graph and its functions
    use must be registered in it."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry

    graph = saved_model_pb2.SavedModel.FromString(saved_model.read_bytes()).meta_graphs[0].graph_def
    ops = {node.op for node in graph.node} | {node.op for function in graph.library.function
                                              for node in function.node_def}
    functions = {function.signature.name for function in graph.library.function}
    assert ".".join(tf.__version__.split(".")[:2]) in _served_tensorflow_versions()
    assert {op for op in ops - functions if op_def_registry.get(op) is None} == set()
