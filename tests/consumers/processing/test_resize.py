"""Resampling to the model's pixel size and labels back."""

import math

import numpy as np
import pytest

from consumers.errors import JobInputError
from consumers.processing.resize import rescale, rescaled_shape, restore_labels, validate_scale

rng = np.random.default_rng(5)


@pytest.mark.parametrize(("given", "expected"), [(1, 1.0), ("0.5", 0.5), (0.1, 0.1), (10, 10.0)])
def test_a_scale_in_range_is_accepted(given, expected):
    assert validate_scale(given) == expected


@pytest.mark.parametrize("scale", [0, 0.05, -1, 10.5, math.nan, math.inf])
def test_a_scale_out_of_range_is_rejected(scale):
    with pytest.raises(JobInputError, match="is outside the supported range 0.1 to 10"):
        validate_scale(scale)


@pytest.mark.parametrize("scale", ["abc", None, ""])
def test_a_scale_that_is_not_a_number_is_rejected(scale):
    with pytest.raises(JobInputError, match="is not a number"):
        validate_scale(scale)


def test_scale_one_leaves_the_frame_alone():
    frame = rng.random((20, 30, 2), dtype=np.float32)
    assert rescale(frame, 1.0) is frame


@pytest.mark.parametrize(("scale", "shape"), [(0.5, (50, 30)), (2, (200, 120)), (1.3, (130, 78)), (0.1, (10, 6))])
def test_rescaling_changes_the_size_by_the_scale(scale, shape):
    frame = rng.random((100, 60, 2), dtype=np.float32)
    scaled = rescale(frame, scale)
    assert scaled.shape == (*shape, 2) and scaled.dtype == np.float32
    assert rescaled_shape((100, 60), scale) == shape
    assert scaled.min() >= 0 and scaled.max() <= 1


def test_rescaling_follows_a_smooth_image():
    rows, cols = np.mgrid[0:80, 0:120].astype(np.float32)
    frame = (np.sin(rows / 15) * np.cos(cols / 20))[..., None]
    scaled = rescale(frame, 2)[..., 0]
    # Pixel centres of the doubled image sit at (i + 0.5) / 2 - 0.5 in the original.
    big_rows, big_cols = (np.mgrid[0:160, 0:240] + 0.5) / 2 - 0.5
    expected = np.sin(big_rows / 15) * np.cos(big_cols / 20)
    assert np.abs(scaled - expected)[2:-2, 2:-2].max() < 0.01


def test_shrinking_averages_instead_of_aliasing():
    stripes = np.tile([0.0, 1.0], (64, 32)).astype(np.float32)[..., None]
    # Sampling every third pixel without smoothing would give 0, 1, 0, 1...
    assert np.abs(rescale(stripes, 1 / 3) - 0.5).max() < 0.1


def test_a_rescaled_image_over_the_pixel_limit_is_rejected():
    with pytest.raises(JobInputError, match=r"by 10 gives 1000×1000 = 1 megapixels; the limit is 100,000 pixels"):
        rescale(np.zeros((100, 100, 1), np.float32), 10, max_pixels=100_000)


def test_labels_come_back_to_the_original_size_by_whole_pixels():
    labels = rng.integers(0, 50, (25, 20)).astype(np.int32)
    restored = restore_labels(labels, (50, 40))
    assert restored.dtype == labels.dtype
    np.testing.assert_array_equal(restored, np.kron(labels, np.ones((2, 2), np.int32)))


def test_restoring_to_an_uneven_size_keeps_every_label_and_invents_none():
    labels = rng.integers(0, 500, (37, 23)).astype(np.uint32)
    restored = restore_labels(labels, (100, 61))
    assert restored.shape == (100, 61)
    assert set(np.unique(restored)) == set(np.unique(labels))


def test_shrinking_labels_back_takes_the_nearest_pixel():
    labels = rng.integers(0, 50, (10, 8)).astype(np.int32)
    np.testing.assert_array_equal(restore_labels(restore_labels(labels, (30, 24)), (10, 8)), labels)


def test_a_stack_of_labels_is_restored_frame_by_frame():
    labels = rng.integers(0, 9, (3, 10, 8)).astype(np.uint16)
    restored = restore_labels(labels, (20, 16))
    for frame, original in zip(restored, labels):
        np.testing.assert_array_equal(frame, restore_labels(original, (20, 16)))


def test_labels_already_the_right_size_are_returned_as_they_are():
    labels = np.zeros((10, 8), np.int32)
    assert restore_labels(labels, (10, 8)) is labels
