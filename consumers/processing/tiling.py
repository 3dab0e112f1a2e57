"""Cut an image into fixed-size overlapping tiles and stitch predictions back seamlessly.

Every tile has the same size, so the tiles of several images can share one batch;
each image keeps its own `TileLayout`.

Stitching weighs each tile with a window that is zero in an outer margin of
overlap/4 pixels, rises smoothly (raised cosine) over overlap/2 pixels and is one in
the centre; on the sides where a tile meets the image border it is one right up to
the edge. Neighbouring windows add up to one, so predictions cross-fade with no seam,
and a model whose view reaches at most `margin` pixels gives exactly the result it
would give on the whole image. Images that do not fill whole tiles are padded at the
bottom and right by reflection, and the padding is cropped off again.
"""

import functools
import math
from dataclasses import dataclass

import numpy as np

DEFAULT_TILE = 256
DEFAULT_OVERLAP = 64


@dataclass(frozen=True)
class TileLayout:
    """Where the tiles of one image lie.

    shape: the image's (H, W); padded: the (H, W) that the tiles cover, the image being
    its top-left part; origins: each tile's top-left corner, in the order of the tiles.
    """

    shape: tuple[int, int]
    padded: tuple[int, int]
    tile: int
    overlap: int
    origins: tuple[tuple[int, int], ...]

    @property
    def count(self) -> int:
        """Number of tiles."""
        return len(self.origins)

    @property
    def margin(self) -> int:
        """Width of each tile's outer band that stitching ignores."""
        return self.overlap // 4


def tile_image(
    image: np.ndarray, *, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP
) -> tuple[np.ndarray, TileLayout]:
    """Cut an (H, W, C) image into (N, tile, tile, C) float32 tiles overlapping by `overlap`.

    `overlap` must be between 0 and tile/2. Images smaller than a tile give one tile.
    """
    if image.ndim != 3:
        raise ValueError(f"expected an (H, W, C) image, got shape {image.shape}")
    if not 0 <= overlap <= tile // 2:
        raise ValueError(f"overlap {overlap} must be between 0 and half the tile size {tile}")
    step = tile - overlap
    height, width = image.shape[:2]
    rows, padded_height = _starts(height, tile, step)
    cols, padded_width = _starts(width, tile, step)
    padding = ((0, padded_height - height), (0, padded_width - width), (0, 0))
    padded = np.pad(image.astype(np.float32, copy=False), padding, mode="reflect")
    origins = tuple((row, col) for row in rows for col in cols)
    tiles = np.stack([padded[row : row + tile, col : col + tile] for row, col in origins])
    layout = TileLayout((height, width), (padded_height, padded_width), tile, overlap, origins)
    return tiles, layout


def tile_count(shape: tuple[int, int], tile: int, overlap: int) -> int:
    """How many tiles `tile_image` cuts an image of `shape` (H, W) into."""
    rows, _ = _starts(shape[0], tile, tile - overlap)
    cols, _ = _starts(shape[1], tile, tile - overlap)
    return len(rows) * len(cols)


def predict_in_batches(predict, tiles: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    """`predict` (tiles in, named outputs out) applied `batch_size` tiles at a time, outputs concatenated."""
    parts = [predict(tiles[start:start + batch_size]) for start in range(0, len(tiles), batch_size)]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def stitch_tiles(tiles: np.ndarray, layout: TileLayout) -> np.ndarray:
    """Blend (N, tile, tile, K) per-tile predictions into one (H, W, K) float32 image."""
    size = layout.tile
    if tiles.shape[:3] != (layout.count, size, size):
        raise ValueError(f"expected {layout.count} tiles of {size}×{size}, got shape {tiles.shape}")
    last_row, last_col = (padded - size for padded in layout.padded)
    total = np.zeros((*layout.padded, tiles.shape[3]), np.float32)
    weight = np.zeros(layout.padded, np.float32)
    for (row, col), prediction in zip(layout.origins, tiles):
        window = np.outer(
            _profile(size, layout.overlap, row == 0, row == last_row),
            _profile(size, layout.overlap, col == 0, col == last_col),
        ).astype(np.float32)
        total[row : row + size, col : col + size] += prediction * window[..., None]
        weight[row : row + size, col : col + size] += window
    height, width = layout.shape
    return total[:height, :width] / weight[:height, :width, None]


def _starts(length: int, tile: int, step: int) -> tuple[list[int], int]:
    """Tile starts along one axis, and the padded length they cover."""
    count = 1 if length <= tile else math.ceil((length - tile) / step) + 1
    return [index * step for index in range(count)], (count - 1) * step + tile


@functools.cache
def _profile(tile: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    """One axis of a tile's blending window: zero margin, raised-cosine ramp, flat centre;
    flat to the edge on a side that is the image border."""
    margin = overlap // 4
    ramp_length = overlap - 2 * margin
    # Sampled at pixel centres so a ramp and its mirror image add up to exactly one.
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp_length) + 0.5) / ramp_length)
    rise = np.concatenate([np.zeros(margin), ramp])
    profile = np.ones(tile)
    if not first:
        profile[: len(rise)] = rise
    if not last:
        profile[tile - len(rise) :] = rise[::-1]
    profile.flags.writeable = False  # shared by the cache
    return profile
