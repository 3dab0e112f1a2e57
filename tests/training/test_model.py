"""The committed NuclearSegmentation SavedModel: its serving contract and its accuracy."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tifffile

from training.evaluate import REAL_IMAGE, REAL_LABELS, held_out_samples, load_model, pooled, segment
from training.metrics import match_nuclei

MODEL = Path(__file__).resolve().parents[2] / "models" / "NuclearSegmentation" / "1"


@pytest.fixture(scope="module")
def predict():
    return load_model(MODEL)


def test_model_is_small_enough_to_commit():
    assert sum(f.stat().st_size for f in MODEL.rglob("*") if f.is_file()) <= 5 * 1024 * 1024


def test_serving_signature_names_dtypes_and_shapes(predict):
    _, inputs = predict.structured_input_signature
    assert inputs == {"image": tf.TensorSpec([None, None, None, 1], tf.float32, name="image")}
    outputs = predict.structured_outputs
    assert set(outputs) == {"fgbg", "inner_distance"}
    for spec in outputs.values():
        assert spec.dtype == tf.float32 and spec.shape.as_list() == [None, None, None, 1]


def test_a_batch_of_tiles_gives_probability_maps_per_tile(predict):
    batch = np.random.default_rng(0).random((3, 64, 48, 1), np.float32)
    outputs = predict(image=tf.constant(batch))
    for name in ("fgbg", "inner_distance"):
        values = outputs[name].numpy()
        assert values.shape == (3, 64, 48, 1) and values.dtype == np.float32
        assert values.min() >= 0.0 and values.max() <= 1.0


def test_segments_held_out_synthetic_images(predict):
    scores = [match_nuclei(truth, segment(predict, image)) for image, truth in held_out_samples(3)]
    assert pooled(scores).f1 >= 0.8
    assert min(s.f1 for s in scores) >= 0.7


def test_sizes_that_are_not_multiples_of_16_are_padded_and_cropped_back(predict):
    image, truth = held_out_samples(1, shape=(200, 232))[0]
    labels = segment(predict, image)
    assert labels.shape == (200, 232)
    assert match_nuclei(truth, labels).f1 >= 0.7


def test_segments_a_real_fluorescence_image(predict):
    """Lab images are not synthetic: a hand-annotated DSB2018 nuclear stain."""
    truth = tifffile.imread(REAL_LABELS)
    labels = segment(predict, tifffile.imread(REAL_IMAGE).astype(np.float32))
    assert match_nuclei(truth, labels).f1 >= 0.8
