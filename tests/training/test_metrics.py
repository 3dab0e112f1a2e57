"""Instance matching scores on cases with known answers."""

import numpy as np
import pytest

from training.metrics import f1_at_iou, iou_matrix, match_nuclei


def _squares(*corners: tuple[int, int], size: int = 4, shape=(20, 20), first_label: int = 1) -> np.ndarray:
    labels = np.zeros(shape, np.int32)
    for offset, (y, x) in enumerate(corners):
        labels[y : y + size, x : x + size] = first_label + offset
    return labels


def test_identical_labels_score_one_whatever_the_label_values():
    truth = _squares((0, 0), (10, 10))
    renamed = _squares((0, 0), (10, 10), first_label=40)
    assert f1_at_iou(truth, renamed) == 1.0


def test_both_empty_is_perfect_and_one_empty_scores_zero():
    empty = np.zeros((5, 5), np.int32)
    assert f1_at_iou(empty, empty) == 1.0
    assert f1_at_iou(_squares((0, 0), shape=(5, 5)), empty) == 0.0
    assert f1_at_iou(empty, _squares((0, 0), shape=(5, 5))) == 0.0


def test_a_missed_and_an_extra_nucleus():
    truth = _squares((0, 0), (10, 10), (0, 10))
    pred = _squares((0, 0), (10, 10), (15, 0))
    scores = match_nuclei(truth, pred)
    assert (scores.true_positives, scores.false_positives, scores.false_negatives) == (2, 1, 1)
    assert scores.precision == scores.recall == pytest.approx(2 / 3)
    assert f1_at_iou(truth, pred) == pytest.approx(2 / 3)


def test_iou_must_exceed_the_threshold():
    truth = _squares((0, 0))
    shifted_by_one = _squares((0, 1))  # overlap 12, union 20: IoU 0.6
    shifted_by_two = _squares((0, 2))  # overlap 8, union 24: IoU 1/3
    np.testing.assert_allclose(iou_matrix(truth, shifted_by_one), [[0.6]])
    assert f1_at_iou(truth, shifted_by_one) == 1.0
    assert f1_at_iou(truth, shifted_by_one, threshold=0.6) == 0.0
    assert f1_at_iou(truth, shifted_by_two) == 0.0
    assert f1_at_iou(truth, shifted_by_two, threshold=0.3) == 1.0


def test_low_threshold_matching_is_one_to_one_and_counts_the_most_pairs():
    truth = np.zeros((1, 20), np.int32)
    truth[0, :10], truth[0, 10:] = 1, 2
    pred = np.zeros((1, 20), np.int32)
    pred[0, 0], pred[0, 1:12] = 1, 2
    # IoU: truth 1 ~ pred 2 0.75, truth 2 ~ pred 2 0.105, truth 1 ~ pred 1 0.1
    np.testing.assert_allclose(iou_matrix(truth, pred), [[0.1, 0.75], [0.0, 2 / 19]])
    assert match_nuclei(truth, pred, threshold=0.05).true_positives == 2
    assert match_nuclei(truth, pred, threshold=0.105).true_positives == 1


def test_merged_prediction_matches_at_most_one():
    truth = _squares((0, 0), (0, 4), size=4)
    merged = (truth > 0).astype(np.int32)
    assert match_nuclei(truth, merged, threshold=0.3).true_positives == 1


def test_shapes_must_agree():
    with pytest.raises(ValueError):
        f1_at_iou(np.zeros((3, 3), np.int32), np.zeros((3, 4), np.int32))
