"""The training script's parts: model shape contract, data pipeline, export."""

import numpy as np
import pytest
import tensorflow as tf

from modelserver.repository import load_served_model
from training.dataset import make_training_set
from training.train_nuclear_segmentation import BATCH, CROP, build_model, export, training_dataset


@pytest.fixture(scope="module")
def small_set():
    return make_training_set(seed=5, count=3, shape=(160, 160), workers=1)


def test_training_set_is_the_same_with_parallel_workers(small_set):
    images, targets = make_training_set(seed=5, count=3, shape=(160, 160), workers=2)
    np.testing.assert_array_equal(images, small_set[0])
    np.testing.assert_array_equal(targets, small_set[1])


def test_training_set_pairs_normalised_images_with_their_targets(small_set):
    images, targets = small_set
    assert images.shape == (3, 160, 160, 1) and targets.shape == (3, 160, 160, 2)
    assert images.min() >= 0.0 and images.max() <= 1.0
    fg, distance = targets[..., 0], targets[..., 1]
    np.testing.assert_array_equal(fg, distance > 0)
    assert images[..., 0][fg == 1].mean() > images[..., 0][fg == 0].mean()


def test_dataset_is_reproducible_and_keeps_images_aligned_with_targets(small_set):
    first = next(iter(training_dataset(*small_set, seed=1)))
    again = next(iter(training_dataset(*small_set, seed=1)))
    other = next(iter(training_dataset(*small_set, seed=2)))
    image, targets = first
    assert image.shape == (BATCH, CROP, CROP, 1)
    assert set(targets) == {"fgbg", "inner_distance"}
    np.testing.assert_array_equal(image, again[0])
    assert not np.array_equal(image, other[0])
    # flips and turns were applied to image and targets alike
    fg = targets["fgbg"].numpy() == 1
    np.testing.assert_array_equal(fg, targets["inner_distance"].numpy() > 0)
    assert image.numpy()[fg].mean() > image.numpy()[~fg].mean()


def test_model_takes_any_multiple_of_16_and_outputs_probabilities():
    outputs = build_model()(np.random.default_rng(0).random((2, 48, 80, 1), np.float32))
    for name in ("fgbg", "inner_distance"):
        assert outputs[name].shape == (2, 48, 80, 1)
        assert 0.0 <= float(tf.reduce_min(outputs[name])) and float(tf.reduce_max(outputs[name])) <= 1.0


def test_export_runs_under_the_session_loader_with_the_keras_outputs(tmp_path):
    """TF-Serving's way: restore the variables into a session, run the signature's tensors by name."""
    model = build_model()
    export(model, tmp_path / "1")
    served = load_served_model("M", 1, tmp_path / "1")
    image = np.random.default_rng(0).random((2, 32, 64, 1), np.float32)

    outputs = served.run("serving_default", {"image": image}, ["fgbg", "inner_distance"])

    signature = served.signature_defs["serving_default"]
    assert list(signature.inputs) == ["image"] and sorted(signature.outputs) == ["fgbg", "inner_distance"]
    expected = model(image, training=False)
    for name in ("fgbg", "inner_distance"):
        np.testing.assert_array_equal(outputs[name], expected[name].numpy())


def test_export_holds_each_weight_once(tmp_path):
    model = build_model()
    export(model, tmp_path / "1")
    saved = tf.train.list_variables(str(tmp_path / "1" / "variables" / "variables"))
    # weights are arrays; the one scalar is Keras's own bookkeeping
    assert sum(int(np.prod(shape)) for _, shape in saved if shape) == model.count_params()
