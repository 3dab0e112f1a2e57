"""Real annotated nuclei (a folder laid out as `../shared/datasets/nuclei/`) as training patches.

The folder holds `train/` and `val/` with `NAME_img.tif` (one channel) and
`NAME_mask.tif` (uint16 instance labels) pairs; the name's prefix up to the first
`_` is its source. Every image is normalised as the consumers normalise it, then
rescaled so that its median nucleus is `MODEL_DIAMETER` px across, times a few
jitter factors (scale augmentation), and cut into fixed-size patches.
"""

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import tifffile

from consumers.processing.diameter import MODEL_DIAMETER, median_diameter
from consumers.processing.normalize import normalize
from consumers.processing.resize import resample, rescaled_shape, restore_labels
from training.targets import foreground, inner_distance

PATCH = 256
SCALE_JITTER = (0.7, 1.0, 1.4)  # each image is used at its model scale times these


@dataclass(frozen=True)
class Pair:
    """One annotated image: where it is, its source and its 2-D pixels and labels."""

    name: str
    source: str
    image: np.ndarray
    labels: np.ndarray


def pair_paths(folder: Path) -> list[tuple[str, Path, Path]]:
    """(name, image, mask) of every pair in `folder`, in name order."""
    images = sorted(folder.glob("*_img.tif"))
    if not images:
        raise FileNotFoundError(f"{folder} holds no NAME_img.tif / NAME_mask.tif pairs")
    return [(path.name.removesuffix("_img.tif"), path, path.with_name(path.name.replace("_img.tif", "_mask.tif")))
            for path in images]


def read_pairs(folder: Path) -> Iterator[Pair]:
    """The pairs of `folder`, read one at a time."""
    for name, image, mask in pair_paths(folder):
        yield Pair(name, name.split("_", 1)[0], tifffile.imread(image), tifffile.imread(mask).astype(np.int32))


def rescaled(image: np.ndarray, labels: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The normalised image (H', W', 1) and its labels (H', W'), both resampled by `scale`.

    The image is resampled exactly as the consumers resample it (bilinear, anti-aliased).
    """
    normalised = normalize(image[..., None].astype(np.float32))
    shape = rescaled_shape(labels.shape, scale)
    return resample(normalised, shape), restore_labels(labels, shape)


def patches(image: np.ndarray, labels: np.ndarray, size: int = PATCH) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Cut (H, W, 1) / (H, W) into size×size patches that cover it, overlapping only where the
    last row and column of patches is aligned to the border (an image smaller than a patch is
    zero-padded)."""
    for top in _starts(labels.shape[0], size):
        for left in _starts(labels.shape[1], size):
            window = np.s_[top : top + size, left : left + size]
            yield _padded(image[window], size), _padded(labels[window], size)


def _starts(length: int, size: int) -> list[int]:
    if length <= size:
        return [0]
    return [*range(0, length - size, size), length - size]


def _padded(array: np.ndarray, size: int) -> np.ndarray:
    pad = [(0, size - array.shape[0]), (0, size - array.shape[1])] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pad)


def pair_patches(path_triple: tuple[str, Path, Path], jitter: tuple[float, ...]) -> tuple[str, np.ndarray, np.ndarray]:
    """Source, image patches (N, P, P, 1) and targets (N, P, P, 2) of one pair at every jitter,
    in float16 (half the memory; training computes in float32)."""
    name, image_path, mask_path = path_triple
    image, labels = tifffile.imread(image_path), tifffile.imread(mask_path).astype(np.int32)
    diameter = median_diameter(labels) or MODEL_DIAMETER
    images, targets = [], []
    for factor in jitter:
        scaled_image, scaled_labels = rescaled(image, labels, MODEL_DIAMETER / diameter * factor)
        for patch_image, patch_labels in patches(scaled_image, scaled_labels):
            images.append(patch_image.astype(np.float16))
            targets.append(np.stack([foreground(patch_labels), inner_distance(patch_labels)], axis=-1)
                           .astype(np.float16))
    return name.split("_", 1)[0], np.stack(images), np.stack(targets)


def make_real_training_set(folder: Path, jitter: tuple[float, ...] = SCALE_JITTER,
                           workers: int = 2) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per source: image patches (N, P, P, 1) and their targets (N, P, P, 2), in a fixed order."""
    make = partial(pair_patches, jitter=jitter)
    paths = pair_paths(folder)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(make, paths, chunksize=4))
    by_source: dict[str, tuple[list, list]] = {}
    for source, images, targets in results:
        lists = by_source.setdefault(source, ([], []))
        lists[0].append(images)
        lists[1].append(targets)
    return {source: (np.concatenate(images), np.concatenate(targets))
            for source, (images, targets) in sorted(by_source.items())}
