"""The fixed synthetic training set: normalised images and their targets.

Kept free of TensorFlow so worker processes start quickly.
"""

from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context

import numpy as np

from consumers.processing.normalize import normalize
from training.synthetic import make_sample
from training.targets import foreground, inner_distance


def training_pair(seed: np.random.SeedSequence, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One normalised image (H, W, 1) and its targets (H, W, 2: foreground, inner distance)."""
    raw, labels = make_sample(np.random.default_rng(seed), shape)
    return normalize(raw[..., None]), np.stack([foreground(labels), inner_distance(labels)], axis=-1)


def make_training_set(
    seed: int, count: int, shape: tuple[int, int] = (256, 256), workers: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` images (N, H, W, 1) and targets (N, H, W, 2), identical for any number of ``workers``."""
    seeds = np.random.SeedSequence(seed).spawn(count)  # one stream per image
    make = partial(training_pair, shape=shape)
    if workers > 1:
        # spawn, not fork: the parent has usually loaded TensorFlow and its threads
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            pairs = list(pool.map(make, seeds, chunksize=8))
    else:
        pairs = [make(s) for s in seeds]
    images, targets = zip(*pairs)
    return np.stack(images), np.stack(targets)
