"""Instance-segmentation scores: one-to-one matching of nuclei by IoU."""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class MatchScores:
    """Counts and rates of one comparison of predicted against true nuclei."""

    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        """Fraction of predicted nuclei that match a true one (1.0 if none predicted)."""
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        """Fraction of true nuclei that are matched (1.0 if there are none)."""
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall; 1.0 when both images are empty."""
        matched = 2 * self.true_positives
        total = matched + self.false_positives + self.false_negatives
        return matched / total if total else 1.0


def iou_matrix(true_labels: np.ndarray, pred_labels: np.ndarray) -> np.ndarray:
    """IoU of every true nucleus (rows, label order) with every predicted one (columns).

    Labels need not be sequential; only labels present in the image get a row/column.
    """
    if true_labels.shape != pred_labels.shape:
        raise ValueError(f"label images differ in shape: {true_labels.shape} vs {pred_labels.shape}")
    true_ids, true_index = np.unique(true_labels, return_inverse=True)
    pred_ids, pred_index = np.unique(pred_labels, return_inverse=True)
    # joint histogram of (true, pred) per pixel; row/column 0 is background when present
    pair = true_index.ravel() * pred_ids.size + pred_index.ravel()
    overlap = np.bincount(pair, minlength=true_ids.size * pred_ids.size).reshape(true_ids.size, pred_ids.size)
    true_area = overlap.sum(axis=1, keepdims=True)
    pred_area = overlap.sum(axis=0, keepdims=True)
    iou = overlap / (true_area + pred_area - overlap)
    return iou[true_ids != 0][:, pred_ids != 0]


def match_nuclei(true_labels: np.ndarray, pred_labels: np.ndarray, threshold: float = 0.5) -> MatchScores:
    """Pair true and predicted nuclei one-to-one where IoU > threshold, as many pairs as possible.

    Below IoU 0.5 a nucleus may qualify for several partners; the assignment then
    maximises the number of pairs, and among equal numbers the total IoU (as StarDist does).
    """
    iou = iou_matrix(true_labels, pred_labels)
    valid = iou > threshold
    if threshold >= 0.5:
        # two nuclei cannot both overlap a third by more than half: pairs are unique
        matched = int(np.count_nonzero(valid))
    else:
        # each pair is worth 1 plus less than 1/n, so one more pair always wins
        weight = valid * (1.0 + iou / (min(iou.shape) + 1))
        rows, cols = linear_sum_assignment(weight, maximize=True)
        matched = int(np.count_nonzero(valid[rows, cols]))
    return MatchScores(matched, iou.shape[1] - matched, iou.shape[0] - matched)


def f1_at_iou(true_labels: np.ndarray, pred_labels: np.ndarray, threshold: float = 0.5) -> float:
    """F1 of one-to-one nucleus matching at IoU > threshold (1.0 when both are empty)."""
    return match_nuclei(true_labels, pred_labels, threshold).f1
