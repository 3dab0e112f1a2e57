"""Instance labels of a large image, post-processed block by block.

Each block is segmented together with a halo of context around it. A block keeps
only the nuclei whose centroid lies in its own core, whole (also where they reach
into the halo), so a nucleus cut by a block edge is found entire by exactly one
block and gets one label. Where a kept nucleus overlaps one that a neighbour
already wrote, the first one written keeps the pixels.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Block:
    """One block: its core (the pixels it owns) and its crop (core plus halo), as (top, bottom, left, right)."""

    core: tuple[int, int, int, int]
    crop: tuple[int, int, int, int]

    @property
    def slices(self) -> tuple[slice, slice]:
        """The crop as slices of the whole image."""
        top, bottom, left, right = self.crop
        return slice(top, bottom), slice(left, right)


def blocks(shape: tuple[int, int], size: int, halo: int) -> Iterator[Block]:
    """The blocks of an image of `shape`, row by row: cores of `size`² tiling it, crops `halo` wider."""
    height, width = shape
    for top in range(0, height, size):
        for left in range(0, width, size):
            bottom, right = min(top + size, height), min(left + size, width)
            yield Block((top, bottom, left, right),
                        (max(0, top - halo), min(height, bottom + halo), max(0, left - halo), min(width, right + halo)))


def owned(labels: np.ndarray, block: Block) -> np.ndarray:
    """The crop's `labels` (1..N) keeping only the nuclei whose centroid lies in the block's core."""
    count = int(labels.max())
    if not count:
        return labels
    centroids = np.asarray(ndimage.center_of_mass(labels > 0, labels, np.arange(1, count + 1)))
    top, bottom, left, right = block.core
    rows, cols = centroids[:, 0] + block.crop[0], centroids[:, 1] + block.crop[2]
    keep = np.concatenate([[False], (rows >= top - 0.5) & (rows < bottom - 0.5)
                           & (cols >= left - 0.5) & (cols < right - 0.5)])
    return np.where(keep[labels], labels, 0)


def merge(existing: np.ndarray, labels: np.ndarray, offset: int) -> tuple[np.ndarray, int]:
    """Write a block's kept `labels` into the crop's `existing` labels, numbered from `offset` + 1
    where nothing was written yet; returns the merged crop and the next offset."""
    ids = np.unique(labels[labels > 0])
    lookup = np.zeros(int(labels.max()) + 1, np.uint32)
    lookup[ids] = np.arange(offset + 1, offset + 1 + len(ids), dtype=np.uint32)
    renumbered = lookup[labels]
    merged = np.where((existing == 0) & (renumbered > 0), renumbered, existing)
    return merged, offset + len(ids)
