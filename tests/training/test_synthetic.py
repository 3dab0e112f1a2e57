"""The synthetic nuclei generator: deterministic, realistic enough to train on."""

import numpy as np
import pytest
from scipy import ndimage
from skimage.measure import label, regionprops
from skimage.segmentation import expand_labels

from training.synthetic import make_sample

SEEDS = range(6)


@pytest.fixture(scope="module")
def samples():
    return [make_sample(np.random.default_rng(seed)) for seed in SEEDS]


def test_same_seed_same_sample_other_seed_other_sample():
    image, labels = make_sample(np.random.default_rng(42))
    again_image, again_labels = make_sample(np.random.default_rng(42))
    other_image, other_labels = make_sample(np.random.default_rng(43))
    np.testing.assert_array_equal(image, again_image)
    np.testing.assert_array_equal(labels, again_labels)
    assert not np.array_equal(labels, other_labels)
    assert not np.array_equal(image, other_image)


def test_types_shapes_and_sequential_labels():
    image, labels = make_sample(np.random.default_rng(7), shape=(96, 160))
    assert image.shape == labels.shape == (96, 160)
    assert image.dtype == np.float32 and labels.dtype == np.int32
    assert 0.0 <= image.min() and image.max() <= 65535.0
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))


def test_every_nucleus_is_one_connected_piece(samples):
    for _, labels in samples:
        pieces = label(labels, background=0, connectivity=2)
        assert pieces.max() == labels.max()


def test_nuclei_touch_each_other(samples):
    touching = 0
    for _, labels in samples:
        right = (labels[:, :-1] > 0) & (labels[:, 1:] > 0) & (labels[:, :-1] != labels[:, 1:])
        down = (labels[:-1] > 0) & (labels[1:] > 0) & (labels[:-1] != labels[1:])
        touching += int(right.sum() + down.sum())
        assert right.any() or down.any()
    assert touching > 100


def test_sizes_span_small_to_large_nuclei(samples):
    diameters = np.concatenate([
        [r.equivalent_diameter_area for r in regionprops(labels) if r.area > 0.9 * r.area_convex] for _, labels in samples
    ])
    assert diameters.max() <= 45
    assert np.percentile(diameters, 5) < 12 and np.percentile(diameters, 95) > 25


def test_nuclei_are_brighter_than_their_surroundings_and_differ_widely(samples):
    ratios = []
    for image, labels in samples:
        ids = np.arange(1, labels.max() + 1)
        rings = np.where(labels > 0, 0, expand_labels(labels, 5))
        contrast = ndimage.mean(image, labels, ids) - ndimage.mean(image, rings, ids)
        assert np.mean(contrast > 0) > 0.9
        ratios.append(np.percentile(contrast, 90) / np.percentile(contrast, 10))
    assert min(ratios) > 1.5 and max(ratios) > 5


def test_images_differ_in_background_and_noise(samples):
    backgrounds = [np.median(image[labels == 0]) for image, labels in samples]
    assert max(backgrounds) > 2 * min(backgrounds)
