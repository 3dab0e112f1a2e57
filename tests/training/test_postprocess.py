"""labels_from_predictions on ideal model outputs, made from known labels."""

import numpy as np
import pytest

from consumers.processing.postprocess import labels_from_predictions
from training.metrics import f1_at_iou
from training.synthetic import make_sample
from training.targets import foreground, inner_distance


@pytest.mark.parametrize("seed", [0, 3, 9])
def test_ideal_maps_give_back_the_true_nuclei(seed):
    _, truth = make_sample(np.random.default_rng(seed), (256, 256))
    labels = labels_from_predictions(foreground(truth), inner_distance(truth))
    assert labels.dtype == np.int32 and labels.shape == truth.shape
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))
    assert f1_at_iou(truth, labels) >= 0.98


def test_touching_pair_is_split_and_a_faint_coreless_blob_kept():
    truth = np.zeros((40, 60), np.int32)
    truth[5:25, 5:25] = 1
    truth[5:25, 25:45] = 2  # shares a whole side with nucleus 1
    fgbg = foreground(truth)
    fgbg[30:36, 50:56] = 0.9  # the model is sure of foreground here but sees no centre
    labels = labels_from_predictions(fgbg, inner_distance(truth))
    assert labels.max() == 3
    assert f1_at_iou(truth, np.where(labels == labels[33, 53], 0, labels)) == 1.0
    assert np.count_nonzero(labels == labels[33, 53]) == 36


def test_specks_below_min_size_are_dropped():
    truth = np.zeros((30, 30), np.int32)
    truth[2:12, 2:12] = 1
    truth[20:23, 20:23] = 2
    labels = labels_from_predictions(foreground(truth), inner_distance(truth), min_size=12)
    assert labels.max() == 1 and np.count_nonzero(labels) == 100


def test_rejects_maps_of_different_shapes():
    with pytest.raises(ValueError):
        labels_from_predictions(np.zeros((4, 4)), np.zeros((4, 5)))
