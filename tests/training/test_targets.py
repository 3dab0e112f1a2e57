"""Training targets on label maps small enough to check by hand."""

import numpy as np

from training.targets import foreground, inner_distance


def test_foreground_marks_every_nucleus_pixel():
    labels = np.array([[0, 3, 3], [0, 0, 5]], np.int32)
    np.testing.assert_array_equal(foreground(labels), [[0, 1, 1], [0, 0, 1]])
    assert foreground(labels).dtype == np.float32


def test_inner_distance_of_a_square_peaks_at_one_in_its_centre():
    labels = np.zeros((7, 7), np.int32)
    labels[2:5, 2:5] = 1  # a 3x3 nucleus: rim 1 px from outside, centre 2 px
    expected = np.zeros((7, 7), np.float32)
    expected[2:5, 2:5] = 0.5
    expected[3, 3] = 1.0
    np.testing.assert_allclose(inner_distance(labels), expected)


def test_touching_neighbours_count_as_outside_and_each_is_scaled_alone():
    labels = np.zeros((7, 12), np.int32)
    labels[1:6, 1:6] = 1  # 5x5: centre 3 px from outside
    labels[2:5, 6:9] = 2  # 3x3 touching it: centre 2 px from outside
    distance = inner_distance(labels)
    assert distance[3, 3] == 1.0 and distance[3, 7] == 1.0
    # the contact column is the rim of both nuclei
    assert distance[3, 5] == distance[3, 1] == 1 / 3
    assert distance[3, 6] == distance[3, 8] == 0.5
    assert np.all(distance[labels == 0] == 0)


def test_image_border_counts_as_outside():
    labels = np.ones((3, 5), np.int32)
    np.testing.assert_allclose(inner_distance(labels)[1], [0.5, 1.0, 1.0, 1.0, 0.5])
